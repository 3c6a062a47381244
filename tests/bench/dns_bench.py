#!/usr/bin/python3
"""The dns addon's query rate beside a Debian peer (Knot DNS) on the same names, in one run.

Usage: MK8SD_BIN=... MK8S_BIN=... tests/bench/dns_bench.py [SECONDS=5] [SERVICES=100]
Env (optional): DNS_BENCH_UDP_WORKERS, DNS_BENCH_ADDON_ARGS, DNS_BENCH_PACED_QPS (see below).

Starts mk8sd on a temp state folder, enables dns on a free 127.0.0.1 port (its upstream is a
closed port: only cluster names are asked), creates SERVICES Services, reads their ClusterIPs
back, and starts knotd (tests/bench/dns_peer.py says why Knot) on another free 127.0.0.1 port
with a zone of exactly those A records, the addon's SOA/NS and TTL. Then Debian's dnsperf runs
at 1 and 16 clients, then 1 client paced (see PACED_RATE), over the same query file against
each server in turn (addon, peer, addon, peer: both see the same machine load). Everything is
loopback-only and torn down at the end.

Prints one JSON object per line:
  {"bench": "dns_cluster_names", "server": "mk8s"|"knot", "clients": N, "qps": ...,
   "cpu_us_per_query": ..., "dns_threads_cpu_us_per_query": ..., ...}   per run;
   cpu_us_per_query is the server process's utime+stime over the run divided by the answered
   queries (robust on a loaded machine); for mk8s, dns_threads_cpu_us_per_query counts only the
   addon's threads (named dns-udp / dns-forward), without the rest of mk8sd (API server, ...).
   Knot's process is its DNS server, so there both figures are the same.
  {"bench": "dns_vs_peer_paced", "clients": 1, "rate_limit": PACED_RATE, "cpu_ratio": ...}
   after the paced point (1 client, dnsperf -Q; see PACED_RATE): CPU only, both serve the rate.
  {"bench": "dns_vs_peer", "clients": N, "ratio": mk8s_qps / knot_qps, "goal_qps": 50000,
   "goal_ratio": 1.0, "met_qps": ..., "met_ratio": ..., "cpu_ratio": knot_cpu / mk8s_dns_cpu}
   after each unpaced point (mk8s_dns_cpu: dns_threads_cpu_us_per_query).
Goals from issue 6: >= 50,000 qps and >= 1.0x the peer.

Fairness: both servers get the same dnsperf flags and the same number of UDP worker threads
(UDP_WORKERS; Knot's own default is one per CPU), and both bind 127.0.0.1 with one SO_REUSEPORT
socket per UDP worker (the kernel keeps a client's flow on one worker; the addon's
`reuseport=false` instead shares one socket between its workers).
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from dns_peer import KNOTD, KnotPeer  # noqa: E402
from mk8s_testlib import cpu_seconds, free_port, wait_for  # noqa: E402

MK8S = os.environ.get("MK8S_BIN", "build/cli/mk8s")
MK8SD = os.environ.get("MK8SD_BIN", "build/daemon/mk8sd")
GOAL_QPS = 50000
GOAL_RATIO = 1.0
# UDP worker threads of each server (env DNS_BENCH_UDP_WORKERS, default the addon's default 2).
UDP_WORKERS = int(os.environ.get("DNS_BENCH_UDP_WORKERS", "2"))
# More `mk8s enable dns:` arguments for an A/B run, e.g. DNS_BENCH_ADDON_ARGS="reuseport=false".
ADDON_ARGS = os.environ.get("DNS_BENCH_ADDON_ARGS", "")
# The paced point: 1 client at this many queries per second (env DNS_BENCH_PACED_QPS, 0 skips
# it), below both servers' limits, so queries arrive nearly one at a time (small batches, a
# wakeup per query or two) however loaded the machine is: CPU per query there is the per-query
# cost a quiet machine sees, while the unpaced points batch more the busier the machine is.
PACED_RATE = int(os.environ.get("DNS_BENCH_PACED_QPS", "15000"))
DNS_THREADS = ("dns-udp", "dns-forward")  # the addon's thread names (server.cc)


def dig_short(port, name):
    return subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "+short", "+time=1", "+tries=1",
                           name], capture_output=True, text=True).stdout.strip()


def threads_cpu_seconds(pid, names):
    """utime+stime of the threads of `pid` whose name is in `names` (threads that end are lost)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as stat:
                text = stat.read()
        except OSError:
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        if name in names:
            fields = text.rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def dnsperf_run(dnsperf, port, queries, clients, seconds, pid, thread_names=None, rate=0):
    """One dnsperf run (at most `rate` queries per second when > 0); returns the parsed figures
    and the server's CPU seconds used (all of the process, and of its `thread_names` threads
    when given)."""
    before = cpu_seconds(pid)
    threads_before = threads_cpu_seconds(pid, thread_names) if thread_names else 0
    run = subprocess.run([dnsperf, "-s", "127.0.0.1", "-p", str(port), "-d", queries,
                          "-c", str(clients), "-T", str(min(clients, 4)), "-l", str(seconds),
                          "-q", str(max(100, clients * 20)), *(["-Q", str(rate)] if rate else [])],
                         capture_output=True, text=True)
    used = cpu_seconds(pid) - before
    threads_used = threads_cpu_seconds(pid, thread_names) - threads_before if thread_names else used

    def number(pattern, cast=float, default=-1):
        found = re.search(pattern, run.stdout)
        return cast(found.group(1)) if found else default

    completed = number(r"Queries completed:\s+(\d+)", int, 0)
    return {"qps": number(r"Queries per second:\s+([\d.]+)", float, 0.0),
            "completed": completed,
            "lost": number(r"Queries lost:\s+(\d+)", int),
            "avg_latency_ms": round(number(r"Average Latency \(s\):\s+([\d.]+)") * 1000, 3),
            "server_cpu_s": round(used, 3),
            "cpu_us_per_query": round(used * 1e6 / completed, 3) if completed else -1,
            "dns_threads_cpu_us_per_query":
                round(threads_used * 1e6 / completed, 3) if completed else -1,
            "dnsperf_rc": run.returncode}


