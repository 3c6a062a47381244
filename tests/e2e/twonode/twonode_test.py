#!/usr/bin/env python3
"""Two nodes on one machine: a control plane (mk8sd with every component, node "cp") and a
worker (mk8sd --components=kubelet,proxy against the remote API server, node "worker"), each in a
network namespace of its own, joined by a veth pair. Pods reach pods on the other node through
the host-gw routes the kubelets keep (<peer podCIDR> via <peer node IP>).

The worker starts BEFORE its token is in the control plane's known_tokens.csv: its first
registration is refused (401) and it must retry with back-off, not exit. Once registered it asks
for its kubelet serving certificate with a CertificateSigningRequest (signer
kubernetes.io/kubelet-serving) that the controller manager approves and signs, and then serves
the kubelet API, so `kubectl logs/exec/port-forward` reach its pods through the API server.

Covers: both nodes Ready with distinct podCIDRs and the routes to each other; the worker's CSR
Approved,Issued in `kubectl get csr`, and hostile CSRs (garbage PEM, another node's name) refused
with a Status; pods pinned on both nodes; cp pod -> worker pod IP (kubectl exec) and worker pod
-> cp pod IP (kubectl logs of the worker pod); kubectl exec and port-forward to a worker pod; a
ClusterIP Service spanning both nodes answered by every backend from both node namespaces; a
4-replica Deployment with a topologySpreadConstraint scheduled 2+2 and answering through its
Service from the worker; both kubelets renewing a serving certificate whose names went stale
(the worker through a new CSR, the control plane from its CA) and serving it without a restart.
Needs root, containerd, ctr, kubectl, curl, openssl and nsenter."""
import base64
import json
import os
import random
import re
import secrets
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from cluster import (SLEEP_IMAGE, WHOAMI_IMAGE, ClusterInNetns, e2e_main,  # noqa: E402
                     is_ready, whoami_and_sleep_images, why_no_node)
from netns import wait_for  # noqa: E402

SERVICE_CIDR = "10.152.183.0/24"


def pod(name, node, image, labels=None, command=None):
    container = {"name": "main", "image": image}
    if command:
        container["command"] = command
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": labels or {}},
            "spec": {"nodeName": node, "terminationGracePeriodSeconds": 1,
                     "containers": [container]}}


