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


if __name__ == "__main__":
    unittest.main(verbosity=2)
