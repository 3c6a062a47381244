#!/usr/bin/env python3
"""Services across real pods: mk8sd with the kubelet AND kube-proxy inside a network namespace of
its own, driven with the real kubectl.

Covers: a 3-replica Deployment exposed as a ClusterIP Service answers from the node's namespace
and from another pod, with every backend answering over repeated requests; a NodePort answers on
the node IP; a pod failing its readiness probe stays out of the endpoints and the rotation; a
memory limit exceeded is reported as OOMKilled; with the dns addon enabled, a new pod gets the
cluster DNS settings, nslookup answers the Service's ClusterIP and wget reaches it by short name. Needs root, containerd, ctr, kubectl, curl and
nsenter (exits 77 = skipped, with the reason, otherwise)."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from cluster import (SLEEP_IMAGE, WHOAMI_IMAGE, ClusterInNetns, e2e_main,  # noqa: E402
                     is_ready, whoami_and_sleep_images, why_no_node)
from netns import wait_for  # noqa: E402

MK8S = os.environ.get("MK8S_BIN", "mk8s")


def deployment(name, replicas, image, extra_container=None):
    container = {"name": name, "image": image}
    container.update(extra_container or {})
    labels = {"app": name}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"terminationGracePeriodSeconds": 1,
                                           "containers": [container]}}}}


class ServiceE2E(ClusterInNetns):
    NAME = "service"

    @staticmethod
    def why_skip():
        return why_no_node(("ip", "nsenter", "kubectl", "ctr", "curl", "iptables"))

    @classmethod
    def set_up_cluster(cls):
        cls.set_up_node_netns("svc", 201)
        # Service IPs route to the node interface, which leads nowhere (a bridge without
        # ports): only the proxy's DNAT makes them live. There is no default route.
        cls.ns.run("ip", "route", "add", "10.152.183.0/24", "dev", "node0")
        images = whoami_and_sleep_images(cls.dir)
        cls.start_node("apiserver,controllers,scheduler,kubelet,proxy")
        cls.wait_node_ready()
        # Through the CLI and the daemon's control socket, as a user would. The node may be
        # Ready before the control socket answers.
        wait_for(lambda: subprocess.run([MK8S, "--state-dir", cls.state, "status"],
                                        capture_output=True, timeout=30).returncode == 0,
                 what="the control socket (mk8s status)", interval=0.2)
        imported = subprocess.run([MK8S, "--state-dir", cls.state, "images", "import", *images],
                                  capture_output=True, text=True, timeout=120)
        if imported.returncode != 0:
            raise AssertionError(f"mk8s images import: {imported.stdout}{imported.stderr}")
        listed = subprocess.run([MK8S, "--state-dir", cls.state, "images", "ls"],
                                capture_output=True, text=True, timeout=60).stdout
        for name in (WHOAMI_IMAGE, SLEEP_IMAGE):
            if name not in listed:
                raise AssertionError(f"{name} missing from `mk8s images ls`:\n{listed}")

    # --- helpers -----------------------------------------------------------------------------
    def running_pods(self, selector, count):
        pods = [p for p in self.get("pods", "-l", selector)["items"]
                if "deletionTimestamp" not in p["metadata"]]
        ready = [p for p in pods if p["status"].get("phase") == "Running" and is_ready(p)]
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
    e2e_main(ServiceE2E)
