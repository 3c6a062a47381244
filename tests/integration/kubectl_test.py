#!/usr/bin/env python3
"""The Kubernetes API of a real mk8sd, driven by the installed kubectl and python3-kubernetes.

Each test class starts its own mk8sd in a temp state folder on a free port (MK8SD_BIN), so
several runs can share a machine. Output of every command is checked.
"""
import base64
import json
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import threading
import unittest
import http.client

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from mk8s_testlib import stop_process, wait_for  # noqa: E402  (shared helpers)

# Daemons started here run the control plane only, also when this file is run by hand outside
# ctest: the default components include the kubelet and kube-proxy, which would start containerd,
# pods and iptables rules in the host's network namespace.
os.environ.setdefault("MK8S_COMPONENTS", "apiserver,controllers,scheduler")

MK8SD = os.environ.get("MK8SD_BIN", "mk8sd")


class Cluster:
    """One mk8sd with its kubeconfig; kubectl runs with a private discovery cache."""

    def __init__(self, extra_args=()):
        self.dir = tempfile.mkdtemp(prefix="mk8s-kubectl-")
        self.state = os.path.join(self.dir, "state")
        self.kubeconfig = os.path.join(self.state, "credentials", "client.config")
        self.log = open(os.path.join(self.dir, "daemon.out"), "w")
        self.proc = subprocess.Popen(
            [MK8SD, "--state-dir", self.state, "--apiserver-port", "0",
             "--apiserver-bind-address", "127.0.0.1", "--no-log-stderr", *extra_args],
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: os.path.exists(self.kubeconfig), what="kubeconfig")
        self.env = dict(os.environ, KUBECONFIG=self.kubeconfig, KUBECACHEDIR=os.path.join(self.dir, "cache"))
        wait_for(lambda: self.kubectl("get", "ns", check=False).returncode == 0, what="API server")
        self.port = int(self.config()["clusters"][0]["cluster"]["server"].rsplit(":", 1)[1])

    def config(self):
        out = subprocess.run(["kubectl", "config", "view", "--raw", "-o", "json"], env=self.env,
                             capture_output=True, text=True, check=True).stdout
        return json.loads(out)

    def kubectl(self, *args, check=True, input=None, env=None):
        result = subprocess.run(["kubectl", *args], env=env or self.env, capture_output=True,
                                text=True, input=input, timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def https(self, method, path, body=None, headers=None, cert=True, token=None):
        """A raw request with the admin certificate (or none / a token)."""
        context = self.tls_context(cert)
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, context=context, timeout=30)
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = "Bearer " + token
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        conn.close()
        return response.status, response.getheader("Content-Type"), data

    def tls_context(self, cert):
        """TLS contexts that trust the cluster CA, with or without the admin certificate."""
        if not hasattr(self, "_contexts"):
            self._contexts = {}
        if cert in self._contexts:
            return self._contexts[cert]
        cfg = self.config()
        context = ssl.create_default_context()
        ca = base64.b64decode(cfg["clusters"][0]["cluster"]["certificate-authority-data"])
        context.load_verify_locations(cadata=ca.decode())
        if cert:
            user = cfg["users"][0]["user"]
            cert_file = os.path.join(self.dir, "admin.crt")
            key_file = os.path.join(self.dir, "admin.key")
            with open(cert_file, "wb") as f:
                f.write(base64.b64decode(user["client-certificate-data"]))
            with open(key_file, "wb") as f:
                f.write(base64.b64decode(user["client-key-data"]))
            context.load_cert_chain(cert_file, key_file)
        self._contexts[cert] = context
        return context

    def stop(self):
        stop_process(self.proc, timeout=30)
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class KubectlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Cluster()

    @classmethod
    def tearDownClass(cls):
        cls.c.stop()

    def k(self, *args, **kw):
        return self.c.kubectl(*args, **kw)

    def test_version_and_api_resources(self):
        out = self.k("version").stdout
        self.assertIn("Server Version: v1.32.4", out)
        out = self.k("api-resources").stdout
        for line in ("deployments", "deploy", "apps/v1", "pods", "po", "namespaces", "ns",
                     "leases", "endpointslices", "clusterroles", "selfsubjectaccessreviews"):
            self.assertIn(line, out)

    def test_bootstrap_objects(self):
        out = self.k("get", "ns").stdout
        for ns in ("default", "kube-system", "kube-public", "kube-node-lease"):
            self.assertRegex(out, rf"(?m)^{ns}\s+Active")
        out = self.k("get", "svc", "kubernetes", "-o", "wide").stdout
        self.assertIn("10.152.183.1", out)
        self.assertIn("443/TCP", out)
        ep = json.loads(self.k("get", "endpoints", "kubernetes", "-o", "json").stdout)
        self.assertEqual(ep["subsets"][0]["ports"][0]["port"], self.c.port)

    def test_create_generators_send_protobuf(self):
        self.k("create", "namespace", "gen")
        self.k("-n", "gen", "create", "deployment", "webapp", "--image=nginx:1.27", "--replicas=3")
        self.k("-n", "gen", "create", "configmap", "cfg", "--from-literal=a=b")
        self.k("-n", "gen", "create", "secret", "generic", "sec", "--from-literal=p=q")
        self.k("-n", "gen", "create", "service", "clusterip", "svc", "--tcp=80:8080")
        d = json.loads(self.k("-n", "gen", "get", "deploy", "webapp", "-o", "json").stdout)
        self.assertEqual(d["spec"]["replicas"], 3)
        self.assertEqual(d["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.27")
        self.assertEqual(d["metadata"]["generation"], 1)
        self.assertEqual(d["spec"]["strategy"]["type"], "RollingUpdate")
        cm = json.loads(self.k("-n", "gen", "get", "cm", "cfg", "-o", "json").stdout)
        self.assertEqual(cm["data"], {"a": "b"})
        sec = json.loads(self.k("-n", "gen", "get", "secret", "sec", "-o", "json").stdout)
        self.assertEqual(base64.b64decode(sec["data"]["p"]), b"q")
        svc = json.loads(self.k("-n", "gen", "get", "svc", "svc", "-o", "json").stdout)
        self.assertRegex(svc["spec"]["clusterIP"], r"^10\.152\.183\.\d+$")
        self.assertNotIn(svc["spec"]["clusterIP"], ("10.152.183.1", "10.152.183.10"))
        out = self.k("-n", "gen", "get", "deploy").stdout
        self.assertRegex(out, r"NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE")
        self.assertRegex(out, r"webapp\s+0/3\s+\d+\s+0")  # no node runs pods yet: none available
        self.assertIn("yes", self.k("auth", "can-i", "create", "pods").stdout)

    def test_apply_reapply_and_server_side(self):
        manifest = """
apiVersion: v1
kind: ConfigMap
metadata: {name: app-config}
data: {mode: one}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - name: nginx
        image: nginx:1.26
        ports: [{containerPort: 80}]
      - name: side
        image: busybox:1.36
"""
        out = self.k("apply", "-f", "-", input=manifest).stdout
        self.assertIn("configmap/app-config created", out)
        self.assertIn("deployment.apps/web created", out)
        changed = manifest.replace("replicas: 2", "replicas: 4").replace("nginx:1.26", "nginx:1.27")
        out = self.k("apply", "-f", "-", input=changed).stdout
        self.assertIn("configmap/app-config unchanged", out)
        self.assertIn("deployment.apps/web configured", out)
        d = json.loads(self.k("get", "deploy", "web", "-o", "json").stdout)
        self.assertEqual(d["spec"]["replicas"], 4)
        containers = d["spec"]["template"]["spec"]["containers"]
        self.assertEqual([c["name"] for c in containers], ["nginx", "side"])
        self.assertEqual(containers[0]["image"], "nginx:1.27")
        self.assertEqual(containers[0]["ports"], [{"containerPort": 80, "protocol": "TCP"}])
        self.assertEqual(d["metadata"]["generation"], 2)
        out = self.k("apply", "--server-side", "-f", "-",
                     input=changed.replace("mode: one", "mode: two")).stdout
        self.assertIn("serverside-applied", out)
        cm = json.loads(self.k("get", "cm", "app-config", "-o", "json").stdout)
        self.assertEqual(cm["data"]["mode"], "two")
        out = self.k("apply", "--server-side", "-f", "-", input="""
apiVersion: v1
kind: ConfigMap
metadata: {name: ssa-new}
data: {k: v}
""").stdout
        self.assertIn("configmap/ssa-new serverside-applied", out)
        self.assertEqual(json.loads(self.k("get", "cm", "ssa-new", "-o", "json").stdout)["data"], {"k": "v"})

    def test_label_annotate_patch_scale_edit_replace(self):
        self.k("create", "deployment", "mut", "--image=nginx:1.26")
        self.k("label", "deploy", "mut", "tier=front")
        self.k("annotate", "deploy", "mut", "note=hello")
        self.assertIn("mut", self.k("get", "deploy", "-l", "tier=front").stdout)
        self.k("patch", "deploy", "mut", "--type=json", "-p",
               '[{"op":"replace","path":"/spec/replicas","value":2}]')
        self.k("patch", "deploy", "mut", "--type=merge", "-p", '{"metadata":{"labels":{"m":"1"}}}')
        self.k("patch", "deploy", "mut", "--type=strategic", "-p",
               '{"spec":{"template":{"spec":{"containers":[{"name":"nginx","image":"nginx:1.28"}]}}}}')
        self.k("scale", "deploy", "mut", "--replicas=5")
        env = dict(self.c.env, EDITOR="sed -i s/nginx:1.28/nginx:1.29/", KUBE_EDITOR="sed -i s/nginx:1.28/nginx:1.29/")
        self.k("edit", "deploy", "mut", env=env)
        d = json.loads(self.k("get", "deploy", "mut", "-o", "json").stdout)
        self.assertEqual(d["spec"]["replicas"], 5)
        self.assertEqual(d["metadata"]["labels"]["tier"], "front")
        self.assertEqual(d["metadata"]["labels"]["m"], "1")
        self.assertEqual(d["metadata"]["annotations"]["note"], "hello")
        self.assertEqual(d["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.29")
        # replace is a compare-and-swap on the resourceVersion read. (A ConfigMap: the deployment
        # controller writes Deployments concurrently, which would make this racy.)
        self.k("create", "configmap", "rep", "--from-literal=v=1")
        cm = json.loads(self.k("get", "cm", "rep", "-o", "json").stdout)
        cm["data"]["v"] = "2"
        out = self.k("replace", "-f", "-", input=json.dumps(cm)).stdout
        self.assertIn("configmap/rep replaced", out)
        # The same stale object again: a conflict, nothing changes.
        cm["data"]["v"] = "3"
        stale = self.k("replace", "-f", "-", input=json.dumps(cm), check=False)
        self.assertNotEqual(stale.returncode, 0)
        self.assertIn("Conflict", stale.stderr)
        self.assertEqual(self.k("get", "cm", "rep", "-o", "jsonpath={.data.v}").stdout, "2")

    def test_delete_by_name_label_file_and_wait(self):
        for name in ("d1", "d2", "d3"):
            self.k("create", "configmap", name, "--from-literal=x=y")
        self.k("label", "cm", "d2", "d3", "gone=yes")
        self.assertIn('configmap "d1" deleted', self.k("delete", "cm", "d1", "--wait").stdout)
        out = self.k("delete", "cm", "-l", "gone=yes").stdout
        self.assertIn('"d2" deleted', out)
        self.assertIn('"d3" deleted', out)
        manifest = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: fromfile}\n"
        self.k("apply", "-f", "-", input=manifest)
        self.assertIn("deleted", self.k("delete", "-f", "-", input=manifest).stdout)
        self.assertNotIn("d1", self.k("get", "cm", "-o", "name").stdout)

    def test_watch_sees_added_modified_deleted(self):
        # A marker kubectl's initial list prints: once it is out, the watch runs from that
        # list's revision, so nothing written afterwards can fall between list and watch (a
        # loaded machine could otherwise create, patch and delete before kubectl even listed).
        self.k("create", "cm", "watch-marker")
        proc = subprocess.Popen(["kubectl", "get", "cm", "-w", "--output-watch-events"],
                                env=self.c.env, stdout=subprocess.PIPE, text=True)
        lines = []
        reader = threading.Thread(target=lambda: [lines.append(l) for l in proc.stdout])
        reader.start()
        try:
            wait_for(lambda: any("watch-marker" in l for l in lines), what="kubectl's list")
            self.k("create", "cm", "watched", "--from-literal=a=1")
            self.k("patch", "cm", "watched", "-p", '{"data":{"a":"2"}}')
            self.k("delete", "cm", "watched")
            wait_for(lambda: sum("watched" in l for l in lines) >= 3, what="three watch events")
        finally:
            proc.terminate()
            proc.wait()
            reader.join()
            proc.stdout.close()
            self.k("delete", "cm", "watch-marker")
        events = [l.split()[0] for l in lines if "watched" in l]
        self.assertEqual(events[:3], ["ADDED", "MODIFIED", "DELETED"])

    def test_get_output_formats_describe_events(self):
        self.k("create", "ns", "fmt")
        self.k("-n", "fmt", "create", "deployment", "d", "--image=nginx:1.26")
        self.assertIn("kind: Deployment", self.k("-n", "fmt", "get", "deploy", "d", "-o", "yaml").stdout)
        listing = json.loads(self.k("get", "deploy", "-A", "-o", "json").stdout)
        self.assertIn("fmt", [i["metadata"]["namespace"] for i in listing["items"]])
        wide = self.k("get", "deploy", "-A", "-o", "wide").stdout
        self.assertRegex(wide, r"NAMESPACE\s+NAME\s+READY\s+UP-TO-DATE\s+AVAILABLE\s+AGE\s+CONTAINERS\s+IMAGES\s+SELECTOR")
        self.assertRegex(wide, r"fmt\s+d\s+0/1")
        self.assertIn("Name:", self.k("-n", "fmt", "describe", "deploy", "d").stdout)
        self.k("get", "events", "-A")
        for kind in ("pods", "nodes", "services", "endpoints", "configmaps", "secrets",
                     "serviceaccounts", "events", "deployments", "replicasets", "statefulsets",
                     "daemonsets", "jobs", "cronjobs", "leases", "endpointslices", "roles",
                     "rolebindings", "clusterroles", "clusterrolebindings", "events.events.k8s.io"):
            self.k("get", kind, "-A")

    def test_paging_with_continue_tokens(self):
        self.k("create", "ns", "paging")
        documents = [f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i:03d}\n"
                     f"data:\n  i: \"{i}\"\n" for i in range(230)]
        self.k("-n", "paging", "create", "-f", "-", input="---\n".join(documents))
        # (The root CA publisher adds kube-root-ca.crt to every namespace; it sorts after cm-*.)
        wait_for(lambda: self.c.kubectl("-n", "paging", "get", "cm", "kube-root-ca.crt", check=False).returncode == 0)
        names = self.k("-n", "paging", "get", "cm", "--chunk-size=40", "-o", "name").stdout.split()
        self.assertEqual(names, [f"configmap/cm-{i:03d}" for i in range(230)] + ["configmap/kube-root-ca.crt"])
        status, _, body = self.c.https("GET", "/api/v1/namespaces/paging/configmaps?limit=100")
        page = json.loads(body)
        self.assertEqual(len(page["items"]), 100)
        token = page["metadata"]["continue"]
        # Later pages come from the first page's snapshot, even after a change.
        self.k("-n", "paging", "delete", "cm", "cm-150")
        status, _, body = self.c.https("GET", f"/api/v1/namespaces/paging/configmaps?limit=200&continue={token}")
        rest = json.loads(body)
        self.assertEqual(len(rest["items"]), 131)  # cm-100..cm-229 (cm-150 too) + kube-root-ca.crt
        self.assertNotIn("continue", rest["metadata"])
        # Pages of 100 (the store's batch size) follow each other to the end.
        seen, token = [], ""
        for _ in range(10):
            status, _, body = self.c.https(
                "GET", "/api/v1/namespaces/paging/configmaps?limit=100" + (f"&continue={token}" if token else ""))
            page = json.loads(body)
            self.assertLessEqual(len(page["items"]), 100)
            seen += [item["metadata"]["name"] for item in page["items"]]
            token = page["metadata"].get("continue", "")
            if not token:
                break
        self.assertEqual(len(seen), 230)  # 229 cm-* (cm-150 was deleted) + kube-root-ca.crt
        self.assertEqual(len(set(seen)), len(seen))
        status, _, body = self.c.https("GET", "/api/v1/namespaces/paging/configmaps?continue=bm90LWEtdG9rZW4=")
        self.assertEqual(status, 400)

    def test_service_account_token_authenticates(self):
        self.k("create", "serviceaccount", "robot")
        token = self.k("create", "token", "robot").stdout.strip()
        self.assertEqual(token.count("."), 2)
        status, _, body = self.c.https("GET", "/api/v1/namespaces", cert=False, token=token)
        self.assertEqual(status, 200, body)
        tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
        status, _, _ = self.c.https("GET", "/api/v1/namespaces", cert=False, token=tampered)
        self.assertEqual(status, 401)
        missing = self.k("create", "token", "nobody", check=False)
        self.assertNotEqual(missing.returncode, 0)
        self.assertIn("serviceaccounts \"nobody\" not found", missing.stderr)

    def test_events_served_in_both_groups(self):
        self.k("create", "-f", "-", input="""
apiVersion: events.k8s.io/v1
kind: Event
metadata: {name: ev1}
eventTime: "2026-01-01T00:00:00.000000Z"
reportingController: tests
reportingInstance: tests-1
action: Checking
reason: Checked
type: Normal
note: one event, two APIs
regarding: {kind: Pod, name: p1, namespace: default}
""")
        core = json.loads(self.k("get", "events", "ev1", "-o", "json").stdout)
        self.assertEqual(core["apiVersion"], "v1")
        self.assertEqual(core["message"], "one event, two APIs")
        self.assertEqual(core["involvedObject"]["name"], "p1")
        new = json.loads(self.k("get", "events.events.k8s.io", "ev1", "-o", "json").stdout)
        self.assertEqual(new["apiVersion"], "events.k8s.io/v1")
        self.assertEqual(new["note"], "one event, two APIs")
        self.assertEqual(new["regarding"]["name"], "p1")
        self.assertRegex(self.k("get", "events").stdout, r"Normal\s+Checked\s+pod/p1\s+one event, two APIs")

    def test_python_client(self):
        script = f"""
from kubernetes import client, config, watch

config.load_kube_config({self.c.kubeconfig!r})
v1 = client.CoreV1Api()
apps = client.AppsV1Api()
assert "kube-system" in [n.metadata.name for n in v1.list_namespace().items]
assert v1.list_namespaced_pod("kube-system").items == []
body = client.V1Deployment(
    metadata=client.V1ObjectMeta(name="py"),
    spec=client.V1DeploymentSpec(
        replicas=2, selector=client.V1LabelSelector(match_labels={{"app": "py"}}),
        template=client.V1PodTemplateSpec(
            metadata=client.V1ObjectMeta(labels={{"app": "py"}}),
            spec=client.V1PodSpec(containers=[client.V1Container(name="c", image="busybox:1.36")]))))
created = apps.create_namespaced_deployment("default", body)
assert created.metadata.uid
patched = apps.patch_namespaced_deployment("py", "default", {{"spec": {{"replicas": 3}}}})
assert patched.spec.replicas == 3
v1.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="pyw1")))
seen = []
last_rv = None
for event in watch.Watch().stream(v1.list_namespaced_config_map, "default", timeout_seconds=2):
    seen.append((event["type"], event["object"].metadata.name))
    last_rv = event["object"].metadata.resource_version
assert ("ADDED", "pyw1") in seen, seen
v1.create_namespaced_config_map("default", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="pyw2")))
resumed = [(e["type"], e["object"].metadata.name) for e in watch.Watch().stream(
    v1.list_namespaced_config_map, "default", resource_version=last_rv, timeout_seconds=2)]
assert resumed == [("ADDED", "pyw2")], resumed
print("python ok")
"""
        result = subprocess.run(["/usr/bin/python3", "-c", script], capture_output=True, text=True,
                                timeout=60)
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("python ok", result.stdout)


