#!/usr/bin/env python3
"""`kubectl logs` end to end: real kubectl -> mk8sd's pods/log proxy -> a KubeletServer.

The kubelet side is kubelet_server_fixture serving hand-written CRI-format log files in the
shared layout <root>/<ns>_<pod>_<uid>/<container>/<restartCount>.log (the real kubelet and
containerd are tested elsewhere). A Node whose InternalIP is 127.0.0.1 and whose
daemonEndpoints port is the fixture's port is registered, and pods are bound to it.
"""
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import kubectl_test as kt  # noqa: E402  (Cluster, wait_for)
from mk8s_testlib import stop_process  # noqa: E402  (on sys.path through kubectl_test)

FIXTURE = os.environ.get("KUBELET_SERVER_FIXTURE", "kubelet_server_fixture")
NODE = "logs-node"


def ts(delta_seconds=0.0):
    """An RFC3339Nano UTC time, `delta_seconds` from now."""
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=delta_seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


def cri(text, delta=0.0, stream="stdout", tag="F"):
    return f"{ts(delta)} {stream} {tag} {text}\n"


class KubeletLogsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = kt.Cluster(extra_args=("--components", "apiserver"))
        cls.root = tempfile.mkdtemp(prefix="mk8s-kubelet-logs-")
        cls.uids = {}
        try:
            cls.write_logs()
            cls.kubelet = subprocess.Popen(
                [FIXTURE, "--credentials-dir", os.path.join(cls.c.state, "credentials"),
                 "--log-root", cls.root, "--node-name", NODE],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            line = cls.kubelet.stdout.readline()
            assert line.startswith("port="), f"fixture said {line!r}"
            cls.kubelet_port = int(line.strip().split("=", 1)[1])
            cls.register_node(NODE, "127.0.0.1", cls.kubelet_port)
            for name, containers in (("solo", ["main"]), ("web", ["app", "side"]),
                                     ("tailf", ["main"]), ("ended", ["main"])):
                cls.create_pod(name, containers, NODE)
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "kubelet", None):
            cls.kubelet.stdin.close()  # the fixture's cue to exit
            stop_process(cls.kubelet, timeout=30, sig=None)
        cls.c.stop()
        shutil.rmtree(cls.root, ignore_errors=True)

    # --- fixture helpers -------------------------------------------------------------------
    @classmethod
    def log_path(cls, pod, container, restart=0):
        uid = cls.uids.setdefault(pod, f"uid-{pod}-0001")
        folder = os.path.join(cls.root, f"default_{pod}_{uid}", container)
        os.makedirs(folder, exist_ok=True)
        return os.path.join(folder, f"{restart}.log")

    @classmethod
    def write(cls, pod, container, restart, lines):
        with open(cls.log_path(pod, container, restart), "a") as f:
            f.write("".join(lines))

    @classmethod
    def write_logs(cls):
        cls.write("solo", "main", 0, [
            cri("old line", delta=-7200),
            cri("one", delta=-5),
            cri("two", delta=-4, stream="stderr"),
            cri("thr", delta=-3, tag="P"),
            cri("ee", delta=-3),
            cri("four", delta=-2),
        ])
        cls.write("web", "app", 0, [cri("app run 0 line", delta=-60)])
        cls.write("web", "app", 1, [cri("app run 1 line", delta=-1)])
        cls.write("web", "side", 0, [cri("side car", delta=-1)])
        cls.write("tailf", "main", 0, [cri("first", delta=-1)])
        cls.write("ended", "main", 0, [cri("before restart", delta=-1)])

    @classmethod
    def register_node(cls, name, address, port):
        node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}
        cls.c.kubectl("create", "-f", "-", input=json.dumps(node))
        status = {"status": {"daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}}
        if address:
            status["status"]["addresses"] = [{"type": "InternalIP", "address": address},
                                             {"type": "Hostname", "address": name}]
        cls.c.kubectl("patch", "node", name, "--subresource=status", "--type=merge",
                      "-p", json.dumps(status))

    @classmethod
    def create_pod(cls, name, containers, node, annotations=None):
        pod = {"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": name, "annotations": annotations or {}},
               "spec": {"containers": [{"name": c, "image": "busybox"} for c in containers]}}
        if node:
            pod["spec"]["nodeName"] = node
        cls.c.kubectl("create", "-f", "-", input=json.dumps(pod))
        statuses = [{"name": c, "image": "busybox", "imageID": "", "ready": True,
                     "restartCount": 1 if (name, c) == ("web", "app") else 0,
                     "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}
                    for c in containers]
        cls.c.kubectl("patch", "pod", name, "--subresource=status", "--type=merge", "-p",
                      json.dumps({"status": {"phase": "Running", "containerStatuses": statuses}}))

    def k(self, *args, **kw):
        return self.c.kubectl(*args, **kw)

    def fails_with(self, args, text):
        result = self.k(*args, check=False)
        self.assertNotEqual(result.returncode, 0, result.stdout)
        self.assertIn(text, result.stderr)
        return result

    # --- kubectl logs ----------------------------------------------------------------------
    def test_logs_whole_file_joins_partial_lines(self):
        self.assertEqual(self.k("logs", "solo").stdout, "old line\none\ntwo\nthree\nfour\n")

    def test_container_flag_and_restart_counts(self):
        self.assertEqual(self.k("logs", "web", "-c", "side").stdout, "side car\n")
        self.assertEqual(self.k("logs", "web", "-c", "app").stdout, "app run 1 line\n")

    def test_previous(self):
        self.assertEqual(self.k("logs", "web", "-c", "app", "--previous").stdout, "app run 0 line\n")
        self.fails_with(("logs", "solo", "--previous"),
                        'previous terminated container "main" in pod "solo" not found')

    def test_tail(self):
        self.assertEqual(self.k("logs", "solo", "--tail=2").stdout, "ee\nfour\n")
        self.assertEqual(self.k("logs", "solo", "--tail=0").stdout, "")

    def test_timestamps(self):
        lines = self.k("logs", "solo", "--timestamps").stdout.splitlines()
        self.assertEqual(len(lines), 5)
        stamp, text = lines[1].split(" ", 1)
        self.assertEqual(text, "one")
        self.assertRegex(stamp, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")

    def test_since(self):
        self.assertEqual(self.k("logs", "solo", "--since=1h").stdout, "one\ntwo\nthree\nfour\n")

    def test_limit_bytes(self):
        self.assertEqual(self.k("logs", "solo", "--limit-bytes=6").stdout, "old li")

    def test_follow_streams_appended_lines(self):
        proc = subprocess.Popen(["kubectl", "logs", "-f", "tailf"], env=self.c.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            self.assertEqual(proc.stdout.readline(), "first\n")
            # An open follow does not hold up other requests.
            self.assertEqual(self.k("logs", "solo", "--tail=1").stdout, "four\n")
            for i in range(3):
                self.write("tailf", "main", 0, [cri(f"appended {i}")])
                self.assertEqual(proc.stdout.readline(), f"appended {i}\n")
            self.assertIsNone(proc.poll(), "kubectl logs -f ended while the log is written")
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            proc.stdout.close()
            proc.stderr.close()
        # The server stays healthy for the next requests after the follower went away.
        self.assertEqual(self.k("logs", "tailf", "--tail=1").stdout, "appended 2\n")

    def test_follow_ends_when_the_container_restarts(self):
        proc = subprocess.Popen(["kubectl", "logs", "-f", "ended"], env=self.c.env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            self.assertEqual(proc.stdout.readline(), "before restart\n")
            self.write("ended", "main", 0, [cri("last words")])
            self.assertEqual(proc.stdout.readline(), "last words\n")
            self.write("ended", "main", 1, [cri("new instance")])
            self.assertEqual(proc.wait(timeout=30), 0)
            self.assertEqual(proc.stdout.read(), "")
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.stdout.close()
            proc.stderr.close()

    def test_multi_container_without_a_name(self):
        # kubectl itself picks the first container and says so.
        result = self.k("logs", "web")
        self.assertEqual(result.stdout, "app run 1 line\n")
        self.assertIn('Defaulted container "app" out of: app, side', result.stderr)
        # The API without a container name answers upstream's error.
        self.fails_with(("get", "--raw", "/api/v1/namespaces/default/pods/web/log"),
                        "a container name must be specified for pod web, choose one of: [app side]")

    def test_default_container_annotation_on_the_server(self):
        self.create_pod("annotated", ["a", "b"], NODE,
                        {"kubectl.kubernetes.io/default-container": "b"})
        self.write("annotated", "b", 0, [cri("from b")])
        out = self.k("get", "--raw", "/api/v1/namespaces/default/pods/annotated/log").stdout
        self.assertEqual(out, "from b\n")

    def test_unknown_container(self):
        self.fails_with(("logs", "web", "-c", "nope"), "container nope is not valid for pod web")

    def test_container_without_a_log_on_the_node(self):
        self.create_pod("nologs", ["main"], NODE)
        self.fails_with(("logs", "nologs"), 'pod "nologs" does not exist')

    def test_pod_without_node(self):
        self.create_pod("pending", ["main"], None)
        self.fails_with(("logs", "pending"), "pod pending does not have a host assigned")

    def test_node_without_address(self):
        self.register_node("no-address", None, self.kubelet_port)
        self.create_pod("homeless", ["main"], "no-address")
        self.fails_with(("logs", "homeless"), "node no-address has no address")

    def test_kubelet_unreachable(self):
        # A port that nothing listens on: bind, read the number, close.
        import socket
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            dead_port = s.getsockname()[1]
        self.register_node("dead-node", "127.0.0.1", dead_port)
        self.create_pod("stranded", ["main"], "dead-node")
        start = time.monotonic()
        result = self.fails_with(("logs", "stranded"), "connection refused")
        self.assertIn(f"dial tcp 127.0.0.1:{dead_port}", result.stderr)
        self.assertLess(time.monotonic() - start, 30)

    def test_kubelet_that_never_answers_the_handshake(self):
        # The kernel completes the TCP handshake for the listen backlog; nobody speaks TLS.
        import socket
        with socket.socket() as silent:
            silent.bind(("127.0.0.1", 0))
            silent.listen(8)
            port = silent.getsockname()[1]
            self.register_node("silent-node", "127.0.0.1", port)
            self.create_pod("unanswered", ["main"], "silent-node")
            result = self.fails_with(("logs", "unanswered"), "tls handshake: i/o timeout")
            self.assertIn(f"dial tcp 127.0.0.1:{port}", result.stderr)

    # --- the kubelet port itself -----------------------------------------------------------
    def curl_kubelet(self, path, *extra):
        ca = os.path.join(self.c.state, "credentials", "ca.crt")
        result = subprocess.run(
            ["curl", "-sS", "--cacert", ca, "-o", "-", "-w", "\n%{http_code}", *extra,
             f"https://127.0.0.1:{self.kubelet_port}{path}"],
            capture_output=True, text=True, timeout=60)
        body, _, code = result.stdout.rpartition("\n")
        return int(code or 0), body

    def test_kubelet_requires_a_client_certificate(self):
        code, body = self.curl_kubelet("/containerLogs/default/solo/main")
        self.assertEqual(code, 401, body)
        self.assertEqual(self.curl_kubelet("/healthz"), (200, "ok\n"))

    def test_kubelet_accepts_the_apiserver_client_certificate(self):
        creds = os.path.join(self.c.state, "credentials")
        code, body = self.curl_kubelet(
            "/containerLogs/default/solo/main?tailLines=1&timestamps=false",
            "--cert", os.path.join(creds, "apiserver-kubelet-client.crt"),
            "--key", os.path.join(creds, "apiserver-kubelet-client.key"))
        self.assertEqual((code, body), (200, "four\n"))
        code, body = self.curl_kubelet(
            "/containerLogs/default/solo/main?tailLines=-1",
            "--cert", os.path.join(creds, "apiserver-kubelet-client.crt"),
            "--key", os.path.join(creds, "apiserver-kubelet-client.key"))
        self.assertEqual(code, 400)
        self.assertIn("tailLines: Invalid value: -1", body)

    def test_cert_files_are_private(self):
        creds = os.path.join(self.c.state, "credentials")
        for key in ("kubelet.key", "apiserver-kubelet-client.key"):
            self.assertEqual(os.stat(os.path.join(creds, key)).st_mode & 0o777, 0o600, key)


if __name__ == "__main__":
    unittest.main(verbosity=2)
