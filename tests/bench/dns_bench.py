#!/usr/bin/python3
"""The dns addon's query rate: Debian's dnsperf against the addon inside its own mk8sd.

Usage: MK8SD_BIN=... MK8S_BIN=... tests/bench/dns_bench.py [SECONDS=5] [SERVICES=100]
Starts mk8sd on a temp state folder, enables dns on a free 127.0.0.1 port (its upstream is a
closed port: only cluster names are asked), creates SERVICES Services, and runs dnsperf at 1 and
16 clients over A queries for them. Prints one JSON object per line; the goal from issue 6 is
>= 50,000 qps. The side-by-side peer (unbound/knot on the same zone) is not run yet.
"""

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

MK8S = os.environ.get("MK8S_BIN", "build/cli/mk8s")
MK8SD = os.environ.get("MK8SD_BIN", "build/daemon/mk8sd")


def wait_for(condition, what, timeout=60):
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= end:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)  # poll interval


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        return udp.getsockname()[1]


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
                             "--apiserver-bind-address", "127.0.0.1", "--no-log-stderr"],
                            stdout=log, stderr=subprocess.STDOUT)
    mk8s = lambda *a: subprocess.run([MK8S, "--state-dir", state, *a], capture_output=True,
                                     text=True, stdin=subprocess.DEVNULL)
    try:
        wait_for(lambda: mk8s("status").returncode == 0, "mk8sd")
        port = free_port()
        enabled = mk8s("enable", f"dns:port={port};address=127.0.0.1;upstream=127.0.0.1:{free_port()}")
        if enabled.returncode != 0:
            raise SystemExit(enabled.stderr)
        kubeconfig = os.path.join(root, "kubeconfig")
        with open(kubeconfig, "w") as out:
            out.write(mk8s("config").stdout)
        items = [{"apiVersion": "v1", "kind": "Service",
                  "metadata": {"name": f"svc{i}", "namespace": "default"},
                  "spec": {"ports": [{"port": 80}]}} for i in range(services)]
        created = subprocess.run(["kubectl", "create", "--validate=false", "-f", "-"], input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}),
                       env=dict(os.environ, KUBECONFIG=kubeconfig), capture_output=True, text=True)
        if created.returncode != 0:
            raise SystemExit(f"creating the Services failed: {created.stderr}")
        queries = os.path.join(root, "queries")
        with open(queries, "w") as out:
            for i in range(services):
                out.write(f"svc{i}.default.svc.cluster.local A\n")
        last = f"svc{services - 1}.default.svc.cluster.local"
        wait_for(lambda: subprocess.run(["dig", "@127.0.0.1", "-p", str(port), "+short", last],
                                        capture_output=True, text=True).stdout.strip() != "",
                 "the last Service in DNS")
        for clients in (1, 16):
            run = subprocess.run([dnsperf, "-s", "127.0.0.1", "-p", str(port), "-d", queries,
                                  "-c", str(clients), "-T", str(min(clients, 4)), "-l", str(seconds),
                                  "-q", str(max(100, clients * 20))],
                                 capture_output=True, text=True)
            qps = re.search(r"Queries per second:\s+([\d.]+)", run.stdout)
            lost = re.search(r"Queries lost:\s+(\d+)", run.stdout)
            latency = re.search(r"Average Latency \(s\):\s+([\d.]+)", run.stdout)
            value = float(qps.group(1)) if qps else 0.0
            print(json.dumps({"bench": "dns_cluster_names", "clients": clients, "seconds": seconds,
                              "qps": round(value), "lost": int(lost.group(1)) if lost else -1,
                              "avg_latency_ms": round(float(latency.group(1)) * 1000, 3) if latency else -1,
                              "goal_qps": 50000, "met": value >= 50000}), flush=True)
        print(json.dumps({"bench": "dns_peer", "skipped": "unbound/knot comparison not implemented yet"}))
    finally:
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