class BadInputTest(unittest.TestCase):
    """Hostile or wrong requests get the right Status, and the store holds what it held before."""

    @classmethod
    def setUpClass(cls):
        cls.c = Cluster()
        cls.c.kubectl("create", "configmap", "keep", "--from-literal=a=b")

    @classmethod
    def tearDownClass(cls):
        cls.c.stop()

    def snapshot(self):
        status, _, body = self.c.https("GET", "/api/v1/configmaps")
        self.assertEqual(status, 200)
        items = json.loads(body)["items"]
        return sorted((i["metadata"]["namespace"], i["metadata"]["name"], i["metadata"]["resourceVersion"]) for i in items)

    def expect_status(self, response, code, reason):
        status, content_type, body = response
        self.assertEqual(status, code, body)
        self.assertTrue(content_type.startswith("application/json"))
        parsed = json.loads(body)
        self.assertEqual(parsed["kind"], "Status")
        self.assertEqual(parsed["code"], code)
        self.assertEqual(parsed["reason"], reason)
        return parsed

    def test_bad_requests_change_nothing(self):
        before = self.snapshot()
        path = "/api/v1/namespaces/default/configmaps"
        json_type = {"Content-Type": "application/json"}
        self.expect_status(self.c.https("POST", path, b'{"apiVersion":"v1","kind":"Conf', json_type), 400, "BadRequest")
        self.expect_status(self.c.https("POST", path, b"[1,2,3]", json_type), 400, "BadRequest")
        big = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"},
                          "data": {"x": "y" * (3 * 1024 * 1024 + 10)}}).encode()
        self.expect_status(self.c.https("POST", path, big, json_type), 413, "RequestEntityTooLarge")
        invalid = self.expect_status(self.c.https("POST", path, json.dumps(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}}).encode(), json_type),
            422, "Invalid")
        self.assertEqual(invalid["details"]["causes"][0]["field"], "metadata.name")
        self.expect_status(self.c.https("POST", path, b"a: b", {"Content-Type": "text/csv"}), 415, "UnsupportedMediaType")
        self.expect_status(self.c.https("POST", path, b"\x00\x01garbage",
                                        {"Content-Type": "application/vnd.kubernetes.protobuf"}), 400, "BadRequest")
        self.expect_status(self.c.https("POST", path + "?fieldValidation=Strict", json.dumps(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "strict"}, "dta": {}}).encode(),
            json_type), 400, "BadRequest")
        # A stale resourceVersion is a conflict.
        status, _, body = self.c.https("GET", path + "/keep")
        current = json.loads(body)
        current["data"]["a"] = "changed"
        current["metadata"]["resourceVersion"] = "1"
        self.expect_status(self.c.https("PUT", path + "/keep", json.dumps(current).encode(), json_type), 409, "Conflict")
        self.expect_status(self.c.https("GET", path + "/missing"), 404, "NotFound")
        self.expect_status(self.c.https("GET", path, cert=False), 401, "Unauthorized")
        self.expect_status(self.c.https("GET", path, cert=False, token="not-a-token"), 401, "Unauthorized")
        self.expect_status(self.c.https("GET", path, cert=False, token="a.b.c"), 401, "Unauthorized")
        self.assertEqual(self.c.https("GET", "/version", cert=False)[0], 200)
        self.assertEqual(self.c.https("GET", "/healthz", cert=False)[0], 200)
        self.assertEqual(self.c.https("GET", "/openapi/v2")[0], 404)
        self.assertEqual(before, self.snapshot())

    def test_expect_100_continue_with_the_real_curl(self):
        """curl sends "Expect: 100-continue" for bodies over 1 MB and waits for the interim
        answer before the body; an oversize body gets its 413 without being uploaded."""
        self.c.tls_context(True)  # writes admin.crt/admin.key
        ca = os.path.join(self.c.dir, "ca.crt")
        with open(ca, "wb") as f:
            f.write(base64.b64decode(self.c.config()["clusters"][0]["cluster"]["certificate-authority-data"]))
        path = f"https://127.0.0.1:{self.c.port}/api/v1/namespaces/default/configmaps"

        def upload(name, size):
            body = os.path.join(self.c.dir, name + ".json")
            with open(body, "w") as f:
                json.dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                           "data": {"x": "y" * size}}, f)
            # A server that never answers 100 would make curl wait the whole timeout, then say so.
            result = subprocess.run(
                ["curl", "-sS", "-v", "--expect100-timeout", "30", "--cacert", ca,
                 "--cert", os.path.join(self.c.dir, "admin.crt"),
                 "--key", os.path.join(self.c.dir, "admin.key"),
                 "-H", "Content-Type: application/json", "--data-binary", "@" + body,
                 "-o", os.devnull, "-w", "%{http_code}", path],
                capture_output=True, text=True, timeout=60)
            self.assertIn("> Expect: 100-continue", result.stderr)
            self.assertNotIn("Done waiting for 100-continue", result.stderr)
            return result

        uploaded = upload("large-upload", 2 * 1024 * 1024)
        self.assertEqual(uploaded.stdout, "201", uploaded.stderr[-2000:])
        self.assertIn("< HTTP/1.1 100 Continue", uploaded.stderr)
        refused = upload("too-large-upload", 4 * 1024 * 1024)
        self.assertEqual(refused.stdout, "413", refused.stderr[-2000:])
        self.assertNotIn("100 Continue", refused.stderr)
        status, _, body = self.c.https("GET", "/api/v1/namespaces/default/configmaps/large-upload")
        self.assertEqual(status, 200)
        self.assertEqual(len(json.loads(body)["data"]["x"]), 2 * 1024 * 1024)
        self.c.kubectl("delete", "configmap", "large-upload")

    def test_random_bodies_never_crash_the_daemon(self):
        import random
        rng = random.Random(20261127)
        before = self.snapshot()
        paths = ["/api/v1/namespaces/default/configmaps", "/apis/apps/v1/namespaces/default/deployments",
                 "/api/v1/namespaces", "/api/v1/namespaces/default/configmaps/fuzzed",
                 "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"]
        types = ["application/json", "application/yaml", "application/vnd.kubernetes.protobuf",
                 "application/merge-patch+json", "application/strategic-merge-patch+json",
                 "application/json-patch+json", "application/apply-patch+yaml"]
        seeds = [b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}', b"k8s\x00\x0a\x0c\x0a\x02v1",
                 b"- a\n- b: [", b'[{"op":"remove","path":"/metadata"}]', b"{}"]
        for _ in range(300):
            body = bytearray(rng.choice(seeds))
            for _ in range(rng.randint(0, 6)):
                if body and rng.random() < 0.5:
                    body[rng.randrange(len(body))] = rng.randrange(256)
                else:
                    body.insert(rng.randrange(len(body) + 1), rng.randrange(256))
            method = rng.choice(["POST", "PUT", "PATCH"])
            status, _, _ = self.c.https(method, rng.choice(paths), bytes(body),
                                        {"Content-Type": rng.choice(types)})
            self.assertLess(status, 500, f"{method} {body!r}")
        self.assertEqual(self.c.https("GET", "/healthz", cert=False)[0], 200)
        self.assertEqual(self.c.proc.poll(), None, "mk8sd died")
        # Whatever the fuzz managed to create is new; everything that was there is untouched.
        after = self.snapshot()
        self.assertEqual(before, [item for item in after if item in before or item[1] == "keep"])

    def test_wrongly_typed_objects_are_refused_as_go_decoding_refuses_them(self):
        # Found by fuzzing: a CSR whose signerName was an array crashed the daemon in admission.
        status = self.c.https("POST", "/apis/certificates.k8s.io/v1/certificatesigningrequests",
                              json.dumps({"apiVersion": "certificates.k8s.io/v1",
                                          "kind": "CertificateSigningRequest",
                                          "metadata": {"name": "typed"},
                                          "spec": {"request": "AAAA", "signerName": [None],
                                                   "usages": ["client auth"]}}).encode(),
                              {"Content-Type": "application/json"})
        parsed = self.expect_status(status, 400, "BadRequest")
        self.assertEqual(parsed["message"],
                         'CertificateSigningRequest in version "v1" cannot be handled as a '
                         'CertificateSigningRequest: json: cannot unmarshal array into Go struct '
                         'field CertificateSigningRequestSpec.spec.signerName of type string')
        # kubectl shows the same words; a patch that would store a wrong type is refused too.
        bad = self.c.kubectl("create", "-f", "-", check=False, input=json.dumps(
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "typed"},
             "spec": {"replicas": "three", "selector": {"matchLabels": {"a": "b"}},
                      "template": {"metadata": {"labels": {"a": "b"}},
                                   "spec": {"containers": [{"name": "c", "image": "x"}]}}}}))
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas "
                      "of type int32", bad.stderr)
        refused = self.c.kubectl("patch", "configmap", "keep", "--type=merge", "-p",
                                 '{"metadata": {"labels": {"n": 5}}}', check=False)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("ObjectMeta.metadata.labels of type string", refused.stderr)
        # Found by fuzzing too: a ReplicaSet with replicas -1 crashed its controller.
        negative = self.c.kubectl("create", "-f", "-", check=False, input=json.dumps(
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "negative"},
             "spec": {"replicas": -1, "selector": {"matchLabels": {"a": "b"}},
                      "template": {"metadata": {"labels": {"a": "b"}},
                                   "spec": {"containers": [{"name": "c", "image": "x"}]}}}}))
        self.assertNotEqual(negative.returncode, 0)
        self.assertIn("spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                      negative.stderr)
        # Found by fuzzing as well: a DaemonSet whose selector expressions did not select its own
        # template released every pod it made, a ReplicaSet with a wider selector adopted and
        # deleted them, and the two looped at full CPU. Upstream's validation refuses it.
        unselected = self.c.kubectl("create", "-f", "-", check=False, input=json.dumps(
            {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "unselected"},
             "spec": {"selector": {"matchLabels": {"a": "b"}, "matchExpressions": [
                 {"key": "a", "operator": "NotIn", "values": ["b"]}]},
                      "template": {"metadata": {"labels": {"a": "b"}},
                                   "spec": {"containers": [{"name": "c", "image": "x"}]}}}}))
        self.assertNotEqual(unselected.returncode, 0)
        self.assertIn("`selector` does not match template `labels`", unselected.stderr)
        # A null is Go's zero value: the field is simply not there.
        self.c.kubectl("create", "-f", "-", input=json.dumps(
            {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "nulls", "labels": None}, "data": {"k": None}}))
        stored = json.loads(self.c.kubectl("get", "configmap", "nulls", "-o", "json").stdout)
        self.assertNotIn("labels", stored["metadata"])
        self.assertEqual(stored["data"], {"k": ""})

    def test_a_uid_in_the_body_is_a_precondition(self):
        self.c.kubectl("create", "configmap", "uid-guarded", "--from-literal=a=b")
        uid = json.loads(self.c.kubectl("get", "cm", "uid-guarded", "-o", "json").stdout)[
            "metadata"]["uid"]
        path = "/api/v1/namespaces/default/configmaps/uid-guarded"
        patch = {"Content-Type": "application/merge-patch+json"}
        stale = self.c.https("PATCH", path, json.dumps(
            {"metadata": {"uid": "0000-not-the-one"}, "data": {"a": "c"}}).encode(), patch)
        parsed = self.expect_status(stale, 409, "Conflict")
        self.assertEqual(parsed["message"],
                         'Operation cannot be fulfilled on configmaps "uid-guarded": Precondition '
                         f'failed: UID in precondition: 0000-not-the-one, UID in object meta: {uid}')
        ok = self.c.https("PATCH", path, json.dumps(
            {"metadata": {"uid": uid}, "data": {"a": "c"}}).encode(), patch)
        self.assertEqual(ok[0], 200, ok[2])
        self.assertEqual(json.loads(ok[2])["data"], {"a": "c"})

    def test_wrongly_typed_fields_anywhere_never_crash_the_daemon(self):
        import copy
        import random
        rng = random.Random(20261128)
        template = {"metadata": {"labels": {"app": "t"}},
                    "spec": {"containers": [{"name": "c", "image": "busybox",
                                             "ports": [{"containerPort": 80}],
                                             "resources": {"requests": {"cpu": "10m"}}}],
                             "tolerations": [{"key": "k", "operator": "Exists"}]}}
        selector = {"matchLabels": {"app": "t"}}
        seeds = [
            ("/api/v1/namespaces/default/pods", {"apiVersion": "v1", "kind": "Pod", **template}),
            ("/apis/apps/v1/namespaces/default/deployments",
             {"apiVersion": "apps/v1", "kind": "Deployment",
              "spec": {"replicas": 0, "selector": selector, "template": template}}),
            ("/apis/batch/v1/namespaces/default/jobs",
             {"apiVersion": "batch/v1", "kind": "Job", "spec": {"completions": 1, "template": {
                 **template, "spec": {**template["spec"], "restartPolicy": "Never"}}}}),
            ("/api/v1/namespaces/default/services",
             {"apiVersion": "v1", "kind": "Service",
              "spec": {"selector": {"app": "t"}, "ports": [{"port": 80, "targetPort": 8080}]}}),
            ("/apis/certificates.k8s.io/v1/certificatesigningrequests",
             {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
              "spec": {"request": "AAAA", "signerName": "kubernetes.io/kube-apiserver-client",
                       "usages": ["client auth"]}}),
            ("/apis/policy/v1/namespaces/default/poddisruptionbudgets",
             {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
              "spec": {"minAvailable": 1, "selector": selector}}),
        ]
        weird = [None, True, 0, -1, 2 ** 31, 2 ** 64, 1.5, "", "x", "-1", "100%", [], [None],
                 {}, {"a": None}, [[[]]]]

        def paths(value, prefix=()):
            yield prefix
            children = value.items() if isinstance(value, dict) else (
                enumerate(value) if isinstance(value, list) else ())
            for key, child in children:
                yield from paths(child, prefix + (key,))

        for i in range(200):
            url, seed = rng.choice(seeds)
            body = copy.deepcopy(seed)
            spots = [p for p in paths(body) if len(p) > 1 or p and p[0] not in
                     ("apiVersion", "kind", "metadata")]
            for _ in range(rng.randint(1, 2)):
                spot = rng.choice(spots)
                try:  # an earlier mutation may have replaced part of the path
                    parent = body
                    for key in spot[:-1]:
                        parent = parent[key]
                    parent[spot[-1]] = copy.deepcopy(rng.choice(weird))
                except (KeyError, IndexError, TypeError):
                    pass
            if not isinstance(body.get("metadata"), dict):
                body["metadata"] = {}
            body["metadata"]["name"] = f"typed-{i}"
            status, _, reply = self.c.https("POST", url, json.dumps(body).encode(),
                                            {"Content-Type": "application/json"})
            self.assertLess(status, 500, f"{json.dumps(body)} -> {reply[:300]!r}")
        # The controllers and the scheduler read everything stored above and carry on: a Job
        # created after it gets its pod (job controller), which is judged (scheduler: no nodes).
        self.c.kubectl("create", "job", "typed-sentinel", "--image=busybox")

        def judged_pod():
            out = self.c.kubectl("get", "pods", "-l", "job-name=typed-sentinel", "-o",
                                 "json").stdout
            items = json.loads(out)["items"]
            return items and any(c["type"] == "PodScheduled" and c["status"] == "False"
                                 for c in items[0].get("status", {}).get("conditions", []))
        wait_for(judged_pod, what="the sentinel Job's pod, judged by the scheduler")
        self.assertIsNone(self.c.proc.poll(), "mk8sd died")

    def test_future_resource_version_does_not_hold_up_the_server(self):
        """Lists asking for a resourceVersion that never comes wait without a transport thread:
        more of them than the server has threads are in flight while other requests are
        answered, and each ends in 504 Timeout with upstream's "Too large resource version"."""
        future = "/api/v1/namespaces/default/configmaps?resourceVersion=99999999999"
        results = []

        def slow_list():
            results.append(self.c.https("GET", future))
        waiting = [threading.Thread(target=slow_list) for _ in range(4)]
        for thread in waiting:
            thread.start()
        answered_meanwhile = 0
        while any(thread.is_alive() for thread in waiting) and answered_meanwhile < 20:
            status, _, _ = self.c.https("GET", "/api/v1/namespaces/default/configmaps/keep")
            self.assertEqual(status, 200)
            answered_meanwhile += 1
        self.assertEqual(answered_meanwhile, 20, "requests were held up behind the waiting lists")
        self.assertEqual(len(results), 0, "a future resourceVersion was answered before its 5 s")
        for thread in waiting:
            thread.join()
        self.assertEqual(len(results), 4)
        for response in results:
            parsed = self.expect_status(response, 504, "Timeout")
            self.assertIn("Too large resource version: 99999999999", parsed["message"])

    def test_static_admin_token_works(self):
        with open(os.path.join(self.c.state, "credentials", "known_tokens.csv")) as f:
            tokens = f.read()
        token = tokens.split(",")[0]
        status, _, _ = self.c.https("GET", "/api/v1/namespaces", cert=False, token=token)
        self.assertEqual(status, 200)


if __name__ == "__main__":
    unittest.main(verbosity=2)
