#!/usr/bin/env python3
"""Pods on real containerd: startup latency, a 100-replica rollout, and the node agent's idle cost.

Prints JSON lines:
  {"bench":"pod_startup", "pods":50, "p50_ms", "p99_ms", "max_ms"}      create -> Running, one at a time
  {"bench":"deployment_ready", "replicas":100, "seconds"}              create -> 100 pods Ready
  {"bench":"node_agent_idle", "pods":30, "mk8sd_rss_mb", "hollow_node_baseline_rss_mb",
   "kubelet_proxy_added_mb", "mk8sd_cpu_percent", "containerd_rss_mb", "shims_rss_mb", "shims",
   "breakdown": {...}}
  The breakdown: both daemons' RSS before any pod ("*_no_pods_mb", the node agent's fixed cost is
  their difference), the growth per idle pod ("*_per_pod_kb", after the startup and rollout
  benches' churn), and anonymous (heap, stacks) vs file-backed (code) RSS and thread counts.
POD_BENCH_IDLE_ONLY=1 skips the startup and rollout timings (the 100-replica rollout still runs
unmeasured, so the idle figures see the same churn minus the 50 startup pods).

Everything runs inside a network namespace this script creates (pods, CNI bridge, iptables rules),
with no route off the machine; the namespace, daemons, containerd and the temp folder are removed
at the end. Needs root, containerd, kubectl and busybox-static (skips with a JSON "skipped" line).
Usage: MK8SD_BIN=build/daemon/mk8sd tests/bench/pod_bench.py
"""
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "e2e", "support"))
from cluster import (Mk8sd, busybox_image, kill_processes_mentioning,  # noqa: E402
                     unmount_below)
from mk8s_testlib import cpu_seconds, pids_with  # noqa: E402
from netns import NetNS, missing_requirements, wait_for  # noqa: E402

MK8SD = os.environ.get("MK8SD_BIN", "mk8sd")
IMAGE = "localhost/mk8s-bench/httpd:1"
STARTUP_PODS = 50
DEPLOYMENT_REPLICAS = 100
IDLE_PODS = 30
IDLE_SECONDS = 20


def rss_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def memory_facts(pid):
    """RssAnon / RssFile (MB) and the thread count of `pid`."""
    facts = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("RssAnon", "RssFile"):
                    facts[key] = round(int(value.split()[0]) / 1024, 1)
                elif key == "Threads":
                    facts[key] = int(value)
    except OSError:
        pass
    return facts


class Cluster(Mk8sd):
    """One mk8sd in `ns` with the given components (a node too when `node` is given), answering
    once constructed; kubectl inside the namespace."""

    def __init__(self, ns, root, components, node=None, node_ip=None, extra_args=()):
        # Short: unix socket paths under it (containerd's) must stay within 108 bytes.
        state = os.path.join(root, "node" if node else "cp")
        args = ["--apiserver-port", "0", f"--components={components}"]
        if node:
            args += ["--kubelet-port", "0", "--node-name", node, "--node-ip", node_ip]
        os.makedirs(state, exist_ok=True)
        super().__init__(ns, state, os.path.join(state, "daemon.out"), [*args, *extra_args],
                         cache_dir=os.path.join(state, "kubectl-cache"), kubectl_timeout=120)
        self.start()
        self.wait_kubeconfig()
        self.wait_api()

    def stop(self, timeout=120):
        super().stop(timeout)


