#!/usr/bin/env python3
"""The kubelet on real containerd: a real mk8sd (apiserver, controllers, scheduler, kubelet)
inside a network namespace of its own, driven with the real kubectl.

Covers: node registration and readiness, a Deployment's pods Running with IPs of the node's pod
CIDR and serving HTTP, a killed container restarted (restartCount 1), CrashLoopBackOff, a
configMap volume and a secret env var, kubectl exec (stdin, exit code) and port-forward, deletion releasing the sandbox and IP, adoption after
kill -9 of mk8sd (same container IDs, no restart counted), and `mk8s stop` (SIGTERM) stopping
every pod and containerd. Needs root, containerd, ctr, kubectl and nsenter (exits 77 =
skipped otherwise)."""
import ipaddress
import json
import os
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from cluster import ClusterInNetns, busybox_image, e2e_main, why_no_node  # noqa: E402
from mk8s_testlib import pids_with  # noqa: E402
from netns import wait_for  # noqa: E402

HTTPD_IMAGE = "localhost/mk8s-test/httpd:1"
SLEEP_IMAGE = "localhost/mk8s-test/sleep:1"
PAGE = "hello from mk8s e2e\n"


class KubeletE2E(ClusterInNetns):
    NAME = "kubelet"

    @staticmethod
    def why_skip():
        return why_no_node(("ip", "nsenter", "kubectl", "ctr"))

    @classmethod
    def set_up_cluster(cls):
        cls.figures = {}
        cls.set_up_node_netns("e2e", 200)
        cls.build_images()
        cls.start_daemon()
        started = time.monotonic()
        cls.wait_node_ready()
        cls.figures["node registration -> Ready (s)"] = round(time.monotonic() - started, 2)
        cls.main.import_images(cls.images)

    @classmethod
    def tearDownClass(cls):
        print("measured:", json.dumps(cls.figures), flush=True)
        super().tearDownClass()

    # --- helpers -----------------------------------------------------------------------------
    @classmethod
    def build_images(cls):
        www = os.path.join(cls.dir, "index.html")
        with open(www, "w") as f:
            f.write(PAGE)
        cls.images = [
            busybox_image(cls.dir, HTTPD_IMAGE, "httpd -f -p 80 -h /www", "httpd.tar",
                          files=[f"{www}:/www/index.html"]),
            busybox_image(cls.dir, SLEEP_IMAGE, "sleep 3600", "sleep.tar")]

    @classmethod
    def start_daemon(cls):
        """Starts (or, after it ended, restarts) the node's mk8sd; returns once it answers."""
        cls.start_node("apiserver,controllers,scheduler,kubelet")
        cls.main.wait_api()

    @classmethod
    def ctr(cls, *args, check=True):
        return cls.main.ctr(*args, check=check)

    @classmethod
    def containerd_pids(cls):
        return pids_with(os.path.join(cls.state, "containerd"))

    def pods(self, selector):
        items = self.get("pods", "-l", selector)["items"]
        return [p for p in items if "deletionTimestamp" not in p["metadata"]]

    def running_with_ip(self, selector, count):
        pods = self.pods(selector)
        ok = [p for p in pods if p["status"].get("phase") == "Running" and p["status"].get("podIP")]
        return ok if len(ok) == count and len(pods) == count else None

    def http_get(self, ip):
        return self.ns.run("wget", "-q", "-O", "-", "-T", "3", f"http://{ip}/", check=False).stdout \
            if shutil.which("wget") else \
            self.ns.run("curl", "-s", "--max-time", "3", f"http://{ip}/", check=False).stdout

    def container_status(self, pod_name, container=None):
        pod = self.get("pod", pod_name)
        statuses = pod["status"].get("containerStatuses", [])
        for s in statuses:
            if container is None or s["name"] == container:
                return s
        return None

    def log_file(self, pod, container, restart=0):
        meta = pod["metadata"]
        return os.path.join(self.state, "kubelet", "logs",
                            f"{meta['namespace']}_{meta['name']}_{meta['uid']}",
                            container, f"{restart}.log")

    def pod_uids_in_cri(self):
        uids = set()
        for cid in self.ctr("containers", "ls", "-q").stdout.split():
            info = self.ctr("containers", "info", cid, check=False)
            if info.returncode == 0:
                labels = json.loads(info.stdout).get("Labels") or {}
                if "io.kubernetes.pod.uid" in labels:
                    uids.add(labels["io.kubernetes.pod.uid"])
        return uids

    # --- tests, in order ---------------------------------------------------------------------
    def test_1_node_and_deployment(self):
        node = self.get("node", self.node)
        status = node["status"]
        self.assertIn({"type": "InternalIP", "address": self.node_ip}, status["addresses"])
        self.assertTrue(status["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://"))
        self.assertEqual(status["nodeInfo"]["kubeletVersion"], "v1.32.4")
        self.assertEqual(status["capacity"]["pods"], "110")
        cidr = ipaddress.ip_network(node["spec"]["podCIDR"])
        lease = self.get("lease", "-n", "kube-node-lease", self.node)
        self.assertEqual(lease["spec"]["holderIdentity"], self.node)

        started = time.monotonic()
        self.kubectl("create", "deployment", "web", f"--image={HTTPD_IMAGE}", "--replicas=3")
        pods = wait_for(lambda: self.running_with_ip("app=web", 3), timeout=120,
                        what="3 web pods Running", interval=0.1)
        self.figures["deployment of 3 -> all Running (s)"] = round(time.monotonic() - started, 2)
        for pod in pods:
            ip = ipaddress.ip_address(pod["status"]["podIP"])
            self.assertIn(ip, cidr)
            self.assertEqual(pod["status"]["hostIP"], self.node_ip)
            self.assertEqual(pod["status"]["qosClass"], "BestEffort")
            cs = pod["status"]["containerStatuses"][0]
            self.assertTrue(cs["ready"])
            self.assertTrue(cs["containerID"].startswith("containerd://"))
            conditions = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
            self.assertEqual(conditions.get("Ready"), "True")
            self.assertEqual(conditions.get("Initialized"), "True")
            body = wait_for(lambda: self.http_get(str(ip)) == PAGE, timeout=30,
                            what=f"HTTP from {ip}")
            self.assertTrue(body)

    def test_1b_exec_and_port_forward(self):
        # kubectl -> API server (pods/exec, pods/portforward) -> kubelet :10250 -> containerd.
        pod = self.pods("app=web")[0]["metadata"]["name"]
        started = time.monotonic()
        r = self.kubectl("exec", pod, "--", "echo", "hi")
        self.figures["kubectl exec echo hi (s)"] = round(time.monotonic() - started, 2)
        self.assertEqual(r.stdout, "hi\n")
        r = self.kubectl("exec", "-i", pod, "--", "cat", input="stdin through exec\n")
        self.assertEqual(r.stdout, "stdin through exec\n")
        r = self.kubectl("exec", pod, "--", "sh", "-c", "exit 3", check=False)
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("command terminated with exit code 3", r.stderr)
        forward = self.ns.popen("kubectl", "port-forward", f"pod/{pod}", "18080:80", env=self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            self.assertIn("Forwarding from 127.0.0.1:18080", forward.stdout.readline())
            self.assertEqual(self.http_get("127.0.0.1:18080"), PAGE)
        finally:
            forward.terminate()
            forward.wait(timeout=30)
            forward.stdout.close()
            forward.stderr.close()

    def test_2_killed_container_restarts(self):
        pod = self.pods("app=web")[0]
        name = pod["metadata"]["name"]
        cid = pod["status"]["containerStatuses"][0]["containerID"].split("//", 1)[1]
        tasks = self.ctr("tasks", "ls").stdout.splitlines()[1:]
        pid = next(int(line.split()[1]) for line in tasks if line.split()[0] == cid)
        os.kill(pid, signal.SIGKILL)
        started = time.monotonic()

        def restarted():
            s = self.container_status(name)
            return s if s and s["restartCount"] == 1 and "running" in s["state"] else None
        s = wait_for(restarted, timeout=60, what="container restarted", interval=0.1)
        self.figures["killed container -> running again (s)"] = round(time.monotonic() - started, 2)
        self.assertNotEqual(s["containerID"].split("//", 1)[1], cid)
        self.assertIn("terminated", s["lastState"])
        self.assertEqual(s["lastState"]["terminated"]["exitCode"], 137)
        ip = self.get("pod", name)["status"]["podIP"]
        wait_for(lambda: self.http_get(ip) == PAGE, timeout=30, what="HTTP after restart")

    def test_3_crash_loop_back_off(self):
        self.kubectl("run", "crash", f"--image={SLEEP_IMAGE}", "--restart=Always", "--command",
                     "--", "sh", "-c", "echo crashing; exit 1")

        def backing_off():
            out = self.kubectl("get", "pod", "crash", "--no-headers", check=False).stdout
            return "CrashLoopBackOff" in out
        wait_for(backing_off, timeout=90, what="CrashLoopBackOff in kubectl get pod")
        s = self.container_status("crash")
        self.assertEqual(s["state"]["waiting"]["reason"], "CrashLoopBackOff")
        self.assertRegex(s["state"]["waiting"]["message"],
                         r"^back-off \d+s restarting failed container=crash pod=crash_default\(")
        self.assertEqual(s["lastState"]["terminated"]["exitCode"], 1)
        self.assertEqual(s["lastState"]["terminated"]["reason"], "Error")
        self.assertGreaterEqual(s["restartCount"], 1)
        self.assertIn("crashing", self.kubectl("logs", "crash", "--previous").stdout)
        self.kubectl("delete", "pod", "crash", "--wait=false")

    def test_4_config_map_volume_and_secret_env(self):
        self.kubectl("create", "configmap", "cfg", "--from-literal=key=hello-config")
        self.kubectl("create", "secret", "generic", "sec", "--from-literal=token=s3cret")
        started = time.monotonic()
        self.kubectl("apply", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "cfgpod"},
            "spec": {
                "containers": [{
                    "name": "main", "image": SLEEP_IMAGE,
                    "command": ["sh", "-c", "cat /etc/config/key; echo; echo $SECRET_ENV; sleep 3600"],
                    "env": [{"name": "SECRET_ENV", "valueFrom": {
                        "secretKeyRef": {"name": "sec", "key": "token"}}}],
                    "volumeMounts": [{"name": "config", "mountPath": "/etc/config"}]}],
                "volumes": [{"name": "config", "configMap": {"name": "cfg"}}]}}))
        wait_for(lambda: self.get("pod", "cfgpod")["status"].get("phase") == "Running",
                 timeout=60, what="cfgpod Running", interval=0.1)
        self.figures["pod with volume + secret env: apply -> Running (s)"] = round(
            time.monotonic() - started, 2)
        pod = self.get("pod", "cfgpod")
        path = self.log_file(pod, "main")

        def logged():
            if not os.path.exists(path):
                return None
            with open(path) as f:
                text = f.read()
            return text if "s3cret" in text else None
        text = wait_for(logged, timeout=30, what="cfgpod's output in its log file")
        lines = [line.split(" ", 3)[3] for line in text.splitlines()]
        self.assertEqual(lines[:2], ["hello-config", "s3cret"])
        self.assertRegex(text.splitlines()[0], r"^\S+ stdout F hello-config$")
        # The same through the API server's pods/log proxy and the kubelet's HTTPS API.
        logs = self.kubectl("logs", "cfgpod").stdout
        self.assertEqual(logs.splitlines()[:2], ["hello-config", "s3cret"])

    def test_4b_probes(self):
        def pod(name, image, container_extra):
            return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                    "spec": {"terminationGracePeriodSeconds": 1,
                             "containers": [dict({"name": "main", "image": image}, **container_extra)]}}
        self.kubectl("apply", "-f", "-", input=json.dumps(pod("ready-ok", HTTPD_IMAGE, {
            "readinessProbe": {"httpGet": {"path": "/index.html", "port": 80}, "periodSeconds": 1}})))
        self.kubectl("apply", "-f", "-", input=json.dumps(pod("ready-404", HTTPD_IMAGE, {
            "readinessProbe": {"httpGet": {"path": "/missing", "port": 80}, "periodSeconds": 1}})))
        self.kubectl("apply", "-f", "-", input=json.dumps(pod("live-fail", SLEEP_IMAGE, {
            "livenessProbe": {"exec": {"command": ["false"]}, "periodSeconds": 1,
                              "failureThreshold": 2}})))

        def ready(name):
            s = self.container_status(name)
            return s is not None and s["ready"]
        wait_for(lambda: ready("ready-ok"), timeout=60, what="ready-ok Ready")
        conditions = {c["type"]: c["status"] for c in self.get("pod", "ready-ok")["status"]["conditions"]}
        self.assertEqual(conditions["Ready"], "True")

        def restarted():
            s = self.container_status("live-fail")
            return s if s and s["restartCount"] >= 1 else None
        s = wait_for(restarted, timeout=90, what="live-fail restarted by its liveness probe")
        self.assertIn("terminated", s["lastState"])
        # The 404 pod runs but never turns ready.
        s = self.container_status("ready-404")
        self.assertIn("running", s["state"])
        self.assertFalse(s["ready"])
        events = self.kubectl("get", "events", "--field-selector", "involvedObject.name=live-fail",
                              "-o", "json").stdout
        reasons = {e["reason"] for e in json.loads(events)["items"]}
        self.assertIn("Unhealthy", reasons)
        self.assertIn("Killing", reasons)
        self.kubectl("delete", "pod", "ready-ok", "ready-404", "live-fail", "--wait=false")

    def test_4c_image_pull_errors(self):
        self.kubectl("run", "never", "--image=localhost/mk8s-test/absent:1",
                     "--image-pull-policy=Never")
        self.kubectl("run", "unpullable", "--image=127.0.0.1:9/mk8s-test/absent:1")

        def waiting(name):
            s = self.container_status(name)
            return s["state"].get("waiting", {}).get("reason") if s else None
        wait_for(lambda: waiting("never") == "ErrImageNeverPull", timeout=60, what="ErrImageNeverPull")
        self.assertIn("ErrImageNeverPull", self.kubectl("get", "pod", "never").stdout)
        wait_for(lambda: waiting("unpullable") in ("ErrImagePull", "ImagePullBackOff"), timeout=60,
                 what="ErrImagePull")
        wait_for(lambda: waiting("unpullable") == "ImagePullBackOff", timeout=60,
                 what="ImagePullBackOff")
        self.kubectl("delete", "pod", "never", "unpullable", "--wait=false")

    def test_5_deleted_pod_is_gone_from_the_runtime(self):
        pod = self.get("pod", "cfgpod")
        uid = pod["metadata"]["uid"]
        ip = pod["status"]["podIP"]
        self.assertIn(uid, self.pod_uids_in_cri())
        started = time.monotonic()
        self.kubectl("delete", "pod", "cfgpod", "--grace-period=2", "--timeout=60s")
        self.figures["delete pod (grace 2s, sh ignores SIGTERM) -> gone from API (s)"] = round(time.monotonic() - started, 2)
        wait_for(lambda: uid not in self.pod_uids_in_cri(), timeout=30, what="sandbox removed")
        ipam = os.path.join(self.state, "cni", "ipam")
        leases = [f for _, _, files in os.walk(ipam) for f in files]
        self.assertNotIn(ip, leases)

    def test_6_restart_after_kill_9_adopts_running_pods(self):
        before = {p["metadata"]["name"]: (p["status"]["containerStatuses"][0]["containerID"],
                                          p["status"]["containerStatuses"][0]["restartCount"])
                  for p in self.pods("app=web")}
        self.assertEqual(len(before), 3)
        self.proc.kill()
        self.proc.wait()
        # The pods keep running without mk8sd.
        for cid, _ in before.values():
            self.assertIn(cid.split("//", 1)[1], self.ctr("tasks", "ls", "-q").stdout.split())
        started = time.monotonic()
        type(self).start_daemon()
        wait_for(lambda: "kubelet: node " + self.node + " running" in self.daemon_log(),
                 timeout=90, what="kubelet running again")
        self.figures["restart after kill -9 -> kubelet running (s)"] = round(time.monotonic() - started, 2)
        # For several relist periods the same containers run, with no restart counted.
        end = time.monotonic() + 5
        while time.monotonic() < end:
            now = {p["metadata"]["name"]: (p["status"]["containerStatuses"][0]["containerID"],
                                           p["status"]["containerStatuses"][0]["restartCount"])
                   for p in self.pods("app=web")}
            self.assertEqual(now, before)
            time.sleep(0.5)  # poll interval of the stability check
        for pod in self.pods("app=web"):
            self.assertEqual(self.http_get(pod["status"]["podIP"]), PAGE)

    def test_7_sigterm_stops_pods_and_containerd(self):
        type(self).restarts_before_stop = {
            p["metadata"]["name"]: p["status"]["containerStatuses"][0]["restartCount"]
            for p in self.pods("app=web")}
        running = self.ctr("tasks", "ls", "-q").stdout.split()
        self.assertTrue(running)
        shims = pids_with(self.sock)
        started = time.monotonic()
        self.proc.terminate()
        self.proc.wait(timeout=120)
        self.figures["SIGTERM -> mk8sd exited (s)"] = round(time.monotonic() - started, 2)
        self.assertEqual(self.proc.returncode, 0, self.daemon_log())
        wait_for(lambda: not self.containerd_pids(), timeout=30, what="containerd gone")
        for pid in shims:
            wait_for(lambda: not os.path.exists(f"/proc/{pid}"), timeout=30, what=f"shim {pid} gone")

    def test_8_start_after_stop_recreates_the_pods(self):
        before = self.restarts_before_stop
        started = time.monotonic()
        type(self).start_daemon()

        def restarted():
            pods = self.running_with_ip("app=web", 3)
            if not pods:
                return None
            counts = {p["metadata"]["name"]: p["status"]["containerStatuses"][0]["restartCount"]
                      for p in pods}
            return pods if all(counts.get(n) == c + 1 for n, c in before.items()) else None
        pods = wait_for(restarted, timeout=120, what="web pods running again, restarts counted",
                        interval=0.2)
        self.figures["start after stop -> 3 pods running again (s)"] = round(time.monotonic() - started, 2)
        for pod in pods:
            self.assertEqual(self.http_get(pod["status"]["podIP"]), PAGE)


if __name__ == "__main__":
    e2e_main(KubeletE2E)
