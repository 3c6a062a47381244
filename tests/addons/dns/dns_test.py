#!/usr/bin/python3
"""The dns addon end to end, with real binaries: mk8sd (which finds the in-tree dns.so in its
build tree), the mk8s CLI, kubectl and dig.

`mk8s enable dns:port=P;address=127.0.0.1;upstream=127.0.0.1:U` on free loopback ports, then:
the kube-dns Service (10.152.183.10, 53/UDP+TCP -> P) and its EndpointSlices as kubectl sees them
(one per Node, a local one before any Node); A, SRV and PTR answers for a Service that follow it
(NXDOMAIN once it is deleted); headless Services; forwarding to a tiny UDP upstream of this test;
hostile packets; the addon's own health in `mk8s status`; `mk8s disable dns` removing it all.
Everything stays on 127.0.0.1. Pod-side resolution through 10.152.183.10 (with the kubelet and
kube-proxy, inside a network namespace) is tests/e2e/service/service_test.py's test_5.

Environment (set by ctest): MK8S_BIN, MK8SD_BIN, MK8S_DNS_ADDON. Waits poll with deadlines.
"""

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "support"))
from mk8s_testlib import free_port, stop_process, wait_for  # noqa: E402  (shared helpers)

# Daemons started here run the control plane only, also when this file is run by hand outside
# ctest: the default components include the kubelet and kube-proxy, which would start containerd,
# pods and iptables rules in the host's network namespace.
os.environ.setdefault("MK8S_COMPONENTS", "apiserver,controllers,scheduler")

MK8S = os.environ.get("MK8S_BIN", "")
MK8SD = os.environ.get("MK8SD_BIN", "")
ADDON = os.environ.get("MK8S_DNS_ADDON", "")
KUBECTL = "/usr/bin/kubectl"
DIG = shutil.which("dig") or "/usr/bin/dig"