def pod_manifest(name):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"bench": "startup"}},
            "spec": {"terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "httpd", "image": IMAGE, "imagePullPolicy": "Never"}]}}


def running_times(cluster, names, results, stop):
    """Watches pods (kubectl get -w) and records when each first reports phase Running."""
    watch = subprocess.Popen(
        [*cluster.ns.prefix(), "kubectl", "get", "pods", "-l", "bench=startup", "-w",
         "--output-watch-events", "-o", "json"], stdout=subprocess.PIPE, text=True, env=cluster.env)
    decoder = json.JSONDecoder()
    buffer = ""
    while not stop.is_set():
        line = watch.stdout.readline()
        if not line:
            break
        buffer += line
        try:
            event, end = decoder.raw_decode(buffer.lstrip())
        except ValueError:
            continue
        buffer = buffer.lstrip()[end:]
        pod = event.get("object", {})
        name = pod.get("metadata", {}).get("name")
        if name in names and name not in results and pod.get("status", {}).get("phase") == "Running":
            results[name] = time.monotonic()
    watch.terminate()
    watch.wait()


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def bench_startup(cluster):
    names = [f"startup-{i}" for i in range(STARTUP_PODS)]
    running, stop = {}, threading.Event()
    watcher = threading.Thread(target=running_times, args=(cluster, set(names), running, stop))
    watcher.start()
    time.sleep(1)  # lets the watch establish before the first create (a benchmark, not a test)
    latencies = []
    try:
        for name in names:
            created = time.monotonic()
            cluster.kubectl("create", "-f", "-", input=json.dumps(pod_manifest(name)))
            wait_for(lambda: name in running, timeout=120, what=f"{name} Running", interval=0.01)
            latencies.append((running[name] - created) * 1000)
    finally:
        stop.set()
        cluster.kubectl("delete", "pods", "-l", "bench=startup", "--wait=false", check=False)
        watcher.join(timeout=10)
    wait_for(lambda: not cluster.get("pods", "-l", "bench=startup")["items"], timeout=300,
             what="startup pods deleted", interval=0.5)
    print(json.dumps({"bench": "pod_startup", "pods": STARTUP_PODS,
                      "p50_ms": round(percentile(latencies, 0.5)),
                      "p99_ms": round(percentile(latencies, 0.99)),
                      "max_ms": round(max(latencies))}), flush=True)


def create_deployment(cluster, name, replicas):
    """A Deployment of the bench image whose pods stop at once (busybox httpd as PID 1 ignores
    SIGTERM, so the default 30 s grace would keep deleted pods around)."""
    labels = {"app": name}
    cluster.kubectl("create", "-f", "-", input=json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "labels": labels},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                 "template": {"metadata": {"labels": labels},
                              "spec": {"terminationGracePeriodSeconds": 1,
                                       "containers": [{"name": "httpd", "image": IMAGE}]}}}}))


def scale_to(cluster, name, replicas):
    """Scales down and waits until only `replicas` pods exist (terminating ones gone too)."""
    cluster.kubectl("scale", "deployment", name, f"--replicas={replicas}")
    wait_for(lambda: len(cluster.get("pods", "-l", f"app={name}")["items"]) == replicas,
             timeout=300, what=f"{replicas} {name} pods left", interval=0.5)


def ready_replicas(cluster, name):
    return cluster.get("deployment", name).get("status", {}).get("readyReplicas", 0)


def bench_deployment(cluster):
    started = time.monotonic()
    create_deployment(cluster, "many", DEPLOYMENT_REPLICAS)
    wait_for(lambda: ready_replicas(cluster, "many") == DEPLOYMENT_REPLICAS, timeout=600,
             what=f"{DEPLOYMENT_REPLICAS} replicas Ready", interval=0.2)
    print(json.dumps({"bench": "deployment_ready", "replicas": DEPLOYMENT_REPLICAS,
                      "seconds": round(time.monotonic() - started, 2)}), flush=True)


def settle_rss(pid):
    """RSS once it stops growing for a few seconds (or after 30 s)."""
    last, end = rss_mb(pid), time.monotonic() + 30
    while time.monotonic() < end:
        time.sleep(3)  # sampling interval
        now = rss_mb(pid)
        if abs(now - last) < 0.5:
            return now
        last = now
    return last


def replay_startup_pods(cluster):
    """The startup bench's API work without its timing: STARTUP_PODS pods created one by one,
    all Running, then deleted (for the hollow-node baseline, so both daemons did the same)."""
    names = [f"startup-{i}" for i in range(STARTUP_PODS)]
    for name in names:
        cluster.kubectl("create", "-f", "-", input=json.dumps(pod_manifest(name)))

    def all_running():
        pods = cluster.get("pods", "-l", "bench=startup")["items"]
        return len(pods) == STARTUP_PODS and all(
            p.get("status", {}).get("phase") == "Running" for p in pods)
    wait_for(all_running, timeout=300, what="startup pods Running", interval=0.5)
    cluster.kubectl("delete", "pods", "-l", "bench=startup", "--wait=false")
    wait_for(lambda: not cluster.get("pods", "-l", "bench=startup")["items"], timeout=300,
             what="startup pods deleted", interval=0.5)


