#!/usr/bin/env bash
# Installs the Debian packages mk8s needs to build, test (and, with --bench, benchmark).
# Quiet and quick when everything is present; needs root (or sudo) only when something is missing.
set -euo pipefail

packages=(
  cmake ninja-build g++ ccache pkg-config git tar
  libcli11-dev libboost-dev libboost-filesystem-dev libboost-system-dev
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libjemalloc-dev zlib1g-dev libsqlite3-dev libfmt-dev libspdlog-dev nlohmann-json3-dev libssl-dev openssl libyaml-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  python3 python3-kubernetes tzdata
  dnsutils
  containerd runc containernetworking-plugins busybox-static iproute2 util-linux iptables libc6-dev
  bash-completion zsh fish python3-yaml dpkg-dev
  # the node agent: bundled containerd, pod networking, kube-proxy, e2e test images
  containerd runc containernetworking-plugins iptables iproute2 curl busybox-static conntrack
  # tests/e2e/registry: a plain-HTTP registry to pull from and the tool that pushes to it
  docker-registry skopeo
)
if [[ "${1:-}" == "--bench" ]]; then
  packages+=(etcd-server etcd-client dnsperf knot)  # knot: the dns benchmark's peer
fi

missing=()
for package in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "missing packages: ${missing[*]}; run as root to install them" >&2; exit 1; }
  sudo="sudo"
fi
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