class TinyUpstream:
    """A UDP DNS server of the test's own: upstream.test. A 198.51.100.7, others NXDOMAIN."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)  # recv wakes to check `stopping`
        self.port = self.sock.getsockname()[1]
        self.names = []
        self.stopping = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopping:
            try:
                data, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            if len(data) < 12:
                continue
            qid, flags = struct.unpack("!HH", data[:4])
            labels, pos = [], 12
            while pos < len(data) and data[pos] != 0:
                labels.append(data[pos + 1:pos + 1 + data[pos]].decode(errors="replace"))
                pos += 1 + data[pos]
            question = data[12:pos + 5]
            name = ".".join(labels).lower()
            self.names.append(name)
            found = name == "upstream.test"
            header = struct.pack("!HHHHHH", qid, 0x8180 | (0 if found else 3), 1,
                                 1 if found else 0, 0, 0)
            answer = b""
            if found:
                answer = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 300, 4) + bytes([198, 51, 100, 7])
            self.sock.sendto(header + question + answer, peer)

    def stop(self):
        self.stopping = True
        self.thread.join()
        self.sock.close()


class DnsAddonTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        base = tempfile.gettempdir()
        cls.root = tempfile.mkdtemp(prefix="mk8s-dns-", dir=base if len(base) <= 40 else "/tmp")
        cls.state = os.path.join(cls.root, "state")
        cls.kubeconfig = os.path.join(cls.root, "kubeconfig")
        cls.upstream = TinyUpstream()
        cls.port = free_port()
        cls.log = open(os.path.join(cls.root, "daemon.out"), "w")
        cls.start_daemon()

    @classmethod
    def start_daemon(cls):
        if os.path.exists(cls.kubeconfig):
            os.unlink(cls.kubeconfig)  # port 0: a restarted API server has a new port
        cls.proc = subprocess.Popen(
            [MK8SD, "--state-dir", cls.state, "--apiserver-port", "0",
             "--apiserver-bind-address", "127.0.0.1", "--no-log-stderr"],
            stdout=cls.log, stderr=subprocess.STDOUT)
        wait_for(lambda: cls.mk8s("status", check=False).returncode == 0
                 or cls.proc.poll() is not None, "mk8sd to answer")
        if cls.proc.poll() is not None:
            raise AssertionError(f"mk8sd exited with {cls.proc.returncode}")

    @classmethod
    def stop_daemon(cls):
        if cls.proc.poll() is None:
            stop_process(cls.proc, timeout=60)

    @classmethod
    def tearDownClass(cls):
        cls.stop_daemon()
        cls.log.close()
        cls.upstream.stop()
        shutil.rmtree(cls.root, ignore_errors=True)

    @classmethod
    def mk8s(cls, *args, check=True):
        result = subprocess.run([MK8S, "--state-dir", cls.state, *args], capture_output=True,
                                text=True, timeout=120, stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError(f"mk8s {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def kubectl(self, *args, check=True, stdin=None):
        if not os.path.exists(self.kubeconfig):
            with open(self.kubeconfig, "w") as out:
                out.write(self.mk8s("config").stdout)
        env = dict(os.environ, KUBECONFIG=self.kubeconfig,
                   KUBECACHEDIR=os.path.join(self.root, "kubecache"))
        result = subprocess.run([KUBECTL, *args], capture_output=True, text=True, env=env,
                                timeout=60, input=stdin)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        return result

    def dig(self, *args):
        result = subprocess.run([DIG, "@127.0.0.1", "-p", str(self.port), "+time=2", "+tries=1",
                                 *args], capture_output=True, text=True, timeout=30)
        return result.stdout

    def short(self, *args):
        return self.dig("+short", *args).strip()

    def status_of(self, name):
        for line in self.dig(name).splitlines():
            if "status:" in line:
                return line.split("status:")[1].split(",")[0].strip()
        return None

    def slices(self):
        out = self.kubectl("get", "endpointslices", "-n", "kube-system", "-l",
                           "kubernetes.io/service-name=kube-dns", "-o", "json").stdout
        return {item["metadata"]["name"]: item for item in json.loads(out)["items"]}

    def test_dns_addon(self):
        self.assertTrue(os.path.exists(ADDON), ADDON)
        self.assertIn("dns", self.mk8s("status").stdout)
        self.assertEqual(self.mk8s("status", "-a", "dns").stdout.strip(), "disabled")
        bad = self.mk8s("enable", "dns:upstream=not-an-ip", check=False)
        self.assertNotEqual(bad.returncode, 0)

        enabled = self.mk8s(
            "enable", f"dns:port={self.port};address=127.0.0.1;upstream=127.0.0.1:{self.upstream.port}")
        self.assertIn("Addon dns is enabled", enabled.stdout)

        # The Service, as kubectl sees it.
        service = json.loads(self.kubectl("get", "service", "kube-dns", "-n", "kube-system",
                                          "-o", "json").stdout)
        self.assertEqual(service["spec"]["clusterIP"], "10.152.183.10")
        ports = {(p["name"], p["protocol"], p["port"], p["targetPort"]) for p in service["spec"]["ports"]}
        self.assertEqual(ports, {("dns", "UDP", 53, self.port), ("dns-tcp", "TCP", 53, self.port)})
        config = json.loads(self.kubectl("get", "configmap", "cluster-dns", "-n", "kube-system",
                                         "-o", "json").stdout)
        self.assertEqual(config["data"], {"clusterDNS": "10.152.183.10", "clusterDomain": "cluster.local"})

        # EndpointSlices: a local one before any Node, then one per Node.
        slices = wait_for(self.slices, "the kube-dns EndpointSlices")
        self.assertEqual(list(slices), ["kube-dns-local"])
        local = slices["kube-dns-local"]
        self.assertEqual(local["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
                         "dns.addons.mk8s.io")
        self.assertEqual({p["port"] for p in local["ports"]}, {self.port})
        node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "dns-test-node"},
                "status": {"addresses": [{"type": "InternalIP", "address": "192.0.2.77"}]}}
        self.kubectl("create", "-f", "-", stdin=json.dumps(node))
        self.kubectl("patch", "node", "dns-test-node", "--subresource=status", "--type=merge",
                     "-p", json.dumps({"status": node["status"]}))
        slices = wait_for(lambda: (s := self.slices()) and "kube-dns-dns-test-node" in s
                          and "kube-dns-local" not in s and s, "the Node's EndpointSlice")
        endpoint = slices["kube-dns-dns-test-node"]["endpoints"][0]
        self.assertEqual(endpoint["addresses"], ["192.0.2.77"])
        self.assertEqual(endpoint.get("nodeName"), "dns-test-node")
        self.kubectl("delete", "node", "dns-test-node")
        wait_for(lambda: list(self.slices()) == ["kube-dns-local"], "the local EndpointSlice back")

        # A Service appears in DNS, with SRV and PTR, over UDP and TCP.
        self.kubectl("create", "service", "clusterip", "web", "--tcp=80:8080")
        ip = self.kubectl("get", "service", "web", "-o", "jsonpath={.spec.clusterIP}").stdout
        self.assertTrue(ip.startswith("10.152.183."), ip)
        wait_for(lambda: self.short("web.default.svc.cluster.local") == ip, "web's A record", 5)
        self.assertEqual(self.short("+tcp", "web.default.svc.cluster.local"), ip)
        self.assertEqual(self.short("SRV", "_80-8080._tcp.web.default.svc.cluster.local"),
                         "0 100 80 web.default.svc.cluster.local.")
        self.assertEqual(self.short("-x", ip), "web.default.svc.cluster.local.")
        self.assertEqual(self.short("-x", "10.152.183.10"), "kube-dns.kube-system.svc.cluster.local.")
        self.assertEqual(self.short("kube-dns.kube-system.svc.cluster.local"), "10.152.183.10")
        self.assertEqual(self.short("10-1-2-3.default.pod.cluster.local"), "10.1.2.3")
        nx = self.dig("nothing.default.svc.cluster.local")
        self.assertIn("status: NXDOMAIN", nx)
        self.assertRegex(nx, r"cluster\.local\.\s+\d+\s+IN\s+SOA\s+ns\.dns\.cluster\.local\.")

        # A headless Service with a hand-written EndpointSlice: the ready addresses.
        headless = [
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "namespace": "default"},
             "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}},
            {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
             "metadata": {"name": "db-1", "namespace": "default",
                          "labels": {"kubernetes.io/service-name": "db"}},
             "addressType": "IPv4",
             "endpoints": [{"addresses": ["10.1.0.5"], "conditions": {"ready": True}},
                           {"addresses": ["10.1.0.6"], "conditions": {"ready": False}}],
             "ports": [{"name": "pg", "port": 5432, "protocol": "TCP"}]}]
        for item in headless:
            self.kubectl("create", "-f", "-", stdin=json.dumps(item))
        wait_for(lambda: self.short("db.default.svc.cluster.local") == "10.1.0.5", "headless A", 5)

        # Deleting the Service makes it NXDOMAIN.
        self.kubectl("delete", "service", "web")
        wait_for(lambda: self.status_of("web.default.svc.cluster.local") == "NXDOMAIN",
                 "web to be NXDOMAIN", 5)

        # Forwarding to this test's upstream; the second answer comes from the cache.
        self.assertEqual(self.short("upstream.test"), "198.51.100.7")
        self.assertEqual(self.short("upstream.test"), "198.51.100.7")
        self.assertEqual(self.upstream.names.count("upstream.test"), 1)
        self.assertEqual(self.status_of("missing.test"), "NXDOMAIN")

        # Hostile packets are dropped or answered FORMERR; the server keeps serving.
        hostile = [b"", b"\x00", b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01",
                   b"\xff" * 600, b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + b"\x3f" + b"a" * 300]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for packet in hostile:
                sock.sendto(packet, ("127.0.0.1", self.port))
            sock.settimeout(2)
            sock.sendto(hostile[2], ("127.0.0.1", self.port))
            reply = b""
            while len(reply) < 4 or reply[:2] != b"\x12\x34":
                reply = sock.recv(4096)
            self.assertEqual(reply[3] & 0x0F, 1)  # FORMERR
        self.assertEqual(self.short("kube-dns.kube-system.svc.cluster.local"), "10.152.183.10")

        status = self.mk8s("status").stdout
        self.assertRegex(status, r"dns: enabled, healthy: serving 127\.0\.0\.1:\d+ udp\+tcp")

        # A daemon restart brings it back with its arguments, serving the same records.
        self.stop_daemon()
        self.start_daemon()
        self.assertEqual(self.mk8s("status", "-a", "dns").stdout.strip(), "enabled")
        wait_for(lambda: self.short("db.default.svc.cluster.local") == "10.1.0.5",
                 "answers after a restart", 10)
        self.assertEqual(self.status_of("web.default.svc.cluster.local"), "NXDOMAIN")

        # Disable removes the Service, its slices and the ConfigMap, and stops serving.
        self.assertIn("Addon dns is disabled", self.mk8s("disable", "dns").stdout)
        self.assertEqual(self.mk8s("status", "-a", "dns").stdout.strip(), "disabled")
        gone = self.kubectl("get", "service", "kube-dns", "-n", "kube-system", check=False)
        self.assertNotEqual(gone.returncode, 0)
        self.assertIn("NotFound", gone.stderr)
        self.assertEqual(self.slices(), {})
        self.assertNotEqual(self.kubectl("get", "configmap", "cluster-dns", "-n", "kube-system",
                                         check=False).returncode, 0)
        self.assertNotIn("10.152.183.10", self.short("kube-dns.kube-system.svc.cluster.local"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