def bench_idle(cluster, ns, root, containerd_dir, mk8sd_no_pods, replay_startup):
    scale_to(cluster, "many", IDLE_PODS)
    wait_for(lambda: ready_replicas(cluster, "many") == IDLE_PODS, timeout=300, what="ready")
    mk8sd_rss = settle_rss(cluster.proc.pid)
    mk8sd_facts = memory_facts(cluster.proc.pid)
    cpu_before, wall_before = cpu_seconds(cluster.proc.pid), time.monotonic()
    time.sleep(IDLE_SECONDS)  # the idle window being measured
    cpu_percent = 100 * (cpu_seconds(cluster.proc.pid) - cpu_before) / (time.monotonic() - wall_before)
    containerd = pids_with(containerd_dir, comm="containerd")
    shims = pids_with(containerd_dir, comm="containerd-shim")
    containerd_rss = sum(rss_mb(p) for p in containerd)
    shims_rss = sum(rss_mb(p) for p in shims)
    # The baseline: the same API work (the startup bench's pods created and deleted, 100
    # replicas Running, scaled to IDLE_PODS) done by one hollow node (a no-op kubelet that
    # writes the same pod statuses) instead of the real kubelet and kube-proxy, so the
    # difference is what the node agent itself holds.
    baseline = Cluster(ns, root, "apiserver,controllers,scheduler", extra_args=["--hollow-nodes", "1"])
    try:
        wait_for(lambda: baseline.node_ready("hollow-node-0"), timeout=120, what="hollow node Ready")
        baseline_no_pods = settle_rss(baseline.proc.pid)
        if replay_startup:
            replay_startup_pods(baseline)
        create_deployment(baseline, "many", DEPLOYMENT_REPLICAS)
        wait_for(lambda: ready_replicas(baseline, "many") == DEPLOYMENT_REPLICAS, timeout=300,
                 what="baseline replicas Ready", interval=0.5)
        scale_to(baseline, "many", IDLE_PODS)
        baseline_rss = settle_rss(baseline.proc.pid)
        baseline_facts = memory_facts(baseline.proc.pid)
    finally:
        baseline.stop()
    breakdown = {
        "mk8sd_no_pods_mb": round(mk8sd_no_pods, 1),
        "hollow_node_baseline_no_pods_mb": round(baseline_no_pods, 1),
        "kubelet_proxy_added_no_pods_mb": round(mk8sd_no_pods - baseline_no_pods, 1),
        "mk8sd_per_pod_kb": round((mk8sd_rss - mk8sd_no_pods) * 1024 / IDLE_PODS),
        "hollow_node_baseline_per_pod_kb": round((baseline_rss - baseline_no_pods) * 1024 / IDLE_PODS),
        "mk8sd": mk8sd_facts, "hollow_node_baseline": baseline_facts}
    print(json.dumps({"bench": "node_agent_idle", "pods": IDLE_PODS,
                      "mk8sd_rss_mb": round(mk8sd_rss, 1),
                      "hollow_node_baseline_rss_mb": round(baseline_rss, 1),
                      "kubelet_proxy_added_mb": round(mk8sd_rss - baseline_rss, 1),
                      "mk8sd_cpu_percent": round(cpu_percent, 2),
                      "containerd_rss_mb": round(containerd_rss, 1),
                      "shims_rss_mb": round(shims_rss, 1), "shims": len(shims),
                      "breakdown": breakdown}), flush=True)


def build_image(root):
    page = os.path.join(root, "index.html")
    with open(page, "w") as f:
        f.write("bench\n")
    return busybox_image(root, IMAGE, "httpd -f -p 80 -h /www", "httpd.tar",
                         files=[f"{page}:/www/index.html"])


def cleanup(cluster, root, containerd_dir):
    if cluster is not None:
        cluster.stop()  # SIGTERM stops the pods and containerd
    kill_processes_mentioning(containerd_dir)
    unmount_below(root)
    shutil.rmtree(root, ignore_errors=True)


def main():
    reason = missing_requirements(tools=("ip", "nsenter", "kubectl", "ctr", "iptables"))
    if not reason and not os.path.exists("/usr/bin/containerd"):
        reason = "containerd is not installed"
    if reason:
        print(json.dumps({"bench": "pod_startup", "skipped": reason}))
        return 0
    root = tempfile.mkdtemp(prefix="mk8s-pod-bench-")
    node_ip = f"10.200.{random.randrange(1, 250)}.1"
    cluster = None
    containerd_dir = ""
    with NetNS("podbench") as ns:
        try:
            ns.add_dummy("node0", [node_ip + "/24"])
            tar = build_image(root)
            cluster = Cluster(ns, root, "apiserver,controllers,scheduler,kubelet,proxy",
                              node="bench-node", node_ip=node_ip)
            containerd_dir = os.path.join(cluster.state, "containerd")
            wait_for(lambda: cluster.node_ready("bench-node"), timeout=120, what="node Ready")
            cluster.import_images([tar])
            mk8sd_no_pods = settle_rss(cluster.proc.pid)
            idle_only = bool(os.environ.get("POD_BENCH_IDLE_ONLY"))
            if idle_only:
                create_deployment(cluster, "many", DEPLOYMENT_REPLICAS)
                wait_for(lambda: ready_replicas(cluster, "many") == DEPLOYMENT_REPLICAS,
                         timeout=600, what=f"{DEPLOYMENT_REPLICAS} replicas Ready", interval=0.5)
            else:
                bench_startup(cluster)
                bench_deployment(cluster)
            bench_idle(cluster, ns, root, containerd_dir, mk8sd_no_pods, replay_startup=not idle_only)
        finally:
            cleanup(cluster, root, containerd_dir or root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
