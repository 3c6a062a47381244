#!/usr/bin/python3
"""The addon platform end to end, with real binaries.

1. SdkExampleTest: installs the SDK (`cmake --install --component sdk`) into a temporary prefix,
   builds tests/addons/example against that prefix alone (find_package(mk8s-sdk)), drops
   example.so into a fresh mk8sd's <state>/addons, and drives it with the mk8s CLI: enable (a
   ConfigMap appears, seen by the real kubectl), status (the addon's own health), restart (it
   comes back), disable (the ConfigMap goes).
2. FixturesTest: the fixture libraries in a real daemon: broken ones are refused and listed while
   the daemon keeps serving, dependencies are enabled first with progress, wrong arguments change
   nothing, and the crash-loop guard leaves an addon that aborts mk8sd at start disabled after two
   deaths in a row.

Environment (set by ctest): MK8S_BIN, MK8SD_BIN, MK8S_BUILD_DIR, MK8S_SOURCE_DIR,
MK8S_FIXTURES_DIR. Every daemon gets its own temporary state folder and a free API port, so runs
go side by side. Waits poll with deadlines; nothing sleeps blindly.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from mk8s_testlib import stop_process, wait_for  # noqa: E402  (shared helpers)

# Daemons started here run the control plane only, also when this file is run by hand outside
# ctest: the default components include the kubelet and kube-proxy, which would start containerd,
# pods and iptables rules in the host's network namespace.
os.environ.setdefault("MK8S_COMPONENTS", "apiserver,controllers,scheduler")

MK8S = os.environ.get("MK8S_BIN", "")
MK8SD = os.environ.get("MK8SD_BIN", "")
BUILD = os.environ.get("MK8S_BUILD_DIR", "")
SOURCE = os.environ.get("MK8S_SOURCE_DIR", "")
FIXTURES = os.environ.get("MK8S_FIXTURES_DIR", "")
KUBECTL = "/usr/bin/kubectl"
DEADLINE = 90


def short_temp_dir(prefix):
    """Unix socket paths are limited to 107 bytes: keep state folders short."""
    base = tempfile.gettempdir()
    return tempfile.mkdtemp(prefix=prefix, dir=base if len(base) <= 40 else "/tmp")


class Daemon:
    """One mk8sd on a temporary state folder; `mk8s` and `kubectl` run against it."""

    def __init__(self, root, addons=()):
        self.root = root
        self.state = os.path.join(root, "state")
        os.makedirs(os.path.join(self.state, "addons"), exist_ok=True)
        for library in addons:
            shutil.copy(library, os.path.join(self.state, "addons"))
        self.kubeconfig = os.path.join(root, "kubeconfig")
        self.proc = None
        self.log = None

    def start(self, expect_ready=True):
        if os.path.exists(self.kubeconfig):
            os.unlink(self.kubeconfig)  # port 0: a restarted API server has a new port
        self.log = open(os.path.join(self.root, "daemon.out"), "a")
        self.proc = subprocess.Popen(
            [MK8SD, "--state-dir", self.state, "--apiserver-port", "0",
             "--apiserver-bind-address", "127.0.0.1", "--no-log-stderr"],
            stdout=self.log, stderr=subprocess.STDOUT)
        if expect_ready:
            wait_for(lambda: self.mk8s("status", check=False).returncode == 0
                     or self.proc.poll() is not None, "mk8sd to answer")
            if self.proc.poll() is not None:
                raise AssertionError(f"mk8sd exited with {self.proc.returncode}: {self.tail()}")

    def wait_exit(self, timeout=DEADLINE):
        """Waits for the daemon process to end by itself; returns its exit code."""
        try:
            return self.proc.wait(timeout=timeout)
        finally:
            self.log.close()

    def stop(self):
        if self.proc is None or self.proc.poll() is not None:
            return
        stop_process(self.proc, timeout=60)
        self.log.close()

    def tail(self):
        try:
            with open(os.path.join(self.state, "logs", "mk8sd.log")) as log:
                return "".join(log.readlines()[-20:])
        except OSError:
            return "(no log)"

    def mk8s(self, *args, check=True):
        result = subprocess.run([MK8S, "--state-dir", self.state, *args], capture_output=True,
                                text=True, timeout=300, stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError(f"mk8s {' '.join(args)} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}\n{self.tail()}")
        return result

    def kubectl(self, *args, check=True):
        if not os.path.exists(self.kubeconfig):
            with open(self.kubeconfig, "w") as out:
                out.write(self.mk8s("config").stdout)
        env = dict(os.environ, KUBECONFIG=self.kubeconfig,
                   KUBECACHEDIR=os.path.join(self.root, "kubecache"))
        result = subprocess.run([KUBECTL, *args], capture_output=True, text=True, env=env,
                                timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stdout}{result.stderr}")
        return result

    def addon_line(self, name, section):
        """The `mk8s status` line of `name` under "enabled:" or "disabled:", or None."""
        current = None
        for line in self.mk8s("status").stdout.splitlines():
            if line.strip() in ("enabled:", "disabled:"):
                current = line.strip()[:-1]
            elif line.startswith("    ") and current == section and line.split()[0] == name:
                return line
        return None

    def addon_state(self, name):
        return self.mk8s("status", "-a", name).stdout.strip()


def assert_one_line_error(test, result, contains):
    test.assertNotEqual(result.returncode, 0, result.stdout)
    lines = result.stderr.strip().splitlines()
    test.assertEqual(len(lines), 1, result.stderr)
    test.assertIn(contains, lines[0])


def build_example(root):
    """Installs the SDK into <root>/sdk and builds tests/addons/example against that prefix alone
    (find_package(mk8s-sdk)). Returns (path of example.so, the mk8s-sdk_DIR line of its cache)."""
    prefix = os.path.join(root, "sdk")
    build = os.path.join(root, "example-build")
    subprocess.run(["cmake", "--install", BUILD, "--component", "sdk", "--prefix", prefix],
                   check=True, capture_output=True, text=True)
    # Only the installed prefix: no package registry, and a source tree that has never seen mk8s.
    configure = subprocess.run(
        ["cmake", "-S", os.path.join(SOURCE, "tests", "addons", "example"), "-B", build,
         "-G", "Ninja", f"-DCMAKE_PREFIX_PATH={prefix}",
         "-DCMAKE_FIND_PACKAGE_NO_PACKAGE_REGISTRY=ON", "-DCMAKE_BUILD_TYPE=RelWithDebInfo"],
        capture_output=True, text=True)
    if configure.returncode != 0:
        raise AssertionError(f"configuring the example failed:\n{configure.stdout}{configure.stderr}")
    built = subprocess.run(["cmake", "--build", build], capture_output=True, text=True)
    if built.returncode != 0:
        raise AssertionError(f"building the example failed:\n{built.stdout}{built.stderr}")
    with open(os.path.join(build, "CMakeCache.txt")) as cache:
        sdk_dir = [line for line in cache if line.startswith("mk8s-sdk_DIR")][0]
    return os.path.join(build, "example.so"), sdk_dir


class SdkExampleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = short_temp_dir("mk8s-addon-")
        example, cls.sdk_dir = build_example(cls.root)
        cls.daemon = Daemon(os.path.join(cls.root, "d"), [example])
        cls.daemon.start()

    @classmethod
    def tearDownClass(cls):
        cls.daemon.stop()
        shutil.rmtree(cls.root, ignore_errors=True)

    def configmap(self, jsonpath="{.data.message}"):
        result = self.daemon.kubectl("get", "configmap", "mk8s-example", "-n", "default", "-o",
                                     f"jsonpath={jsonpath}", check=False)
        return result.stdout if result.returncode == 0 else None

    def test_example_built_against_the_installed_sdk_runs_in_mk8sd(self):
        d = self.daemon
        self.assertIn(os.path.join(self.root, "sdk"), self.sdk_dir)
        self.assertIsNotNone(d.addon_line("example", "disabled"))
        self.assertEqual(d.addon_state("example"), "disabled")

        # A wrong argument is rejected before anything changes.
        bad = d.mk8s("enable", "example:message=no{braces}", check=False)
        assert_one_line_error(self, bad, "argument 'message' of addon example must be")
        self.assertIsNone(self.configmap())

        enabled = d.mk8s("enable", "example:message=hi there")
        self.assertIn("Enabling example...", enabled.stdout)
        self.assertIn("Addon example is enabled", enabled.stdout)
        self.assertEqual(self.configmap(), "hi there")
        self.assertEqual(self.configmap("{.data.domain}"), "cluster.local")
        line = d.addon_line("example", "enabled")
        self.assertRegex(line, r"^    example\s+# \(core\) Example out-of-tree addon")
        self.assertEqual(d.addon_state("example"), "enabled")
        status = d.mk8s("status").stdout
        self.assertIn("example: enabled, healthy: message 'hi there' served", status)
        self.assertIn("enabled, healthy", d.mk8s("addons", "list").stdout)
        self.check_http_routes(d)

        # Its watch sees a second labelled ConfigMap.
        d.kubectl("create", "configmap", "watched-too", "-n", "default")
        d.kubectl("label", "configmap", "watched-too", "-n", "default", "mk8s-example=watched")
        wait_for(lambda: "watching 2 labelled" in d.mk8s("status").stdout, "the watch to count 2")

        # Health is the addon's own: it notices its ConfigMap disappearing.
        d.kubectl("delete", "configmap", "mk8s-example", "-n", "default")
        self.assertIn("example: enabled, unhealthy: ConfigMap default/mk8s-example is missing",
                      d.mk8s("status").stdout)

        # Idempotent enable; a restart brings it back (its enable runs again).
        again = d.mk8s("enable", "example:message=hi there")
        self.assertIn("Addon example is already enabled", again.stdout)
        d.stop()
        d.start()
        self.assertEqual(d.addon_state("example"), "enabled")
        wait_for(lambda: self.configmap() == "hi there", "the ConfigMap after restart")
        self.assertIn("example: enabled, healthy", d.mk8s("status").stdout)

        disabled = d.mk8s("disable", "example")
        self.assertIn("Addon example is disabled", disabled.stdout)
        self.assertIsNone(self.configmap())
        self.assertEqual(d.addon_state("example"), "disabled")
        self.assertIn("already disabled", d.mk8s("disable", "example").stdout)
        # Its routes went with it.
        gone = d.kubectl("get", "--raw", "/addons/example/hello", check=False)
        self.assertNotEqual(gone.returncode, 0)
        self.assertIn("NotFound", gone.stderr)

    def check_http_routes(self, d):
        """The addon's HTTP routes (ABI 1.1) on the API server, behind its authentication."""
        hello = json.loads(d.kubectl("get", "--raw", "/addons/example/hello").stdout)
        self.assertEqual(hello["message"], "hi there")
        self.assertEqual(hello["path"], "/hello")
        self.assertTrue(hello["user"])  # the kubeconfig's identity, as the API server saw it
        deeper = json.loads(d.kubectl("get", "--raw", "/addons/example/hello/a/b?x=1").stdout)
        self.assertEqual(deeper["path"], "/hello/a/b")
        # A handler that throws: 500 with its message; no route: 404; the addon keeps serving.
        failed = d.kubectl("get", "--raw", "/addons/example/fail", check=False)
        self.assertNotEqual(failed.returncode, 0)
        self.assertIn("the example fails on purpose", failed.stderr)
        for path in ("/addons/example/nothing", "/addons/example/hellox", "/addons/nobody/hello"):
            missing = d.kubectl("get", "--raw", path, check=False)
            self.assertIn("NotFound", missing.stderr, path)
        self.assertEqual(json.loads(d.kubectl("get", "--raw", "/addons/example/hello").stdout)
                         ["message"], "hi there")
        # Anonymous callers are refused like any API request.
        with open(d.kubeconfig) as config:
            server = next(line.split()[-1].strip("\"'") for line in config if "server:" in line)
        anonymous = subprocess.run(["curl", "-sk", "-o", "/dev/null", "-w", "%{http_code}",
                                    server + "/addons/example/hello"],
                                   capture_output=True, text=True, timeout=30)
        self.assertEqual(anonymous.stdout, "401")