def create_services(mk8s, root, services):
    kubeconfig = os.path.join(root, "kubeconfig")
    with open(kubeconfig, "w") as out:
        out.write(mk8s("config").stdout)
    env = dict(os.environ, KUBECONFIG=kubeconfig)
    items = [{"apiVersion": "v1", "kind": "Service",
              "metadata": {"name": f"svc{i}", "namespace": "default"},
              "spec": {"ports": [{"port": 80}]}} for i in range(services)]
    created = subprocess.run(["kubectl", "create", "--validate=false", "-f", "-"],
                             input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
                             env=env, capture_output=True, text=True)
    if created.returncode != 0:
        raise SystemExit(f"creating the Services failed: {created.stderr}")
    listed = subprocess.run(["kubectl", "get", "services", "-n", "default", "-o", "json"],
                            env=env, capture_output=True, text=True, check=True)
    ips = {item["metadata"]["name"]: item["spec"]["clusterIP"]
           for item in json.loads(listed.stdout)["items"]}
    return [(f"svc{i}.default.svc.cluster.local", ips[f"svc{i}"]) for i in range(services)]


def main():
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    services = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    dnsperf = shutil.which("dnsperf")
    if dnsperf is None:
        print(json.dumps({"bench": "dns", "skipped": "dnsperf not installed (install-deps.sh --bench)"}))
        return
    root = tempfile.mkdtemp(prefix="mk8s-dnsb-", dir="/tmp")
    state = os.path.join(root, "state")
    log = open(os.path.join(root, "daemon.out"), "w")
    proc = subprocess.Popen([MK8SD, "--state-dir", state, "--apiserver-port", "0",
                             "--apiserver-bind-address", "127.0.0.1", "--no-log-stderr",
                             "--components", "apiserver,controllers,scheduler"],
                            stdout=log, stderr=subprocess.STDOUT)
    mk8s = lambda *a: subprocess.run([MK8S, "--state-dir", state, *a], capture_output=True,
                                     text=True, stdin=subprocess.DEVNULL)
    peer = None
    try:
        wait_for(lambda: mk8s("status").returncode == 0, "mk8sd")
        port = free_port()
        enabled = mk8s("enable", f"dns:port={port};address=127.0.0.1;upstream=127.0.0.1:"
                                 f"{free_port()};udp-workers={UDP_WORKERS}"
                                 + (f";{ADDON_ARGS}" if ADDON_ARGS else ""))
        if enabled.returncode != 0:
            raise SystemExit(enabled.stderr)
        records = create_services(mk8s, root, services)
        queries = os.path.join(root, "queries")
        with open(queries, "w") as out:
            for name, _ in records:
                out.write(f"{name} A\n")
        last_name, last_ip = records[-1]
        wait_for(lambda: dig_short(port, last_name) == last_ip, "the last Service in DNS")
        servers = [("mk8s", port, proc.pid, DNS_THREADS)]
        if KNOTD is None:
            print(json.dumps({"bench": "dns_peer", "skipped": "knotd not installed (install-deps.sh --bench)"}))
        else:
            peer_port = free_port()
            peer = KnotPeer(os.path.join(root, "knot"), peer_port, records,
                            udp_workers=UDP_WORKERS)
            peer_pid = peer.start()
            wait_for(lambda: dig_short(peer_port, last_name) == last_ip or not peer.alive(),
                     "knotd to answer")
            if not peer.alive():
                raise SystemExit(f"knotd exited: {peer.output()}")
            servers.append(("knot", peer_port, peer_pid, None))
        points = [(1, 0), (16, 0)] + ([(1, PACED_RATE)] if PACED_RATE else [])
        for clients, rate in points:
            results = {}
            paced = {"rate_limit": rate} if rate else {}
            for server, server_port, pid, thread_names in servers:
                result = dnsperf_run(dnsperf, server_port, queries, clients, seconds, pid,
                                     thread_names, rate)
                results[server] = result
                print(json.dumps({"bench": "dns_cluster_names", "server": server,
                                  "clients": clients, **paced, "seconds": seconds,
                                  "names": services, **result, "goal_qps": GOAL_QPS,
                                  "met": result["qps"] >= GOAL_QPS}), flush=True)
            if rate and "knot" in results:  # the paced point compares CPU only
                ours, theirs = results["mk8s"], results["knot"]
                print(json.dumps({"bench": "dns_vs_peer_paced", "peer": "knot", "clients": clients,
                                  "rate_limit": rate,
                                  "mk8s_cpu_us_per_query": ours["dns_threads_cpu_us_per_query"],
                                  "peer_cpu_us_per_query": theirs["cpu_us_per_query"],
                                  "cpu_ratio": round(theirs["cpu_us_per_query"] /
                                                     ours["dns_threads_cpu_us_per_query"], 3)
                                  if ours["dns_threads_cpu_us_per_query"] > 0 else 0.0}),
                      flush=True)
            elif "knot" in results:
                ours, theirs = results["mk8s"], results["knot"]
                ratio = ours["qps"] / theirs["qps"] if theirs["qps"] else 0.0
                cpu_ratio = (theirs["cpu_us_per_query"] / ours["dns_threads_cpu_us_per_query"]
                             if ours["dns_threads_cpu_us_per_query"] > 0 else 0.0)
                print(json.dumps({"bench": "dns_vs_peer", "peer": "knot", "clients": clients,
                                  "mk8s_qps": round(ours["qps"]), "peer_qps": round(theirs["qps"]),
                                  "ratio": round(ratio, 3), "cpu_ratio": round(cpu_ratio, 3),
                                  "goal_qps": GOAL_QPS, "goal_ratio": GOAL_RATIO,
                                  "met_qps": ours["qps"] >= GOAL_QPS,
                                  "met_ratio": ratio >= GOAL_RATIO}), flush=True)
    finally:
        if peer is not None:
            peer.stop()
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
