#!/usr/bin/python3
"""Streamed HTTP responses of addons (SDK ABI 1.2) end to end, with real binaries.

The example addon (tests/addons/example, built against the installed SDK alone) runs in a real
mk8sd next to fixture-abi11 (a plain C addon built against the frozen ABI 1.1 header). The real
curl, with the admin client certificate, and the real kubectl read its routes on the API server:
  - a 64 MiB streamed body arrives complete and byte-exact while mk8sd's RSS stays far below it;
  - a client that leaves mid-stream makes the addon's next write fail with MK8S_ERR_CLOSED
    (the example counts it in /addons/example/streams), and the daemon stays healthy;
  - disabling the addon while a stream is open ends it cleanly (curl sees the end of the body),
    with no fault, no leaked handle and no leaked connection;
  - the ABI 1.1 addon still loads and serves.

Environment (set by ctest): MK8S_BIN, MK8SD_BIN, MK8S_BUILD_DIR, MK8S_SOURCE_DIR,
MK8S_FIXTURES_DIR. Waits poll with deadlines; nothing sleeps blindly.
"""

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from addons_test import FIXTURES, Daemon, build_example, short_temp_dir  # noqa: E402
from mk8s_testlib import stop_process, wait_for  # noqa: E402  (addons_test added its folder)

MIB = 1024 * 1024
ALPHABET = b"abcdefghijklmnopqrstuvwxyz"