class FixturesTest(unittest.TestCase):
    def setUp(self):
        self.root = short_temp_dir("mk8s-fix-")
        libs = ["fixture_good", "fixture_dependent", "fixture_bad_version", "fixture_throws"]
        self.daemon = Daemon(os.path.join(self.root, "d"),
                             [os.path.join(FIXTURES, name + ".so") for name in libs])
        self.daemon.start()

    def tearDown(self):
        self.daemon.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def test_broken_addons_are_refused_and_the_daemon_keeps_running(self):
        d = self.daemon
        status = d.mk8s("status").stdout
        self.assertIn("mk8s is running", status)
        self.assertIsNotNone(d.addon_line("fixture-bad-version", "disabled"))
        self.assertIn("fixture-bad-version: refused: it was built for ABI version 99.0", status)
        refused = d.mk8s("enable", "fixture-bad-version", check=False)
        assert_one_line_error(self, refused, "addon fixture-bad-version cannot be used")
        thrown = d.mk8s("enable", "fixture-throws", check=False)
        assert_one_line_error(self, thrown, "escape through the C ABI")
        self.assertIn("fixture-throws: failed", d.mk8s("status").stdout)
        self.assertEqual(d.kubectl("get", "ns", "default", "-o", "name").stdout.strip(),
                         "namespace/default")
        unknown = d.mk8s("enable", "nosuch", check=False)
        assert_one_line_error(self, unknown, "unknown addon 'nosuch': 'mk8s addons list'")

    def test_dependencies_first_with_progress_and_arguments_checked_first(self):
        d = self.daemon
        # One bad argument anywhere: nothing is enabled.
        bad = d.mk8s("enable", "fixture-dependent", "fixture-good:count=42", check=False)
        assert_one_line_error(self, bad, "must be an integer from 1 to 10, got '42'")
        self.assertEqual(d.addon_state("fixture-good"), "disabled")
        self.assertEqual(d.addon_state("fixture-dependent"), "disabled")

        out = d.mk8s("enable", "fixture-dependent").stdout.splitlines()
        self.assertEqual(out, ["Enabling fixture-good (needed by fixture-dependent)...",
                               "Addon fixture-good is enabled",
                               "Enabling fixture-dependent...",
                               "Addon fixture-dependent is enabled"])
        blocked = d.mk8s("disable", "fixture-good", check=False)
        assert_one_line_error(self, blocked, "disable fixture-dependent first")
        d.mk8s("disable", "fixture-dependent", "fixture-good")
        self.assertEqual(d.addon_state("fixture-good"), "disabled")
        listing = d.mk8s("addons", "list").stdout
        self.assertIn("count: how many (an integer from 1 to 10, default '1')", listing)
        self.assertIn("needs: fixture-good", listing)

    def test_crash_loop_guard(self):
        d = self.daemon
        d.mk8s("enable", "fixture-good")
        # From now on the fixture aborts the daemon in its mk8s_on_start.
        trigger = os.path.join(d.state, "addon-state", "fixture-good", "crash-on-start")
        open(trigger, "w").close()
        d.stop()
        for death in (1, 2):
            d.start(expect_ready=False)
            code = d.wait_exit()
            self.assertNotEqual(code, 0, f"death {death}: mk8sd should have died starting the addon")
        d.start()  # the third start leaves it disabled and runs
        self.assertEqual(d.addon_state("fixture-good"), "disabled")
        self.assertIn("fixture-good: disabled: left disabled: mk8sd died twice in a row",
                      d.mk8s("status").stdout)
        os.unlink(trigger)
        d.mk8s("enable", "fixture-good")
        self.assertEqual(d.addon_state("fixture-good"), "enabled")


if __name__ == "__main__":
    for name, value in (("MK8S_BIN", MK8S), ("MK8SD_BIN", MK8SD), ("MK8S_BUILD_DIR", BUILD),
                        ("MK8S_SOURCE_DIR", SOURCE), ("MK8S_FIXTURES_DIR", FIXTURES)):
        if not value:
            raise SystemExit(f"{name} is not set: run this test through ctest")
    unittest.main(verbosity=2)