class TwoNodeE2E(ClusterInNetns):
    NAME = "twonode"

    @staticmethod
    def why_skip():
        return why_no_node(("ip", "nsenter", "kubectl", "ctr", "curl", "iptables", "openssl"))

    @classmethod
    def set_up_cluster(cls):
        cls.cp_state = os.path.join(cls.dir, "cp")
        cls.wk_state = os.path.join(cls.dir, "worker")
        subnet = random.randrange(1, 250)
        cls.cp_ip, cls.wk_ip = f"10.202.{subnet}.1", f"10.202.{subnet}.2"
        cls.cp_ns = cls.new_netns("2n-cp")
        cls.wk_ns = cls.new_netns("2n-wk")
        cls.cp_ns.run("ip", "link", "add", "tn0", "type", "veth", "peer", "name", "tn1")
        cls.cp_ns.run("ip", "link", "set", "tn1", "netns", cls.wk_ns.name)
        for ns, ifname, ip in ((cls.cp_ns, "tn0", cls.cp_ip), (cls.wk_ns, "tn1", cls.wk_ip)):
            ns.run("ip", "addr", "add", ip + "/24", "dev", ifname)
            ns.run("ip", "link", "set", ifname, "up")
            # Service IPs lead to the veth; only the proxy's DNAT makes them live. No
            # default route.
            ns.run("ip", "route", "add", SERVICE_CIDR, "dev", ifname)
        images = whoami_and_sleep_images(cls.dir)
        cp = cls.add_mk8sd(cls.cp_ns, cls.cp_state, "cp.out", "--apiserver-port", "0",
                           "--components=apiserver,controllers,scheduler,kubelet,proxy",
                           "--kubelet-port", "0", "--node-name", "cp", "--node-ip", cls.cp_ip,
                           "--certificate-check-interval", "2")
        cp.wait_kubeconfig()
        # The worker starts before its token is known: registration is refused (401) and
        # must be retried, not fatal.
        worker_config, token_line = cls.join_worker()
        worker = cls.add_mk8sd(cls.wk_ns, cls.wk_state, "worker.out",
                               "--components=kubelet,proxy", "--kubeconfig", worker_config,
                               "--server", cls.server, "--kubelet-port", "0",
                               "--node-name", "worker", "--node-ip", cls.wk_ip,
                               "--certificate-check-interval", "2")
        wait_for(lambda: cls.check_alive() and "retrying" in cls.daemon_log("worker.out"),
                 timeout=60, what="the worker retrying its refused registration",
                 interval=0.2)
        with open(os.path.join(cls.cp_state, "credentials", "known_tokens.csv"), "a") as f:
            f.write(token_line)
        cls.wait_node_ready("cp", "worker", timeout=120)
        for daemon in (cp, worker):
            daemon.import_images(images)

    # --- helpers -----------------------------------------------------------------------------
    @classmethod
    def join_worker(cls):
        """The manual join: a static token for system:node:worker (group system:nodes), to be
        added to the control plane's known_tokens.csv (the returned line), and a kubeconfig with
        it and the cluster CA."""
        with open(cls.kubeconfig) as f:
            admin = f.read()
        ca = re.search(r"certificate-authority-data:\s*(\S+)", admin).group(1)
        port = re.search(r"server:\s*\"?https://[^:/\"]+:(\d+)", admin).group(1)
        cls.server = f"https://{cls.cp_ip}:{port}"
        base64.b64decode(ca)  # well-formed
        token = secrets.token_hex(16)
        path = os.path.join(cls.dir, "worker.config")
        with open(path, "w") as f:
            f.write("apiVersion: v1\nkind: Config\nclusters:\n- name: mk8s\n  cluster:\n"
                    f"    certificate-authority-data: {ca}\n    server: {cls.server}\n"
                    "users:\n- name: worker\n  user:\n"
                    f"    token: {token}\n"
                    "contexts:\n- name: mk8s\n  context:\n    cluster: mk8s\n    user: worker\n"
                    "current-context: mk8s\n")
        os.chmod(path, 0o600)
        cls.worker_config = path
        return path, f'{token},system:node:worker,worker,"system:nodes"\n'

    def running(self, name):
        p = self.get("pod", name)
        ready = p["status"].get("phase") == "Running" and is_ready(p)
        return p if ready else None

    def curl(self, ns, url):
        return ns.run("curl", "-s", "--max-time", "3", url, check=False).stdout.strip()

    # --- tests, in order ---------------------------------------------------------------------
    def test_1_nodes_and_routes(self):
        cidrs = {n: self.get("node", n)["spec"].get("podCIDR") for n in ("cp", "worker")}
        self.assertTrue(all(c and c.startswith("10.1.") for c in cidrs.values()), cidrs)
        self.assertNotEqual(cidrs["cp"], cidrs["worker"])
        # Each node routes the other's pod CIDR via the other's node IP.
        for ns, peer, via in ((self.cp_ns, "worker", self.wk_ip),
                              (self.wk_ns, "cp", self.cp_ip)):
            wait_for(lambda: f"{cidrs[peer]} via {via} " in
                     ns.run("ip", "-4", "route", "show").stdout + " ",
                     timeout=30, what=f"route {cidrs[peer]} via {via} in {ns.name}",
                     interval=0.2)

    def test_1b_worker_serving_certificate_through_a_csr(self):
        def issued():
            for csr in self.get("csr")["items"]:
                if csr["spec"].get("username") != "system:node:worker":
                    continue
                types = {c["type"] for c in csr.get("status", {}).get("conditions", [])}
                if "Approved" in types and csr["status"].get("certificate"):
                    return csr
            return None
        csr = wait_for(issued, timeout=90, what="the worker's CSR approved and issued",
                       interval=0.5)
        self.assertEqual(csr["spec"]["signerName"], "kubernetes.io/kubelet-serving")
        table = self.kubectl("get", "csr").stdout
        self.assertRegex(table, r"SIGNERNAME\s+REQUESTOR")
        self.assertIn("Approved,Issued", table)
        cert = base64.b64decode(csr["status"]["certificate"]).decode()
        text = subprocess.run(["openssl", "x509", "-noout", "-subject", "-ext", "subjectAltName"],
                              input=cert, capture_output=True, text=True, check=True).stdout
        self.assertIn("system:node:worker", text)
        self.assertIn(f"IP Address:{self.wk_ip}", text)
        key = os.path.join(self.wk_state, "kubelet", "pki", "kubelet.key")
        self.assertEqual(os.stat(key).st_mode & 0o777, 0o600)
        self.assertFalse(os.path.exists(os.path.join(self.wk_state, "credentials", "ca.key")))

        # Hostile requests with the worker's own credential: a Status, never a certificate.
        def as_worker(obj):
            return self.cp_ns.run("kubectl", "--kubeconfig", self.worker_config, "create", "-f",
                                  "-", input=json.dumps(obj), check=False, env=self.env)

        def csr_object(name, request):
            return {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
                    "metadata": {"name": name},
                    "spec": {"request": base64.b64encode(request).decode(),
                             "signerName": "kubernetes.io/kubelet-serving",
                             "usages": ["digital signature", "server auth"]}}
        r = as_worker(csr_object("hostile-garbage", b"garbage"))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("spec.request", r.stderr)
        other = subprocess.run(
            ["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-nodes", "-keyout", "/dev/null", "-subj", "/O=system:nodes/CN=system:node:cp",
             "-addext", f"subjectAltName=IP:{self.cp_ip}"],
            capture_output=True, check=True).stdout
        r = as_worker(csr_object("hostile-other-node", other))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Forbidden", r.stderr)
        self.assertIn("may not request a certificate for", r.stderr)
        anonymous = self.cp_ns.run(
            "curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
            "-H", "Content-Type: application/json", "--data",
            json.dumps(csr_object("hostile-anonymous", other)),
            f"{self.server}/apis/certificates.k8s.io/v1/certificatesigningrequests",
            check=False).stdout
        self.assertEqual(anonymous, "401")
        names = [c["metadata"]["name"] for c in self.get("csr")["items"]]
        self.assertNotIn("hostile-anonymous", names)
        self.assertNotIn("hostile-garbage", names)
        self.assertNotIn("hostile-other-node", names)

        # A request made by the admin is never auto-approved; `kubectl certificate approve`
        # (PUT .../approval) lets the signer issue it.
        self.kubectl("create", "-f", "-", input=json.dumps(csr_object("by-admin", other)))
        self.kubectl("certificate", "approve", "by-admin")
        issued_by_admin = wait_for(
            lambda: self.get("csr", "by-admin").get("status", {}).get("certificate"),
            timeout=60, what="by-admin issued after kubectl certificate approve", interval=0.3)
        self.assertTrue(base64.b64decode(issued_by_admin).startswith(b"-----BEGIN CERTIFICATE"))
        reasons = {c["type"]: c.get("reason")
                   for c in self.get("csr", "by-admin")["status"]["conditions"]}
        self.assertEqual(reasons.get("Approved"), "KubectlApprove")

    def test_2_pods_on_both_nodes_reach_each_other(self):
        names = {"web-cp-0": "cp", "web-cp-1": "cp", "web-wk-0": "worker", "web-wk-1": "worker"}
        for name, node in names.items():
            self.apply(pod(name, node, WHOAMI_IMAGE, labels={"app": "web"}))
        pods = {n: wait_for(lambda n=n: self.running(n), timeout=120, what=f"{n} Running",
                            interval=0.3) for n in names}
        for n, p in pods.items():
            self.assertEqual(p["spec"]["nodeName"], names[n])
        wk_ip = pods["web-wk-0"]["status"]["podIP"]
        cp_ip = pods["web-cp-0"]["status"]["podIP"]
        # cp pod -> worker pod (explicit port, no -T: busybox-static's wget crashes otherwise).
        wait_for(lambda: self.kubectl("exec", "web-cp-0", "--", "wget", "-q", "-O", "-",
                                      f"http://{wk_ip}:80/", check=False).stdout.strip()
                 == "web-wk-0", timeout=60, what=f"web-cp-0 -> {wk_ip}", interval=0.5)
        # worker pod -> cp pod, read with `kubectl logs` (API server -> the worker's kubelet).
        self.apply(pod("probe-wk", "worker", SLEEP_IMAGE, command=[
            "sh", "-c", f"for i in $(seq 1 60); do wget -q -O - http://{cp_ip}:80/ && break; "
                        "sleep 1; done; exec sleep 3600"]))
        wait_for(lambda: self.running("probe-wk"), timeout=120, what="probe-wk Running",
                 interval=0.3)
        wait_for(lambda: "web-cp-0" in self.kubectl("logs", "probe-wk", check=False).stdout,
                 timeout=90, what=f"probe-wk -> {cp_ip} in `kubectl logs probe-wk`",
                 interval=0.5)

    def test_2b_exec_and_port_forward_on_the_worker(self):
        """kubectl -> API server (pods/exec, pods/portforward) -> the worker's kubelet API, served
        with the certificate the cluster issued."""
        wait_for(lambda: self.running("web-wk-0"), timeout=120, what="web-wk-0 Running",
                 interval=0.3)
        r = self.kubectl("exec", "web-wk-0", "--", "echo", "hi")
        self.assertEqual(r.stdout, "hi\n")
        r = self.kubectl("exec", "-i", "web-wk-0", "--", "cat", input="stdin on the worker\n")
        self.assertEqual(r.stdout, "stdin on the worker\n")
        forward = self.cp_ns.popen("kubectl", "port-forward", "pod/web-wk-0", ":80",
                                   env=self.env, stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        try:
            line = forward.stdout.readline()
            match = re.search(r"Forwarding from 127\.0\.0\.1:(\d+)", line)
            self.assertTrue(match, line + forward.stderr.read() if not line else line)
            self.assertEqual(self.curl(self.cp_ns, f"http://127.0.0.1:{match.group(1)}/"),
                             "web-wk-0")
        finally:
            forward.terminate()
            forward.wait(timeout=30)
            forward.stdout.close()
            forward.stderr.close()

    def test_3_service_spans_both_nodes(self):
        self.apply({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web"},
                    "spec": {"selector": {"app": "web"},
                             "ports": [{"port": 80, "targetPort": 80}]}})
        ip = self.get("service", "web")["spec"]["clusterIP"]
        self.assertTrue(ip.startswith("10.152.183."), ip)
        everyone = {"web-cp-0", "web-cp-1", "web-wk-0", "web-wk-1"}
        for ns in (self.cp_ns, self.wk_ns):
            seen = set()

            def all_answer(ns=ns, seen=seen):
                for _ in range(20):
                    seen.add(self.curl(ns, f"http://{ip}/"))
                return everyone <= seen
            wait_for(all_answer, timeout=90, what=f"all of {sorted(everyone)} on {ip} from "
                     f"{ns.name} (seen {seen})", interval=0.5)

    def test_4_scheduler_spreads_a_deployment(self):
        labels = {"app": "spread"}
        self.apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "spread"},
                    "spec": {"replicas": 4, "selector": {"matchLabels": labels},
                             "template": {"metadata": {"labels": labels}, "spec": {
                                 "terminationGracePeriodSeconds": 1,
                                 "topologySpreadConstraints": [{
                                     "maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                     "whenUnsatisfiable": "DoNotSchedule",
                                     "labelSelector": {"matchLabels": labels}}],
                                 "containers": [{"name": "main", "image": WHOAMI_IMAGE}]}}}})

        def spread():
            pods = [p for p in self.get("pods", "-l", "app=spread")["items"]
                    if "deletionTimestamp" not in p["metadata"]]
            ready = [p for p in pods if p["status"].get("phase") == "Running" and is_ready(p)]
            return ready if len(pods) == 4 and len(ready) == 4 else None
        pods = wait_for(spread, timeout=120, what="4 spread pods Running", interval=0.3)
        per_node = {}
        for p in pods:
            per_node[p["spec"]["nodeName"]] = per_node.get(p["spec"]["nodeName"], 0) + 1
        self.assertEqual(per_node, {"cp": 2, "worker": 2})
        self.kubectl("expose", "deployment", "spread", "--port=80")
        ip = self.get("service", "spread")["spec"]["clusterIP"]
        names = {p["metadata"]["name"] for p in pods}
        seen = set()

        def all_answer():
            for _ in range(20):
                seen.add(self.curl(self.wk_ns, f"http://{ip}/"))
            return names <= seen
        wait_for(all_answer, timeout=90, what=f"all spread pods on {ip} from the worker",
                 interval=0.5)

    # --- certificates renewed while running ------------------------------------------------------
    def served_kubelet_cert(self, ns, node, ip):
        """The certificate the node's kubelet API presents now (a fresh handshake from inside
        the node's namespace), as PEM."""
        port = self.get("node", node)["status"]["daemonEndpoints"]["kubeletEndpoint"]["Port"]
        out = ns.run("openssl", "s_client", "-connect", f"{ip}:{port}", input="",
                     check=False, timeout=30).stdout
        match = re.search(r"-----BEGIN CERTIFICATE-----.*?-----END CERTIFICATE-----", out, re.S)
        return match.group(0) + "\n" if match else ""

    def plant_cert(self, key_file, cert_file, subject, san):
        """Replaces cert_file with a certificate for key_file's key, signed by the cluster CA,
        whose names no longer match the node (`san`): what a node whose addresses changed has."""
        credentials = os.path.join(self.cp_state, "credentials")
        ext = os.path.join(self.dir, "planted.ext")
        with open(ext, "w") as f:
            f.write(f"subjectAltName={san}\nextendedKeyUsage=serverAuth\n")
        csr = subprocess.run(["openssl", "req", "-new", "-key", key_file, "-subj", subject],
                             capture_output=True, text=True, check=True).stdout
        planted = subprocess.run(
            ["openssl", "x509", "-req", "-CA", os.path.join(credentials, "ca.crt"),
             "-CAkey", os.path.join(credentials, "ca.key"), "-days", "30",
             "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-extfile", ext],
            input=csr, capture_output=True, text=True, check=True).stdout
        temp = cert_file + ".planted"
        with open(temp, "w") as f:
            f.write(planted)
        os.replace(temp, cert_file)
        return planted

    def test_5_kubelet_serving_certificates_renewed_while_running(self):
        """Both kubelets check their serving certificate every 2 s (--certificate-check-interval):
        the worker renews its own through a new CSR, the control-plane node from the local CA,
        and each serves the renewed one from the next handshake on, without a restart."""
        def fingerprint(pem):
            if not pem:
                return ""
            return subprocess.run(["openssl", "x509", "-noout", "-fingerprint", "-sha256"],
                                  input=pem, capture_output=True, text=True).stdout.strip()

        def worker_csrs():
            return [c for c in self.get("csr")["items"]
                    if c["spec"].get("username") == "system:node:worker"]

        pids = [d.proc.pid for d in self.daemons]
        nodes = (("worker", self.wk_ns, self.wk_ip,
                  os.path.join(self.wk_state, "kubelet", "pki", "kubelet.key"),
                  os.path.join(self.wk_state, "kubelet", "pki", "kubelet.crt"),
                  "/O=system:nodes/CN=system:node:worker"),
                 ("cp", self.cp_ns, self.cp_ip,
                  os.path.join(self.cp_state, "credentials", "kubelet.key"),
                  os.path.join(self.cp_state, "credentials", "kubelet.crt"), "/CN=cp"))
        csrs_before = len(worker_csrs())
        for node, ns, ip, key_file, cert_file, subject in nodes:
            before = fingerprint(self.served_kubelet_cert(ns, node, ip))
            self.assertTrue(before, f"{node}'s kubelet API presented no certificate")
            planted = fingerprint(self.plant_cert(key_file, cert_file, subject, f"DNS:{node}"))

            def renewed_and_served(ns=ns, node=node, ip=ip, cert_file=cert_file):
                with open(cert_file) as f:
                    on_disk = fingerprint(f.read())
                served = fingerprint(self.served_kubelet_cert(ns, node, ip))
                return on_disk not in (planted, before) and served == on_disk
            wait_for(renewed_and_served, timeout=90, interval=0.5,
                     what=f"{node}'s kubelet serving a renewed certificate")
        self.assertGreater(len(worker_csrs()), csrs_before, "the worker renewed without a CSR")
        self.assertEqual([d.proc.pid for d in self.daemons], pids, "a daemon restarted")
        self.check_alive()
        # The API server verifies the renewed certificates against the cluster CA.
        wait_for(lambda: self.running("web-wk-0"), timeout=60, what="web-wk-0 Running",
                 interval=0.3)
        self.assertEqual(self.kubectl("exec", "web-wk-0", "--", "echo", "renewed").stdout,
                         "renewed\n")
        self.assertEqual(self.kubectl("exec", "web-cp-0", "--", "echo", "renewed").stdout,
                         "renewed\n")


if __name__ == "__main__":
    e2e_main(TwoNodeE2E)
