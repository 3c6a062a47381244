#!/usr/bin/env python3
"""Services across real pods: mk8sd with the kubelet AND kube-proxy inside a network namespace of
its own, driven with the real kubectl.

Covers: a 3-replica Deployment exposed as a ClusterIP Service answers from the node's namespace
and from another pod, with every backend answering over repeated requests; a NodePort answers on
the node IP; a pod failing its readiness probe stays out of the endpoints and the rotation; a
memory limit exceeded is reported as OOMKilled; with the dns addon enabled, a new pod gets the
cluster DNS settings, nslookup answers the Service's ClusterIP and wget reaches it by short name. Needs root, containerd, ctr, kubectl, curl and
nsenter (skips with the reason otherwise)."""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from netns import NetNS, missing_requirements, wait_for  # noqa: E402

MK8SD = os.environ.get("MK8SD_BIN", "mk8sd")
MK8S = os.environ.get("MK8S_BIN", "mk8s")
REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
WHOAMI_IMAGE = "localhost/mk8s-test/whoami:1"   # httpd answering with the pod's hostname
SLEEP_IMAGE = "localhost/mk8s-test/sleep:1"


def why_skip():
    reason = missing_requirements(tools=("ip", "nsenter", "kubectl", "ctr", "curl", "iptables"))
    if reason:
        return reason
    if not os.path.exists("/usr/bin/containerd"):
        return "needs containerd (/usr/bin/containerd)"
    if not os.path.exists("/bin/busybox"):
        return "needs busybox-static for the test images"
    return ""


def deployment(name, replicas, image, extra_container=None):
    container = {"name": name, "image": image}
    container.update(extra_container or {})
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"terminationGracePeriodSeconds": 1,
                                           "containers": [container]}}}}


