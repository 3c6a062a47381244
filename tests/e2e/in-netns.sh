#!/bin/sh
# in-netns.sh COMMAND [ARGS...]: runs COMMAND inside a network namespace created for this run
# (unique name, loopback up, no other interface, so no route off the machine) and deletes the
# namespace afterwards, killing whatever the command left running in it.
#
# nsenter --net changes only the network namespace (not the mount namespace), so containerd's
# netns and overlay mounts stay visible to the test. Exits 77 (ctest SKIP_RETURN_CODE) with the
# reason when the namespace cannot be made (not root, no iproute2/nsenter).
set -u

if [ "$#" -lt 1 ]; then
  echo "usage: $0 COMMAND [ARGS...]" >&2
  exit 2
fi
if [ "$(id -u)" != "0" ]; then
  echo "SKIP: e2e tests need root to create a network namespace"
  exit 77
fi
for tool in ip nsenter; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "SKIP: '$tool' is not installed (iproute2 / util-linux)"
    exit 77
  fi
done

ns="mk8s-e2e-$$-$(od -An -N4 -tx4 /dev/urandom | tr -d ' \n')"
cleanup() {
  pids=$(ip netns pids "$ns" 2>/dev/null)
  if [ -n "$pids" ]; then
    echo "in-netns: killing processes left in $ns: $pids" >&2
    kill -9 $pids 2>/dev/null
  fi
  ip netns del "$ns" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ! ip netns add "$ns"; then
  echo "SKIP: cannot create network namespace $ns"
  exit 77
fi
ip netns exec "$ns" ip link set lo up || exit 1
echo "in-netns: running in network namespace $ns" >&2
nsenter --net="/run/netns/$ns" -- "$@"
rc=$?
exit $rc
