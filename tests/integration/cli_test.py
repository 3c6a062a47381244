#!/usr/bin/python3
"""Integration tests of the `mk8s` CLI against a real `mk8sd`.

Environment: MK8S_BIN and MK8SD_BIN point at the built binaries (ctest sets both). Every test class
uses its own temporary state folder, so several runs can go side by side. Nothing sleeps blindly:
every wait polls a condition with a deadline. Daemons are always torn down (mk8s stop, then
kill -9 as a fallback).
"""

import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import tempfile
import time
import unittest

# Daemons started here run the control plane only, also when this file is run by hand outside
# ctest: the default components include the kubelet and kube-proxy, which would start containerd,
# pods and iptables rules in the host's network namespace.
os.environ.setdefault("MK8S_COMPONENTS", "apiserver,controllers,scheduler")

try:
    import yaml  # python3-yaml; the yaml checks are skipped without it
except ImportError:  # pragma: no cover
    yaml = None

MK8S = os.environ.get("MK8S_BIN", "")
MK8SD = os.environ.get("MK8SD_BIN", "")
NOT_RUNNING = "mk8s is not running"


def make_temp_dir(prefix):
    """A fresh folder with a short path (unix socket paths are limited to 107 bytes)."""
    base = tempfile.gettempdir()
    if len(base) > 40:
        base = "/tmp"
    return tempfile.mkdtemp(prefix=prefix, dir=base)


def cli_env(extra=None):
    env = dict(os.environ)
    env.pop("MK8S_STATE_DIR", None)
    env.pop("SNAP_COMMON", None)
    env["MK8SD_BIN"] = MK8SD
    if extra:
        env.update(extra)
    return env


def mk8s(state_dir, *args, timeout=120, env=None, stdin=subprocess.DEVNULL):
    """Runs `mk8s --state-dir STATE ARGS...` and returns the CompletedProcess (text mode)."""
    return subprocess.run([MK8S, "--state-dir", state_dir, *args], stdin=stdin,
                          capture_output=True, text=True, timeout=timeout, env=env or cli_env())