def expected_blob(n, size):
    """What /addons/example/stream?n=N&size=S sends: chunk k is the alphabet rotated left by
    k % 26, repeated and cut to S bytes. Yields the chunks."""
    rotations = []
    for r in range(26):
        rotated = ALPHABET[r:] + ALPHABET[:r]
        rotations.append((rotated * (size // 26 + 1))[:size])
    for k in range(n):
        yield rotations[k % 26]


def vm_rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/<pid>/status")


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class AddonStreamsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = short_temp_dir("mk8s-stream-")
        example, _ = build_example(cls.root)
        cls.daemon = Daemon(os.path.join(cls.root, "d"),
                            [example, os.path.join(FIXTURES, "fixture_abi11.so")])
        cls.daemon.start()
        cls.daemon.mk8s("enable", "example", "fixture-abi11")
        # The admin credentials for curl, from the kubeconfig kubectl uses.
        cls.daemon.kubectl("version", check=False)  # writes the kubeconfig
        config = json.loads(cls.daemon.kubectl("config", "view", "--raw", "-o", "json").stdout)
        files = {"ca.crt": config["clusters"][0]["cluster"]["certificate-authority-data"],
                 "admin.crt": config["users"][0]["user"]["client-certificate-data"],
                 "admin.key": config["users"][0]["user"]["client-key-data"]}
        for name, data in files.items():
            with open(os.path.join(cls.root, name), "wb") as out:
                out.write(base64.b64decode(data))
        cls.server = config["clusters"][0]["cluster"]["server"]

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()
        shutil.rmtree(cls.root, ignore_errors=True)

    def setUp(self):
        self.daemon.mk8s("enable", "example")  # idempotent; a test may have disabled it

    def curl(self, path, *extra):
        """A running curl fetching `path` with the admin certificate; its body on stdout."""
        return subprocess.Popen(
            ["curl", "-sS", "--no-buffer", "--fail", "--cacert", os.path.join(self.root, "ca.crt"),
             "--cert", os.path.join(self.root, "admin.crt"),
             "--key", os.path.join(self.root, "admin.key"), *extra, self.server + path],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    @staticmethod
    def finish(proc):
        """Ends a curl started by curl() (if still running) and closes its pipes."""
        stop_process(proc)
        proc.stdout.close()
        proc.stderr.close()

    def streams(self):
        return json.loads(self.daemon.kubectl("get", "--raw", "/addons/example/streams").stdout)

    def assert_healthy(self):
        self.assertIsNone(self.daemon.proc.poll(), "mk8sd exited")
        self.assertIn("example: enabled, healthy", self.daemon.mk8s("status").stdout)
        hello = json.loads(self.daemon.kubectl("get", "--raw", "/addons/example/hello").stdout)
        self.assertEqual(hello["path"], "/hello")
        self.assertEqual(self.daemon.kubectl("get", "ns", "default", "-o", "name").stdout.strip(),
                         "namespace/default")

    def log_text(self):
        with open(os.path.join(self.daemon.state, "logs", "mk8sd.log")) as log:
            return log.read()

    def test_an_abi_1_1_addon_still_loads_and_serves(self):
        self.assertIn("fixture-abi11: enabled, healthy: an ABI 1.1 addon",
                      self.daemon.mk8s("status").stdout)
        answer = json.loads(self.daemon.kubectl(
            "get", "--raw", "/addons/fixture-abi11/hello/x").stdout)
        self.assertEqual(answer["abi"], "1.1")
        self.assertEqual(answer["path"], "/hello/x")
        self.assertGreaterEqual(answer["host_struct_size"], 128)  # a 1.2 host serves it

    def test_kubectl_reads_a_streamed_body(self):
        body = subprocess.run(
            ["kubectl", "--kubeconfig", self.daemon.kubeconfig, "get", "--raw",
             "/addons/example/stream?n=100&size=1000"], capture_output=True, timeout=60)
        self.assertEqual(body.returncode, 0, body.stderr)
        self.assertEqual(body.stdout, b"".join(expected_blob(100, 1000)))
        follow = self.daemon.kubectl("get", "--raw",
                                     "/addons/example/follow?lines=3&interval_ms=10")
        self.assertEqual(follow.stdout, "line 1\nline 2\nline 3\n")
        bad = self.daemon.kubectl("get", "--raw", "/addons/example/stream?n=0", check=False)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("n must be 1..1048576", bad.stderr)

    def test_64_mib_arrive_complete_while_the_daemon_buffers_little(self):
        pid = self.daemon.proc.pid
        n, size = 1024, 64 * 1024
        completed = self.streams()["completed"]
        before = vm_rss_kib(pid)
        peak = [before]
        done = threading.Event()

        def sample():  # the daemon's RSS while the body flows (polls until the body is read)
            while not done.wait(0.02):
                peak[0] = max(peak[0], vm_rss_kib(pid))

        sampler = threading.Thread(target=sample)
        sampler.start()
        curl = self.curl(f"/addons/example/stream?n={n}&size={size}")
        digest, received = hashlib.sha256(), 0
        try:
            while True:
                block = curl.stdout.read(MIB)
                if not block:
                    break
                digest.update(block)
                received += len(block)
            self.assertEqual(curl.wait(timeout=120), 0, curl.stderr.read())
        finally:
            done.set()
            sampler.join()
            self.finish(curl)
        peak[0] = max(peak[0], vm_rss_kib(pid))
        expected = hashlib.sha256()
        for chunk in expected_blob(n, size):
            expected.update(chunk)
        self.assertEqual(received, n * size)
        self.assertEqual(digest.hexdigest(), expected.hexdigest())
        growth_mib = (peak[0] - before) / 1024
        print(f"\n  mk8sd RSS {before // 1024} MiB before, peak growth {growth_mib:.1f} MiB "
              f"while streaming 64 MiB", file=sys.stderr)
        self.assertLess(growth_mib, 24, f"mk8sd's RSS grew {growth_mib:.1f} MiB streaming 64 MiB")
        wait_for(lambda: self.streams()["completed"] > completed, "the producer to finish")

    def test_a_client_that_leaves_makes_the_next_write_fail_closed(self):
        closed = self.streams()["closed"]
        fds = open_fds(self.daemon.proc.pid)
        # A trickling stream: curl leaves after the first lines.
        follow = self.curl("/addons/example/follow?interval_ms=20")
        try:
            self.assertEqual(follow.stdout.readline(), b"line 1\n")
            self.assertEqual(follow.stdout.readline(), b"line 2\n")
        finally:
            self.finish(follow)
        wait_for(lambda: self.streams()["closed"] > closed, "the follow producer to see CLOSED",
                 timeout=10)
        # A big stream with a slow client, which leaves while the producer waits for room.
        blob = self.curl("/addons/example/stream?n=4096&size=65536", "--limit-rate", "256K")
        try:
            self.assertTrue(blob.stdout.read(64 * 1024))
        finally:
            self.finish(blob)
        wait_for(lambda: self.streams()["closed"] > closed + 1, "the blob producer to see CLOSED",
                 timeout=10)
        wait_for(lambda: self.streams()["open"] == 0, "no producer left")
        self.assert_healthy()
        wait_for(lambda: open_fds(self.daemon.proc.pid) <= fds, "the connections to be closed")

    def test_disabling_the_addon_ends_its_open_stream(self):
        d = self.daemon
        fds = open_fds(d.proc.pid)
        closed = self.streams()["closed"]
        follow = self.curl("/addons/example/follow?interval_ms=20")
        deadline = threading.Timer(60, follow.kill)  # a stream that never ends fails the test
        deadline.start()
        try:
            self.assertEqual(follow.stdout.readline(), b"line 1\n")
            d.mk8s("disable", "example")
            rest = follow.stdout.read()  # to the end of the body
            follow.wait()
            errors = follow.stderr.read()
        finally:
            deadline.cancel()
            self.finish(follow)
        # The end of the body (the terminating chunk): curl exits 0 with whole lines only.
        self.assertEqual(follow.returncode, 0, errors)
        lines = (b"line 1\n" + rest).decode().splitlines(keepends=True)
        self.assertEqual(lines, [f"line {k}\n" for k in range(1, len(lines) + 1)])
        log = self.log_text()
        self.assertIn("addon example: ending 1 open HTTP stream(s)", log)
        self.assertNotIn("faulted", log)
        self.assertNotIn("leaked", log)
        self.assertEqual(d.addon_state("example"), "disabled")
        gone = d.kubectl("get", "--raw", "/addons/example/follow?lines=1", check=False)
        self.assertIn("NotFound", gone.stderr)
        # Enabled again, its producer reports the write that the host closed under it.
        d.mk8s("enable", "example")
        self.assertEqual(self.streams()["closed"], closed + 1)
        self.assert_healthy()
        wait_for(lambda: open_fds(d.proc.pid) <= fds, "the connections to be closed")


if __name__ == "__main__":
    for name in ("MK8S_BIN", "MK8SD_BIN", "MK8S_BUILD_DIR", "MK8S_SOURCE_DIR",
                 "MK8S_FIXTURES_DIR"):
        if not os.environ.get(name):
            raise SystemExit(f"{name} is not set: run this test through ctest")
    unittest.main(verbosity=2)
