#!/usr/bin/env bash
# Runs every benchmark and prints JSON lines (one result per line) followed by the comparisons.
# Usage: tests/bench/run-all.sh BUILD_DIR [SECONDS]
# The peer, etcd 3.4 (Debian etcd-server), runs on loopback in a temp folder in the same run.
set -euo pipefail
build=${1:-build}
seconds=${2:-5}
out=$(mktemp)
work=$(mktemp -d)
etcd_pid=""
cleanup() {
  [[ -n "$etcd_pid" ]] && kill "$etcd_pid" 2>/dev/null && wait "$etcd_pid" 2>/dev/null
  rm -rf "$work" "$out"
}
trap cleanup EXIT
# The control-plane benchmarks run without a node agent (no containerd, no iptables); the pod
# startup benchmark runs its own daemon inside a network namespace.
export MK8S_COMPONENTS=apiserver,controllers,scheduler

MK8SD_BIN="$build/daemon/mk8sd" "$build/tests/bench/store_bench" "$seconds" | tee "$out"
# The HTTPS API load tool starts its own mk8sd (1,000 watchers, 10,000-object list).
MK8SD_BIN="$build/daemon/mk8sd" "$build/tests/bench/api_bench" "$seconds" | tee -a "$out"
# The control loops with hollow nodes (5,000 nodes / 10,000 pods; 100 nodes / 10,000 replicas).
MK8SD_BIN="$build/daemon/mk8sd" "$build/tests/bench/scheduler_bench" all | tee -a "$out"
# The dns addon under dnsperf at 1 and 16 clients (its own mk8sd; skipped without dnsperf).
MK8SD_BIN="$build/daemon/mk8sd" MK8S_BIN="$build/cli/mk8s" python3 "$(dirname "$0")/dns_bench.py" "$seconds" | tee -a "$out"
# Pods on real containerd (root; its own daemon, containerd and iptables inside a network namespace).
MK8SD_BIN="$build/daemon/mk8sd" python3 "$(dirname "$0")/pod_bench.py" | tee -a "$out"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
if command -v etcd >/dev/null && command -v etcdctl >/dev/null; then
  client=$(free_port); peer=$(free_port)
  etcd --name bench --data-dir "$work/etcd" \
    --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "bench=http://127.0.0.1:$peer" >"$work/etcd.log" 2>&1 &
  etcd_pid=$!
  for _ in $(seq 100); do
    ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$client" endpoint health >/dev/null 2>&1 && break
    sleep 0.1  # poll until etcd answers
  done
  perf=$(ETCDCTL_API=3 etcdctl --endpoints "127.0.0.1:$client" check perf --load=xl 2>&1 || true)
  etcd_rss=$(awk '/VmRSS/ {print $2/1024}' "/proc/$etcd_pid/status")
  writes=$(sed -n 's/.*Throughput is \([0-9]*\) writes\/s.*/\1/p' <<<"$perf")
  echo "{\"bench\":\"etcd_check_perf_xl\",\"writes_per_sec\":${writes:-0},\"rss_mb\":${etcd_rss:-0}}" | tee -a "$out"
else
  echo '{"bench":"etcd_check_perf_xl","skipped":"etcd-server/etcd-client not installed"}' | tee -a "$out"
fi

python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
etcd = next((r for r in rows if r["bench"] == "etcd_check_perf_xl"), {}).get("writes_per_sec", 0)
store64 = next((r for r in rows if r["bench"] == "store_write" and r["writers"] == 64), {})
daemon = next((r for r in rows if r["bench"] == "daemon_write"), {})
api = {(r["op"], r["clients"]): r for r in rows if r["bench"] == "api"}
watch = next((r for r in rows if r["bench"] == "api_watch"), {})
rss = next((r for r in rows if r["bench"] == "api_rss"), {})
scheduling = next((r for r in rows if r["bench"] == "scheduling"), {})
footprint = next((r for r in rows if r["bench"] == "footprint"), {})
pod_startup = next((r for r in rows if r["bench"] == "pod_startup"), {})
deployment = next((r for r in rows if r["bench"] == "deployment_ready"), {})
node_agent = next((r for r in rows if r["bench"] == "node_agent_idle"), {})
dns = {r["clients"]: r for r in rows if r["bench"] == "dns_vs_peer"}
if etcd:
    print(json.dumps({"bench": "ratio_vs_etcd",
                      "store_64_writers": round(store64.get("writes_per_sec", 0) / etcd, 2),
                      "daemon_64_clients": round(daemon.get("writes_per_sec", 0) / etcd, 2),
                      "api_create_64_clients":
                          round(api.get(("create", 64), {}).get("ops_per_sec", 0) / etcd, 2)}))
# Goals (DESIGN/issue): ratio = measured / goal; "met" follows the goal's direction.
for metric, measured, goal, higher_is_better in [
        ("api_create_16_clients_per_sec", api.get(("create", 16), {}).get("ops_per_sec"), 6000, True),
        ("api_watch_1000_watchers_p99_ms", watch.get("p99_ms"), 20, False),
        ("mk8sd_idle_rss_mb", rss.get("idle_mb"), 40, False),
        ("scheduling_5000_nodes_pods_per_sec", scheduling.get("pods_per_sec"), 3000, True),
        ("footprint_10000_pods_rss_mb", footprint.get("mk8sd_rss_settled_mb"), 300, False),
        ("pod_startup_p99_ms", pod_startup.get("p99_ms"), 1000, False),
        ("deployment_100_ready_seconds", deployment.get("seconds"), 30, False),
        ("kubelet_proxy_added_rss_mb", node_agent.get("kubelet_proxy_added_mb"), 15, False),
        ("dns_1_client_qps", dns.get(1, {}).get("mk8s_qps"), 50000, True),
        ("dns_16_clients_qps", dns.get(16, {}).get("mk8s_qps"), 50000, True),
        ("dns_1_client_ratio_vs_knot", dns.get(1, {}).get("ratio"), 1.0, True),
        ("dns_16_clients_ratio_vs_knot", dns.get(16, {}).get("ratio"), 1.0, True)]:
    if measured is None:
        print(json.dumps({"bench": "goal", "metric": metric, "goal": goal, "measured": None}))
        continue
    print(json.dumps({"bench": "goal", "metric": metric, "measured": measured, "goal": goal,
                      "ratio": round(measured / goal, 2),
                      "met": measured >= goal if higher_is_better else measured <= goal}))
PY