def read_pid(state_dir):
    try:
        with open(os.path.join(state_dir, "mk8sd.pid")) as pid_file:
            return int(pid_file.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def process_alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat_file:
            state = stat_file.read().rsplit(")", 1)[1].split()[0]
        return state not in ("Z", "X")
    except (OSError, IndexError):
        return False


def stop_daemon(state_dir):
    """Stops the daemon of `state_dir` however it can: mk8s stop, then SIGKILL."""
    pid = read_pid(state_dir)
    try:
        mk8s(state_dir, "stop", "--timeout", "20", timeout=30)
    except subprocess.TimeoutExpired:
        pass
    if pid and process_alive(pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class CliTestCase(unittest.TestCase):
    """Gives each test class a fresh state folder; subclasses may start a daemon in it."""

    start_daemon = False

    @classmethod
    def setUpClass(cls):
        if not (MK8S and os.access(MK8S, os.X_OK)):
            raise unittest.SkipTest("MK8S_BIN does not name the built mk8s")
        cls.tmp = make_temp_dir("mk8s-cli-")
        cls.state = os.path.join(cls.tmp, "state")
        if cls.start_daemon:
            if not (MK8SD and os.access(MK8SD, os.X_OK)):
                shutil.rmtree(cls.tmp, ignore_errors=True)
                raise unittest.SkipTest("MK8SD_BIN does not name the built mk8sd")
            result = mk8s(cls.state, "start", "--wait-ready", "--timeout", "60", timeout=90)
            if result.returncode != 0:
                stop_daemon(cls.state)
                raise AssertionError(f"mk8s start failed: {result.stdout}{result.stderr}")

    @classmethod
    def tearDownClass(cls):
        stop_daemon(cls.state)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def run_cli(self, *args, **kwargs):
        return mk8s(self.state, *args, **kwargs)

    def assert_ok(self, result):
        self.assertEqual(result.returncode, 0,
                         f"exit {result.returncode}: {result.stdout!r} {result.stderr!r}")
        return result.stdout

    def assert_one_line_error(self, result, contains=None, code=None):
        """Fails unless the command failed with exactly one line on stderr (and no traceback)."""
        self.assertNotEqual(result.returncode, 0, result.stdout)
        if code is not None:
            self.assertEqual(result.returncode, code)
        lines = result.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, f"stderr is not one line: {result.stderr!r}")
        if contains:
            self.assertIn(contains, lines[0])
        return lines[0]


class WithoutDaemonTest(CliTestCase):
    """Error paths that need no daemon."""

    def test_status_when_down(self):
        line = self.assert_one_line_error(self.run_cli("status"), NOT_RUNNING, code=1)
        self.assertIn("start", line)
        self.assert_one_line_error(self.run_cli("status", "--format", "yaml"), NOT_RUNNING)

    def test_stale_socket_means_not_running(self):
        state = os.path.join(self.tmp, "stale-state")
        os.makedirs(state)
        stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        stale.bind(os.path.join(state, "mk8sd.sock"))  # bound, never listening: refuses connects
        try:
            started = time.monotonic()
            self.assert_one_line_error(mk8s(state, "status"), NOT_RUNNING, code=1)
            self.assertLess(time.monotonic() - started, 10)
        finally:
            stale.close()

    def test_state_dir_after_subcommand(self):
        result = subprocess.run([MK8S, "status", "--state-dir", self.state], capture_output=True,
                                text=True, timeout=30, env=cli_env())
        self.assert_one_line_error(result, self.state, code=1)

    def test_commands_needing_the_daemon(self):
        for args in (["config"], ["dbctl", "get", "/a"], ["dbctl", "ls"],
                     ["dbctl", "backup", os.path.join(self.tmp, "b.db")]):
            with self.subTest(args=args):
                self.assert_one_line_error(self.run_cli(*args), NOT_RUNNING, code=1)

    def test_stop_and_version_when_down(self):
        self.assertIn("not running", self.assert_ok(self.run_cli("stop")))
        out = self.assert_ok(self.run_cli("version"))
        self.assertIn("mk8s (client)", out)
        self.assertIn("not running", out)

    def test_unknown_command_and_flags(self):
        self.assert_one_line_error(self.run_cli("frobnicate"), "unknown command 'frobnicate'", 2)
        line = self.assert_one_line_error(self.run_cli("status", "--bogus"), "--bogus", code=2)
        self.assertIn("--help", line)
        self.assert_one_line_error(self.run_cli("status", "--format", "xml"), "xml", code=2)
        self.assert_one_line_error(self.run_cli("dbctl"), "dbctl", code=2)
        self.assert_one_line_error(self.run_cli("dbctl", "put", "/only-key"), "value", code=2)
        self.assert_one_line_error(self.run_cli("start", "--timeout", "soon"), "timeout", code=2)

    def test_help(self):
        out = self.assert_ok(self.run_cli("--help"))
        for command in ("start", "stop", "status", "reset", "kubectl", "dbctl", "inspect"):
            self.assertIn(command, out)

    def test_kubectl_without_kubeconfig(self):
        self.assert_one_line_error(self.run_cli("kubectl", "get", "pods"),
                                   "API server is not available", code=1)

    def test_kubectl_passes_arguments_and_exit_code_through(self):
        state = os.path.join(self.tmp, "kubectl-state")
        kubeconfig = os.path.join(state, "credentials", "client.config")
        os.makedirs(os.path.dirname(kubeconfig))
        with open(kubeconfig, "w") as file:
            file.write("apiVersion: v1\nkind: Config\n")
        bin_dir = os.path.join(self.tmp, "fake-bin")
        os.makedirs(bin_dir)
        args_file = os.path.join(self.tmp, "kubectl-args")
        fake = os.path.join(bin_dir, "kubectl")
        with open(fake, "w") as file:
            file.write(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > '{args_file}'\nexit 7\n")
        os.chmod(fake, 0o755)
        env = cli_env({"PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")})
        passed = ["get", "pods", "-o", "yaml", "--all-namespaces", "--help", "--", "x y"]
        result = mk8s(state, "kubectl", *passed, env=env)
        self.assertEqual(result.returncode, 7, result.stderr)
        with open(args_file) as file:
            self.assertEqual(file.read().splitlines(), [f"--kubeconfig={kubeconfig}", *passed])

    def test_reset_refuses_without_tty(self):
        os.makedirs(self.state, exist_ok=True)
        marker = os.path.join(self.state, "keep-me")
        open(marker, "w").close()
        self.assert_one_line_error(self.run_cli("reset"), "--yes", code=1)
        self.assertTrue(os.path.exists(marker))

    def test_start_reports_early_daemon_exit(self):
        fake = os.path.join(self.tmp, "failing-mk8sd")
        with open(fake, "w") as file:
            file.write("#!/bin/sh\necho 'mk8sd: state folder is broken' >&2\nexit 3\n")
        os.chmod(fake, 0o755)
        state = os.path.join(self.tmp, "failing-state")
        result = mk8s(state, "start", "--timeout", "30", env=cli_env({"MK8SD_BIN": fake}))
        self.assertEqual(result.returncode, 1)
        first = result.stderr.splitlines()[0]
        self.assertIn("exit code 3", first)
        self.assertIn("state folder is broken", first)

    def test_inspect_when_down(self):
        out_file = os.path.join(self.tmp, "down.tar.gz")
        self.assertIn(out_file, self.assert_ok(self.run_cli("inspect", "--output", out_file)))
        with tarfile.open(out_file) as tar:
            status = [m for m in tar.getmembers() if m.name.endswith("/status.yaml")]
            self.assertEqual(len(status), 1)
            self.assertIn(b"running: false", tar.extractfile(status[0]).read())


class RunningDaemonTest(CliTestCase):
    """One daemon for the class, started with `mk8s start --wait-ready`."""

    start_daemon = True

    def put(self, key, value, *flags):
        out = self.assert_ok(self.run_cli("dbctl", "put", key, value, *flags))
        self.assertTrue(out.startswith("OK (revision "), out)
        return int(out.split("revision ")[1].rstrip(")\n"))

    def test_start_again_says_running(self):
        self.assertIn("already running", self.assert_ok(self.run_cli("start")))

    def test_status_pretty(self):
        lines = self.assert_ok(self.run_cli("status")).splitlines()
        self.assertEqual(lines[0], "mk8s is running")
        self.assertEqual(lines[1], "high-availability: no")
        self.assertTrue(lines[2].startswith("  datastore master nodes:"))
        self.assertEqual(lines[3], "  datastore standby nodes: none")
        self.assertEqual(lines[4], "addons:")
        self.assertIn("  enabled:", lines)
        self.assertIn("  disabled:", lines)

    def test_status_short(self):
        lines = self.assert_ok(self.run_cli("status", "--format", "short")).splitlines()
        components = [line for line in lines if line.startswith("component/")]
        self.assertTrue(components, lines)
        for line in components:
            self.assertRegex(line, r"^component/[\w.-]+: ready")

    def test_status_yaml(self):
        out = self.assert_ok(self.run_cli("status", "--format", "yaml", "--wait-ready"))
        if yaml is None:
            self.assertIn("ready: true", out)
            return
        status = yaml.safe_load(out)
        self.assertIs(status["running"], True)
        self.assertIs(status["ready"], True)
        self.assertEqual(os.path.realpath(status["state_dir"]), os.path.realpath(self.state))
        self.assertEqual(status["pid"], read_pid(self.state))
        self.assertGreaterEqual(status["uptime_seconds"], 0)
        self.assertTrue(status["version"])
        self.assertTrue(all(c["ready"] for c in status["components"]), status["components"])
        names = {c["name"] for c in status["components"]}
        self.assertIn("datastore", names)
        self.assertEqual(status["datastore"]["backend"], "sqlite")
        self.assertGreaterEqual(status["datastore"]["revision"], 0)
        self.assertIsInstance(status["addons"], list)

    def test_status_unknown_addon(self):
        self.assert_one_line_error(self.run_cli("status", "-a", "no-such-addon"), "no-such-addon")

    def test_version_shows_daemon(self):
        out = self.assert_ok(self.run_cli("version"))
        self.assertIn("mk8s (client)", out)
        self.assertIn("mk8sd (daemon) ", out)

    def test_config(self):
        result = self.run_cli("config")
        if result.returncode == 0:
            self.assertIn("apiVersion", result.stdout)
        else:  # no Kubernetes API served yet: one clear line
            self.assert_one_line_error(result, "API server is not available", code=1)

    def test_dbctl_put_get_ls_del(self):
        first = self.put("/test/kv/a", "alpha")
        second = self.put("/test/kv/b", "beta")
        self.assertGreater(second, first)
        self.assertEqual(self.assert_ok(self.run_cli("dbctl", "get", "/test/kv/a")), "alpha\n")
        self.assertEqual(self.assert_ok(self.run_cli("dbctl", "ls", "/test/kv/")).splitlines(),
                         ["/test/kv/a", "/test/kv/b"])
        limited = self.run_cli("dbctl", "ls", "/test/kv/", "--limit", "1")
        self.assertEqual(self.assert_ok(limited).splitlines(), ["/test/kv/a"])
        long_lines = self.assert_ok(self.run_cli("dbctl", "ls", "-l", "/test/kv/")).splitlines()
        self.assertEqual(long_lines[0].split("\t"), [str(first), str(first), "5", "/test/kv/a"])
        self.assertIn("Deleted /test/kv/a", self.assert_ok(self.run_cli("dbctl", "del",
                                                                         "/test/kv/a")))
        self.assert_one_line_error(self.run_cli("dbctl", "get", "/test/kv/a"), "not found", 1)
        self.assert_one_line_error(self.run_cli("dbctl", "del", "/test/kv/a"), "not found", 1)

    def test_dbctl_conditional_put(self):
        revision = self.put("/test/cas/k", "v1", "--create-only")
        self.assert_one_line_error(
            self.run_cli("dbctl", "put", "/test/cas/k", "v2", "--create-only"), "already exists")
        self.assert_one_line_error(
            self.run_cli("dbctl", "put", "/test/cas/k", "v2", "--expect-revision",
                         str(revision + 1000)), "/test/cas/k")
        self.put("/test/cas/k", "v3", "--expect-revision", str(revision))
        self.assertEqual(self.assert_ok(self.run_cli("dbctl", "get", "/test/cas/k")), "v3\n")

    def test_dbctl_watch(self):
        start = self.put("/test/watch/before", "0")
        watcher = subprocess.Popen(
            [MK8S, "--state-dir", self.state, "dbctl", "watch", "/test/watch/",
             "--after-revision", str(start - 1)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=cli_env())
        try:
            self.put("/test/watch/after", "1")
            # Raw reads: a buffered readline would hide lines that select() cannot see.
            output = b""
            deadline = time.monotonic() + 30
            while output.count(b"\n") < 2 and time.monotonic() < deadline:
                ready, _, _ = select.select([watcher.stdout], [], [], 0.5)
                if ready:
                    chunk = os.read(watcher.stdout.fileno(), 4096)
                    if not chunk:
                        break
                    output += chunk
            seen = [line.split()[:2] for line in output.decode().splitlines()]
            self.assertEqual(seen, [["PUT", "/test/watch/before"], ["PUT", "/test/watch/after"]])
        finally:
            watcher.terminate()
            watcher.wait(timeout=10)
            watcher.stdout.close()

    def test_backup_restore_roundtrip(self):
        self.put("/test/backup/a", "original")
        backup = os.path.join(self.tmp, "roundtrip.db")
        out = self.assert_ok(self.run_cli("dbctl", "backup", backup))
        self.assertIn("Backed up", out)
        self.assertTrue(os.path.exists(backup))
        self.assert_one_line_error(self.run_cli("dbctl", "backup", backup), "already exists")

        self.put("/test/backup/a", "changed")
        last = self.put("/test/backup/b", "added later")
        out = self.assert_ok(self.run_cli("dbctl", "restore", backup))
        restored_revision = int(out.rsplit("revision ", 1)[1])
        self.assertGreater(restored_revision, last)
        self.assertEqual(self.assert_ok(self.run_cli("dbctl", "get", "/test/backup/a")),
                         "original\n")
        self.assert_one_line_error(self.run_cli("dbctl", "get", "/test/backup/b"), "not found")
        self.assertGreater(self.put("/test/backup/c", "after"), restored_revision)

        # A relative path is resolved against the caller's folder, not the daemon's.
        relative = subprocess.run([MK8S, "--state-dir", self.state, "dbctl", "backup", "rel.db"],
                                  cwd=self.tmp, capture_output=True, text=True, timeout=60,
                                  env=cli_env())
        self.assert_ok(relative)
        self.assertTrue(os.path.exists(os.path.join(self.tmp, "rel.db")))
        self.assert_one_line_error(
            self.run_cli("dbctl", "restore", os.path.join(self.tmp, "missing.db")))

    def test_second_daemon_is_refused(self):
        result = subprocess.run([MK8SD, "--state-dir", self.state], capture_output=True, text=True,
                                timeout=60, stdin=subprocess.DEVNULL)
        self.assert_one_line_error(result, code=1)
        # The running daemon is unaffected.
        self.assert_ok(self.run_cli("status"))

    def test_inspect_tarball(self):
        credentials = os.path.join(self.state, "credentials")
        os.makedirs(credentials, exist_ok=True)
        with open(os.path.join(credentials, "fake-secret.key"), "w") as file:
            file.write("PRIVATE KEY MATERIAL")
        out_file = os.path.join(self.tmp, "inspect.tar.gz")
        out = self.assert_ok(self.run_cli("inspect", "-o", out_file))
        self.assertIn(out_file, out)
        with tarfile.open(out_file) as tar:
            names = tar.getnames()
            basenames = {os.path.basename(name) for name in names}
            self.assertIn("status.yaml", basenames)
            self.assertIn("version.txt", basenames)
            self.assertIn("state-files.txt", basenames)
            self.assertIn("mk8sd.log", basenames)
            self.assertFalse([n for n in names if n.endswith(".key")], names)
            for member in tar.getmembers():
                if member.isfile():
                    self.assertNotIn(b"PRIVATE KEY MATERIAL", tar.extractfile(member).read())
            status = next(m for m in tar.getmembers() if m.name.endswith("/status.yaml"))
            self.assertIn(b"running: true", tar.extractfile(status).read())
        self.assert_one_line_error(self.run_cli("inspect", "-o", out_file), "already exists")


class LifecycleTest(CliTestCase):
    """start, stop, restart with data kept, then reset."""

    def test_lifecycle(self):
        if not (MK8SD and os.access(MK8SD, os.X_OK)):
            self.skipTest("MK8SD_BIN does not name the built mk8sd")
        self.assertIn("Started", self.assert_ok(self.run_cli("start", "--timeout", "60")))
        self.assert_ok(self.run_cli("status", "--wait-ready", "--timeout", "60"))
        pid = read_pid(self.state)
        self.assertTrue(pid and process_alive(pid))
        self.assert_ok(self.run_cli("dbctl", "put", "/lifecycle/kept", "yes"))

        self.assertIn("Stopped", self.assert_ok(self.run_cli("stop")))
        self.assertFalse(process_alive(pid))
        self.assertFalse(os.path.exists(os.path.join(self.state, "mk8sd.sock")))
        self.assert_one_line_error(self.run_cli("status"), NOT_RUNNING, code=1)

        self.assert_ok(self.run_cli("start", "--wait-ready", "--timeout", "60"))
        self.assertEqual(self.assert_ok(self.run_cli("dbctl", "get", "/lifecycle/kept")), "yes\n")

        out = self.assert_ok(self.run_cli("reset", "--yes"))
        self.assertIn("Removed all state", out)
        self.assertEqual(os.listdir(self.state), [])
        self.assert_one_line_error(self.run_cli("status"), NOT_RUNNING, code=1)

        self.assert_ok(self.run_cli("start", "--wait-ready", "--timeout", "60"))
        self.assert_one_line_error(self.run_cli("dbctl", "get", "/lifecycle/kept"), "not found")


if __name__ == "__main__":
    unittest.main(verbosity=2)
