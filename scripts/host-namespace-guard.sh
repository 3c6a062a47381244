#!/usr/bin/env bash
# Network-safety guard around the test suite (`make test` calls it before and after ctest).
# Every test that starts kube-proxy, CNI or pods must do so inside a network namespace of its own;
# what such a test leaves in the HOST's namespace is a leak: kube-proxy chains (MK8S-*), CNI chains
# (CNI-*), links named mk8s*/cni*, routes into the cluster's ranges (10.152.183.0/24, 10.1.0.0/16).
#   host-namespace-guard.sh snapshot FILE   records what is there now (a cluster of your own may be)
#   host-namespace-guard.sh check FILE      fails, naming them, if new ones appeared since
# Without root (iptables-save needs it) the guard says so and passes: the tests that could leak
# need root too.
set -euo pipefail

state() {
  for table in filter nat mangle raw; do
    iptables-save -t "$table" 2>/dev/null | sed -n "s/^:\(\(MK8S\|CNI\)[^ ]*\).*/iptables $table chain \1/p"
  done
  ip -o link show 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' |
    grep -E '^(mk8s|cni)' | sed 's/^/link /' || true
  ip route show 2>/dev/null | grep -E '^10\.(152\.183|1)\.' | sed 's/^/route /' || true
}

if [[ $# -ne 2 || ( "$1" != snapshot && "$1" != check ) ]]; then
  echo "usage: $0 snapshot|check FILE" >&2
  exit 2
fi
if [[ $EUID -ne 0 ]] || ! command -v iptables-save >/dev/null; then
  echo "host-namespace guard: skipped (needs root and iptables-save)"
  exit 0
fi
if [[ "$1" == snapshot ]]; then
  state | sort -u > "$2"
  exit 0
fi
leaked=$(comm -13 "$2" <(state | sort -u))
if [[ -n "$leaked" ]]; then
  echo "host-namespace guard: the tests left these in the host's network namespace:" >&2
  echo "$leaked" | sed 's/^/  /' >&2
  echo "A test started kube-proxy, CNI or pods outside a network namespace of its own; find it with" >&2
  echo "'ctest -I N,N' one test at a time and 'iptables-save | grep MK8S' after each." >&2
  exit 1
fi
echo "host-namespace guard: nothing left in the host's network namespace"
