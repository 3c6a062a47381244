#!/usr/bin/env python3
"""`kubectl exec` and `kubectl port-forward` end to end, with the real kubectl.

kubectl -> mk8sd (pods/exec, pods/portforward proxied to the node's kubelet) -> the kubelet
API with StreamingService (streaming_node_fixture) -> containerd's streaming server -> a
busybox pod on a CNI bridge. Runs inside a network namespace of its own (in-netns.sh): all
traffic stays on that namespace's loopback and bridge.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "integration"))
import kubectl_test as kt  # noqa: E402  (Cluster, wait_for)
from mk8s_testlib import stop_process  # noqa: E402  (on sys.path through kubectl_test)

FIXTURE = os.environ.get("STREAMING_NODE_FIXTURE", "streaming_node_fixture")
SCRIPT = os.environ.get("OCI_IMAGE_SCRIPT", os.path.join(HERE, "..", "..", "..", "scripts",
                                                          "oci-image.py"))
NODE = "stream-node"
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
POD = "web"


def skip_reason():
    if os.geteuid() != 0:
        return "needs root (containerd, runc, CNI)"
    for path in ("/usr/bin/containerd", "/usr/lib/cni/bridge"):
        if not os.access(path, os.X_OK):
            return f"{path} is missing (scripts/install-deps.sh)"
    if shutil.which("kubectl") is None:
        return "kubectl is not installed"
    # Network safety: a namespace of our own has nothing but loopback.
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    if [l.split(":")[1].strip() for l in links.splitlines()] != ["lo"]:
        return "refusing to run outside a fresh network namespace: run it through in-netns.sh"
    return None


class KubectlStreamingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = kt.Cluster(extra_args=("--components", "apiserver"))
        cls.work = tempfile.mkdtemp(prefix="mk8s-stream-e2e-")
        cls.node = None
        try:
            cls.node = subprocess.Popen(
                [FIXTURE, "--credentials-dir", os.path.join(cls.c.state, "credentials"),
                 "--work-dir", cls.work, "--pod", POD, "--oci-image-script", SCRIPT],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            line = cls.node.stdout.readline()
            assert line.startswith("port="), f"fixture said {line!r}"
            port = cls.kubelet_port = int(line.strip().split("=", 1)[1])
            cls.c.kubectl("create", "-f", "-", input=json.dumps(
                {"apiVersion": "v1", "kind": "Node", "metadata": {"name": NODE}}))
            cls.c.kubectl("patch", "node", NODE, "--subresource=status", "--type=merge", "-p",
                          json.dumps({"status": {
                              "addresses": [{"type": "InternalIP", "address": "127.0.0.1"}],
                              "daemonEndpoints": {"kubeletEndpoint": {"Port": port}}}}))
            for name in (POD, "absent"):
                cls.c.kubectl("create", "-f", "-", input=json.dumps(
                    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                     "spec": {"nodeName": NODE,
                              "containers": [{"name": "main", "image": "busybox"},
                                             {"name": "ticker", "image": "busybox"}]}}))
                cls.c.kubectl("patch", "pod", name, "--subresource=status", "--type=merge", "-p",
                              json.dumps({"status": {"phase": "Running"}}))
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.node is not None:
            cls.node.stdin.close()  # the fixture's cue to exit
            stop_process(cls.node, timeout=60, sig=None)
            cls.node.stdout.close()
        cls.c.stop()
        shutil.rmtree(cls.work, ignore_errors=True)

    def k(self, *args, **kw):
        return self.c.kubectl(*args, check=False, **kw)

    def spdy(self):
        """kubectl's SPDY/3.1 path (its fallback when the WebSocket upgrade is refused)."""
        return dict(self.c.env, KUBECTL_REMOTE_COMMAND_WEBSOCKETS="false",
                    KUBECTL_PORT_FORWARD_WEBSOCKETS="false")

    def test_exec_echo(self):
        r = self.k("exec", POD, "--", "echo", "hi")
        self.assertEqual((r.returncode, r.stdout), (0, "hi\n"), r.stderr)

    def test_exec_stdin_is_echoed_and_closed(self):
        r = self.k("exec", "-i", POD, "--", "cat", input="hello-stdin\nsecond line\n")
        self.assertEqual((r.returncode, r.stdout), (0, "hello-stdin\nsecond line\n"), r.stderr)

    def test_exec_stdout_and_stderr(self):
        r = self.k("exec", POD, "--", "sh", "-c", "echo out; echo err >&2")
        self.assertEqual((r.returncode, r.stdout), (0, "out\n"), r.stderr)
        self.assertIn("err\n", r.stderr)

    def test_exec_exit_code(self):
        r = self.k("exec", POD, "--", "sh", "-c", "exit 3")
        self.assertEqual(r.returncode, 3, r.stderr)
        self.assertIn("command terminated with exit code 3", r.stderr)

    def test_exec_tty(self):
        # kubectl -t needs a terminal: `script` gives it a pty of 100x30 (the resize channel
        # carries that size to the container's tty; it may land just after the command
        # starts, so the command waits for it, up to 5 s).
        if shutil.which("script") is None:
            self.skipTest("script (util-linux) is not installed")
        for env in (self.c.env, self.spdy()):
            r = subprocess.run(
                ["script", "-qec", f"stty cols 100 rows 30; kubectl exec -it {POD} -- "
                 "sh -c 'tty; for i in $(seq 50); do s=$(stty size 2>/dev/null); "
                 "[ -n \"$s\" ] && [ \"$s\" != \"0 0\" ] && break; sleep 0.1; done; "
                 "echo size $s; exit 5'", "/dev/null"],
                env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
            self.assertIn("/dev/pts/", r.stdout, r.stderr)
            self.assertIn("size 30 100", r.stdout, r.stderr)
            self.assertEqual(r.returncode, 5, r.stdout + r.stderr)

    def test_exec_over_spdy(self):
        r = self.k("exec", POD, "--", "echo", "hi", env=self.spdy())
        self.assertEqual((r.returncode, r.stdout), (0, "hi\n"), r.stderr)
        r = self.k("exec", "-i", POD, "--", "cat", input="over spdy\n", env=self.spdy())
        self.assertEqual((r.returncode, r.stdout), (0, "over spdy\n"), r.stderr)
        r = self.k("exec", POD, "--", "sh", "-c", "exit 4", env=self.spdy())
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertIn("command terminated with exit code 4", r.stderr)

    def test_exec_large_output(self):
        r = self.k("exec", POD, "--", "sh", "-c", "head -c 3000000 /dev/zero | tr '\\0' x")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(len(r.stdout), 3000000)

    def test_exec_errors(self):
        r = self.k("exec", POD, "--", "/nonexistent")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("no such file or directory", r.stderr)
        r = self.k("exec", "absent", "--", "true")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("is not running on this node", r.stderr)
        r = self.k("exec", POD, "-c", "nope", "--", "true")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("container nope is not valid", r.stderr)

    def test_attach_streams_live_output(self):
        for env in (self.c.env, self.spdy()):
            proc = subprocess.Popen(["kubectl", "attach", POD, "-c", "ticker"], env=env,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                first = int(proc.stdout.readline().split()[1])
                self.assertEqual(proc.stdout.readline(), f"tick {first + 1}\n")
            finally:
                proc.terminate()
                proc.wait(timeout=30)
                proc.stdout.close()
                proc.stderr.close()
        # Detaching left the container running.
        r = self.k("exec", POD, "-c", "ticker", "--", "echo", "still here")
        self.assertEqual((r.returncode, r.stdout), (0, "still here\n"), r.stderr)

    def port_forward(self, local_port, env):
        proc = subprocess.Popen(["kubectl", "port-forward", f"pod/{POD}", f"{local_port}:80"],
                                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        try:
            line = proc.stdout.readline()
            self.assertIn(f"Forwarding from 127.0.0.1:{local_port} -> 80", line,
                          proc.stderr.read() if proc.poll() is not None else "")
            for _ in range(3):  # several connections over one session
                with NO_PROXY.open(f"http://127.0.0.1:{local_port}/", timeout=30) as response:
                    self.assertEqual(response.read().decode(), "hello from the pod\n")
            # Concurrent connections.
            import concurrent.futures
            with concurrent.futures.ThreadPoolExecutor(4) as pool:
                bodies = list(pool.map(
                    lambda _: NO_PROXY.open(f"http://127.0.0.1:{local_port}/",
                                            timeout=30).read().decode(), range(8)))
            self.assertEqual(bodies, ["hello from the pod\n"] * 8)
        finally:
            proc.terminate()
            proc.wait(timeout=30)
            proc.stdout.close()
            proc.stderr.close()

    def test_port_forward(self):  # WebSocket tunnel (SPDY/3.1+portforward.k8s.io)
        self.port_forward(18080, self.c.env)

    def test_port_forward_over_spdy(self):
        self.port_forward(18081, self.spdy())

    def test_upgrade_required_and_bad_requests(self):
        r = self.k("get", "--raw", f"/api/v1/namespaces/default/pods/{POD}/exec?command=true")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Upgrade request required", r.stderr)
        creds = os.path.join(self.c.state, "credentials")

        def kubelet(path, *headers):
            result = subprocess.run(
                ["curl", "-sS", "--noproxy", "*", "--cacert", os.path.join(creds, "ca.crt"),
                 "--cert", os.path.join(creds, "apiserver-kubelet-client.crt"),
                 "--key", os.path.join(creds, "apiserver-kubelet-client.key"),
                 "-o", "-", "-w", "\n%{http_code}", *sum((["-H", h] for h in headers), []),
                 f"https://127.0.0.1:{self.kubelet_port}{path}"],
                capture_output=True, text=True, timeout=60)
            body, _, code = result.stdout.rpartition("\n")
            return int(code or 0), body

        code, body = kubelet(f"/exec/default/{POD}/main?command=true&stdout=1")
        self.assertEqual(code, 400, body)
        self.assertIn("missing upgrade headers", body)
        code, body = kubelet(f"/exec/default/{POD}/main?command=true&stdout=1",
                             "Connection: Upgrade", "Upgrade: websocket",
                             "Sec-WebSocket-Version: 13", "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
                             "Sec-WebSocket-Protocol: base64.channel.k8s.io")
        self.assertEqual(code, 403, body)
        code, body = kubelet(f"/exec/default/{POD}?command=true")
        self.assertEqual(code, 400, body)
        code, body = kubelet(f"/exec/default/{POD}/main?stdout=1")
        self.assertEqual((code, body), (400, "you must specify at least 1 command\n"))


if __name__ == "__main__":
    reason = skip_reason()
    if reason:
        print("SKIP:", reason)
        sys.exit(77)
    unittest.main(verbosity=2)