class ServiceE2E(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        reason = why_skip()
        if reason:
            print(f"SKIP service e2e: {reason}", flush=True)
            raise unittest.SkipTest(reason)
        cls.dir = tempfile.mkdtemp(prefix="mk8s-svc-e2e-")
        cls.state = os.path.join(cls.dir, "state")
        cls.sock = os.path.join(cls.state, "containerd", "containerd.sock")
        cls.kubeconfig = os.path.join(cls.state, "credentials", "client.config")
        cls.env = dict(os.environ, KUBECONFIG=cls.kubeconfig,
                       KUBECACHEDIR=os.path.join(cls.dir, "cache"))
        cls.node = f"svc-{random.randrange(16**6):06x}"
        cls.node_ip = f"10.201.{random.randrange(1, 250)}.1"
        cls.proc = None
        cls.log = None
        cls.ns = NetNS("service")
        try:
            cls.ns.add_dummy("node0", [cls.node_ip + "/24"])
            # Service IPs route to the node interface, which leads nowhere (a bridge without
            # ports): only the proxy's DNAT makes them live. There is no default route.
            cls.ns.run("ip", "route", "add", "10.152.183.0/24", "dev", "node0")
            images = cls.build_images()
            cls.log = open(os.path.join(cls.dir, "daemon.out"), "w")
            cls.proc = cls.ns.popen(
                MK8SD, "--state-dir", cls.state, "--apiserver-port", "0",
                "--components=apiserver,controllers,scheduler,kubelet,proxy", "--kubelet-port", "0",
                "--node-name", cls.node, "--node-ip", cls.node_ip,
                stdout=cls.log, stderr=subprocess.STDOUT)
            wait_for(lambda: os.path.exists(cls.kubeconfig) or cls.proc.poll() is not None,
                     what="kubeconfig")
            if cls.proc.poll() is not None:
                raise AssertionError(f"mk8sd exited ({cls.proc.returncode}):\n{cls.daemon_log()}")
            wait_for(cls.node_ready, timeout=90, what="node Ready", interval=0.2)
            # Through the CLI and the daemon's control socket, as a user would.
            imported = subprocess.run([MK8S, "--state-dir", cls.state, "images", "import", *images],
                                      capture_output=True, text=True, timeout=120)
            if imported.returncode != 0:
                raise AssertionError(f"mk8s images import: {imported.stdout}{imported.stderr}")
            listed = subprocess.run([MK8S, "--state-dir", cls.state, "images", "ls"],
                                    capture_output=True, text=True, timeout=60).stdout
            for name in (WHOAMI_IMAGE, SLEEP_IMAGE):
                if name not in listed:
                    raise AssertionError(f"{name} missing from `mk8s images ls`:\n{listed}")
        except BaseException:
            cls.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.cleanup()

    # --- helpers -----------------------------------------------------------------------------
    @classmethod
    def build_images(cls):
        oci = os.path.join(REPO, "scripts", "oci-image.py")
        whoami = os.path.join(cls.dir, "whoami.tar")
        sleep = os.path.join(cls.dir, "sleep.tar")
        subprocess.run([sys.executable, oci, "--name", WHOAMI_IMAGE, "--busybox", "--entrypoint",
                        "sh -c 'mkdir -p /www && hostname > /www/index.html && "
                        "exec httpd -f -p 80 -h /www'", "-o", whoami], check=True)
        subprocess.run([sys.executable, oci, "--name", SLEEP_IMAGE, "--busybox", "--entrypoint",
                        "sleep 3600", "-o", sleep], check=True)
        return [whoami, sleep]

    @classmethod
    def daemon_log(cls):
        cls.log.flush()
        with open(os.path.join(cls.dir, "daemon.out")) as f:
            return f.read()[-6000:]

    @classmethod
    def kubectl(cls, *args, check=True, input=None):
        return cls.ns.run("kubectl", *args, check=check, input=input, env=cls.env)

    @classmethod
    def get(cls, *args):
        return json.loads(cls.kubectl("get", *args, "-o", "json").stdout)

    @classmethod
    def node_ready(cls):
        result = cls.kubectl("get", "node", cls.node, "-o", "json", check=False)
        if result.returncode != 0:
            return False
        return any(c["type"] == "Ready" and c["status"] == "True"
                   for c in json.loads(result.stdout)["status"].get("conditions", []))

    @classmethod
    def cleanup(cls):
        """Leaves nothing behind: mk8sd (SIGTERM stops pods and containerd), stray containerd,
        mounts, the namespace and the folder."""
        if cls.proc is not None and cls.proc.poll() is None:
            cls.proc.terminate()
            try:
                cls.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                cls.proc.kill()
                cls.proc.wait()
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    if cls.dir.encode() in f.read():
                        os.kill(int(entry), signal.SIGKILL)
            except (OSError, ProcessLookupError):
                pass
        with open("/proc/mounts") as f:
            mounts = [line.split()[1] for line in f if cls.dir in line.split()[1]]
        for mount in reversed(mounts):
            subprocess.run(["umount", "-l", mount], check=False, capture_output=True)
        cls.ns.close()
        if cls.log:
            cls.log.close()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def apply(self, obj):
        self.kubectl("apply", "-f", "-", input=json.dumps(obj))

    def running_pods(self, selector, count):
        pods = [p for p in self.get("pods", "-l", selector)["items"]
                if "deletionTimestamp" not in p["metadata"]]
        ready = [p for p in pods if p["status"].get("phase") == "Running" and
                 any(c["type"] == "Ready" and c["status"] == "True"
                     for c in p["status"].get("conditions", []))]
        return ready if len(ready) == count and len(pods) == count else None

    def curl(self, url):
        return self.ns.run("curl", "-s", "--max-time", "3", url, check=False).stdout.strip()

    def answers(self, url, rounds=30):
        return {self.curl(url) for _ in range(rounds)} - {""}

    def ready_addresses(self, service, namespace="default"):
        addresses = set()
        for endpoint_slice in self.get("endpointslices", "-n", namespace, "-l",
                                       f"kubernetes.io/service-name={service}")["items"]:
            for endpoint in endpoint_slice.get("endpoints") or []:
                if endpoint.get("conditions", {}).get("ready"):
                    addresses.update(endpoint["addresses"])
        return addresses

    # --- tests, in order ---------------------------------------------------------------------
    def test_1_cluster_ip_from_node_and_pod(self):
        self.apply(deployment("web", 3, WHOAMI_IMAGE))
        pods = wait_for(lambda: self.running_pods("app=web", 3), timeout=120,
                        what="3 web pods Running and Ready", interval=0.2)
        names = {p["metadata"]["name"] for p in pods}
        self.kubectl("expose", "deployment", "web", "--port=80")
        ip = self.get("service", "web")["spec"]["clusterIP"]
        self.assertTrue(ip.startswith("10.152.183."), ip)
        # Every backend answers over repeated requests from the node's namespace.
        wait_for(lambda: self.answers(f"http://{ip}/") == names, timeout=60,
                 what=f"all of {sorted(names)} answering on {ip}", interval=0.5)
        # And from another pod, through its CNI interface and the proxy's rules.
        self.apply(deployment("client", 1, SLEEP_IMAGE))
        client = wait_for(lambda: self.running_pods("app=client", 1), timeout=120,
                          what="client pod")[0]["metadata"]["name"]
        from_pod = wait_for(
            # An explicit port and no -T: busybox-static's wget crashes otherwise (the service
            # name lookup goes through NSS, which a static glibc cannot load; -T likewise).
            lambda: {self.kubectl("exec", client, "--", "wget", "-q", "-O", "-",
                                  f"http://{ip}:80/", check=False).stdout.strip()
                     for _ in range(12)} & names,
            timeout=60, what="the Service answering a pod", interval=0.5)
        self.assertTrue(from_pod <= names)

    def test_2_node_port(self):
        self.kubectl("expose", "deployment", "web", "--name=web-np", "--type=NodePort", "--port=80")
        port = self.get("service", "web-np")["spec"]["ports"][0]["nodePort"]
        self.assertTrue(30000 <= port <= 32767, port)
        names = {p["metadata"]["name"] for p in self.running_pods("app=web", 3)}
        answer = wait_for(lambda: self.curl(f"http://{self.node_ip}:{port}/") or None,
                          timeout=60, what="the NodePort answering")
        self.assertIn(answer, names)

    def test_3_failing_readiness_stays_out_of_rotation(self):
        # Same labels as the web pods, so the web Service selects it, but never Ready.
        self.apply({"apiVersion": "v1", "kind": "Pod",
                    "metadata": {"name": "web-unready", "labels": {"app": "web"}},
                    "spec": {"terminationGracePeriodSeconds": 1, "containers": [{
                        "name": "web", "image": WHOAMI_IMAGE,
                        "readinessProbe": {"httpGet": {"path": "/missing", "port": 80},
                                           "periodSeconds": 1}}]}})
        pod_ip = wait_for(lambda: self.get("pod", "web-unready")["status"].get("podIP"),
                          timeout=120, what="web-unready has an IP")
        # The endpoints controller lists it as not ready; the proxy leaves it out.
        wait_for(lambda: any(pod_ip in e.get("addresses", []) for s in self.get(
                     "endpointslices", "-l", "kubernetes.io/service-name=web")["items"]
                     for e in s.get("endpoints") or []), timeout=60,
                 what="web-unready listed in the web EndpointSlice")
        self.assertNotIn(pod_ip, self.ready_addresses("web"))
        self.assertEqual(self.curl(f"http://{pod_ip}/"), "web-unready")  # it does serve
        ip = self.get("service", "web")["spec"]["clusterIP"]
        self.assertNotIn("web-unready", self.answers(f"http://{ip}/", rounds=40))
        status = self.get("pod", "web-unready")["status"]
        self.assertFalse(status["containerStatuses"][0]["ready"])

    def test_4_memory_limit_is_oom_killed(self):
        self.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "hog"},
                    "spec": {"restartPolicy": "Never", "containers": [{
                        "name": "hog", "image": SLEEP_IMAGE,
                        # A shell variable doubling in size until the limit is hit.
                        "command": ["sh", "-c", "x=0123456789; while true; do x=$x$x; done"],
                        "resources": {"limits": {"memory": "32Mi"}}}]}})

        def terminated():
            statuses = self.get("pod", "hog")["status"].get("containerStatuses") or []
            return statuses and statuses[0]["state"].get("terminated")

        state = wait_for(terminated, timeout=120, what="hog terminated", interval=0.5)
        self.assertEqual(state["reason"], "OOMKilled", state)
        self.assertEqual(self.get("pod", "hog")["status"]["phase"], "Failed")

    def test_5_pods_resolve_services_through_the_dns_addon(self):
        # Upstream: a closed port on the namespace's loopback, so nothing is ever forwarded off
        # the machine (forwarding itself is tested in tests/addons/dns against an upstream of
        # its own).
        enabled = subprocess.run([MK8S, "--state-dir", self.state, "enable",
                                  "dns:upstream=127.0.0.1:9"], capture_output=True, text=True,
                                 timeout=120)
        self.assertEqual(enabled.returncode, 0, enabled.stdout + enabled.stderr)
        wait_for(lambda: self.ready_addresses("kube-dns", "kube-system"), timeout=60,
                 what="kube-dns endpoints")
        # Pods created from now on get the cluster DNS settings.
        self.apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "dns-client"},
                    "spec": {"terminationGracePeriodSeconds": 1,
                             "containers": [{"name": "c", "image": SLEEP_IMAGE}]}})
        wait_for(lambda: self.get("pod", "dns-client")["status"].get("phase") == "Running",
                 timeout=120, what="dns-client Running")
        resolv = self.kubectl("exec", "dns-client", "--", "cat", "/etc/resolv.conf").stdout
        self.assertIn("nameserver 10.152.183.10", resolv)
        self.assertIn("search default.svc.cluster.local svc.cluster.local cluster.local", resolv)
        self.assertIn("ndots:5", resolv)
        ip = self.get("service", "web")["spec"]["clusterIP"]
        looked_up = wait_for(
            lambda: ip in (out := self.kubectl("exec", "dns-client", "--", "nslookup",
                                               "web.default.svc.cluster.local",
                                               check=False).stdout) and out,
            timeout=30, what="nslookup of the web Service from a pod", interval=0.5)
        self.assertIn(ip, looked_up)
        names = {p["metadata"]["name"] for p in self.get("pods", "-l", "app=web")["items"]}
        page = self.kubectl("exec", "dns-client", "--", "wget", "-q", "-O", "-",
                            "http://web:80/", check=False)
        self.assertIn(page.stdout.strip(), names, page.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
