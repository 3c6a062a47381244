#!/usr/bin/python3
"""Shell completion in real shells, with the scripts the build generated (completions/).

bash: bash-completion is loaded, the script sourced, and its function called the way bash calls
it (COMP_WORDS/COMP_CWORD/COMP_LINE set, words split at COMP_WORDBREAKS); COMPREPLY is checked.
zsh: an interactive `zsh -i` on a pseudo-terminal with compinit and the script in $fpath; TAB is
typed and the screen (the completed line, or the listing) is checked. fish: `complete -C`.
Live values (addon names, addon arguments) are checked with the daemon down (the libraries on
disk) and up (a real mk8sd in a temp state folder); `mk8s kubectl` is delegated to kubectl's own
completion. Also: the generated files equal `mk8s completion SHELL` (no drift).

Environment (set by ctest): MK8S_BIN, MK8SD_BIN, MK8S_COMPLETIONS_DIR. Waits have deadlines.
"""

import os
import pty
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from mk8s_testlib import stop_process, wait_for  # noqa: E402  (shared helpers)

# Daemons started here run the control plane only, also when this file is run by hand outside
# ctest: the default components include the kubelet and kube-proxy, which would start containerd,
# pods and iptables rules in the host's network namespace.
os.environ.setdefault("MK8S_COMPONENTS", "apiserver,controllers,scheduler")

MK8S = os.environ.get("MK8S_BIN", "")
MK8SD = os.environ.get("MK8SD_BIN", "")
SCRIPTS = os.environ.get("MK8S_COMPLETIONS_DIR", "")
BASH_COMPLETION = "/usr/share/bash-completion/bash_completion"
DEADLINE = 30


class Zsh:
    """An interactive zsh on a pty, with compinit and _mk8s from `fpath_dir`."""

    def __init__(self, home, fpath_dir, env):
        with open(os.path.join(home, ".zshrc"), "w") as rc:
            rc.write(f"fpath=({fpath_dir} $fpath)\n"
                     f"autoload -Uz compinit && compinit -u -d {home}/.zcompdump\n"
                     "PROMPT='%% '\nunsetopt BEEP\n")
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.execve("/usr/bin/zsh", ["zsh", "-i"], dict(env, ZDOTDIR=home, TERM="dumb"))
        self.count = 0
        self.read_until(lambda out: b"% " in out, "the zsh prompt")

    def read_until(self, done, what, timeout=DEADLINE):
        out, end = b"", time.monotonic() + timeout
        while not done(out):
            if time.monotonic() >= end:
                raise AssertionError(f"zsh: timed out waiting for {what}; screen: {out!r}")
            ready, _, _ = select.select([self.fd], [], [], 0.1)
            if ready:
                out += os.read(self.fd, 65536)
        return out.decode(errors="replace")

    def complete(self, line, expected):
        """Types `line` + TAB and waits until every expected word is on the screen; then clears
        the line and waits for a marker command, so the next case starts on a clean screen."""
        os.write(self.fd, (line + "\t").encode())
        screen = self.read_until(lambda out: all(w.encode() in out for w in expected),
                                 f"{expected} after {line!r}")
        self.count += 1
        marker = f"MARK{self.count}"
        os.write(self.fd, f"\x15print {marker}\r".encode())
        self.read_until(lambda out: re.search(rb"\n" + marker.encode() + rb"\r", out),
                        f"marker {marker}")
        return screen

    def close(self):
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        os.close(self.fd)


class CompletionTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="mk8s-compl-", dir="/tmp")
        cls.state = os.path.join(cls.root, "state")
        bindir = os.path.join(cls.root, "bin")
        os.makedirs(bindir)
        os.symlink(MK8S, os.path.join(bindir, "mk8s"))
        cls.env = dict(os.environ, PATH=bindir + ":" + os.environ["PATH"],
                       MK8S_STATE_DIR=cls.state, HOME=cls.root)
        cls.proc = None

    @classmethod
    def tearDownClass(cls):
        cls.stop_daemon()
        shutil.rmtree(cls.root, ignore_errors=True)

    @classmethod
    def start_daemon(cls):
        cls.log = open(os.path.join(cls.root, "daemon.out"), "w")
        cls.proc = subprocess.Popen(
            [MK8SD, "--state-dir", cls.state, "--apiserver-port", "0",
             "--apiserver-bind-address", "127.0.0.1", "--no-log-stderr"],
            stdout=cls.log, stderr=subprocess.STDOUT)
        wait_for(lambda: subprocess.run([MK8S, "status"], env=cls.env, capture_output=True)
                 .returncode == 0 or cls.proc.poll() is not None, "mk8sd to answer")
        if cls.proc.poll() is not None:
            raise AssertionError(f"mk8sd exited with {cls.proc.returncode}")

    @classmethod
    def stop_daemon(cls):
        if cls.proc is not None and cls.proc.poll() is None:
            stop_process(cls.proc, timeout=60)
            cls.log.close()

    def bash(self, words, line=None):
        """COMPREPLY for COMP_WORDS=`words` (already split as bash would, at COMP_WORDBREAKS),
        cursor at the end of the last; `line` is COMP_LINE (default: the words joined)."""
        def quote(text):
            return "'" + text.replace("'", "'\\''") + "'"
        quoted = " ".join(quote(w) for w in words)
        line = " ".join(words) if line is None else line
        script = (f"source {BASH_COMPLETION}\nsource {SCRIPTS}/mk8s.bash\n"
                  f"COMP_WORDS=({quoted}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))\n"
                  f"COMP_LINE={quote(line)}; COMP_POINT=${{#COMP_LINE}}\n"
                  'fn=$(complete -p mk8s | sed -E "s/.*-F ([^ ]+).*/\\1/")\n'
                  '"$fn" mk8s "${COMP_WORDS[-1]}" "${COMP_WORDS[-2]}"\n'
                  'printf "%s\\n" "${COMPREPLY[@]}"\n')
        result = subprocess.run(["bash", "--norc", "--noprofile", "-c", script], env=self.env,
                                capture_output=True, text=True, timeout=DEADLINE)
        self.assertEqual(result.returncode, 0, result.stderr)
        return [line for line in result.stdout.splitlines() if line]

    def fish(self, line):
        result = subprocess.run(["fish", "--no-config", "-c",
                                 f"source {SCRIPTS}/mk8s.fish; complete -C '{line}'"],
                                env=self.env, capture_output=True, text=True, timeout=DEADLINE)
        self.assertEqual(result.returncode, 0, result.stderr)
        return [row.split("\t")[0] for row in result.stdout.splitlines()]

    def test_1_generated_files_match_the_cli(self):
        for shell, name in (("bash", "mk8s.bash"), ("zsh", "_mk8s"), ("fish", "mk8s.fish")):
            with open(os.path.join(SCRIPTS, name)) as generated:
                printed = subprocess.run([MK8S, "completion", shell], capture_output=True,
                                         text=True, check=True).stdout
                self.assertEqual(generated.read(), printed, f"{name} is stale")

    def test_2_bash_daemon_down(self):
        self.assertEqual(self.bash(["mk8s", "en"]), ["enable"])
        flags = self.bash(["mk8s", "status", "--"])
        for flag in ("--format", "--wait-ready", "--timeout", "--addon", "--state-dir"):
            self.assertIn(flag, flags)
        self.assertEqual(self.bash(["mk8s", "status", "--format", ""]), ["pretty", "short", "yaml"])
        self.assertIn("backup", self.bash(["mk8s", "--state-dir", self.state, "dbctl", ""]))
        self.assertEqual(self.bash(["mk8s", "completion", ""]), ["bash", "zsh", "fish"])
        self.assertNotIn("__complete", self.bash(["mk8s", ""]))
        started = time.monotonic()
        self.assertIn("dns", self.bash(["mk8s", "enable", ""]))  # the libraries on disk
        self.assertLess(time.monotonic() - started, 5, "completion must not wait for a daemon")
        self.assertIn("dns", self.bash(["mk8s", "status", "-a", ""]))
        # kubectl's own completion, through `mk8s __complete kubectl`.
        self.assertEqual(self.bash(["mk8s", "kubectl", "ge"]), ["get"])
        self.assertIn("--all-namespaces", self.bash(["mk8s", "kubectl", "get", "--all-n"]))

    def test_3_zsh_and_fish_daemon_down(self):
        zsh = Zsh(self.root, SCRIPTS, self.env)
        try:
            self.assertIn("mk8s enable ", zsh.complete("mk8s en", ["mk8s enable "]))
            zsh.complete("mk8s status --", ["--format", "--wait-ready", "--state-dir"])
            zsh.complete("mk8s dbctl ", ["backup", "restore", "watch"])
            zsh.complete("mk8s status --format ", ["pretty", "short", "yaml"])
            zsh.complete("mk8s enable ", ["mk8s enable dns "])
            zsh.complete("mk8s kubectl ge", ["mk8s kubectl get "])
        finally:
            zsh.close()
        self.assertEqual(self.fish("mk8s en"), ["enable"])
        self.assertIn("--format", self.fish("mk8s status --"))
        self.assertIn("dns", self.fish("mk8s enable "))
        self.assertIn("get", self.fish("mk8s kubectl ge"))

    def test_4_live_from_the_daemon(self):
        self.start_daemon()
        self.assertIn("dns", self.bash(["mk8s", "enable", ""]))
        # bash splits "dns:po" at ':'; bash-completion joins it back; replies are after the ':'.
        args = self.bash(["mk8s", "enable", "dns", ":", ""], line="mk8s enable dns:")
        for arg in ("port=", "upstream="):
            self.assertIn(arg, args)
        self.assertEqual(self.bash(["mk8s", "disable", ""]), [])  # nothing enabled yet
        zsh = Zsh(self.root, SCRIPTS, self.env)
        try:
            zsh.complete("mk8s enable dns:", ["dns:port=", "dns:upstream="])
        finally:
            zsh.close()
        self.assertIn("dns:port=", self.fish("mk8s enable dns:"))


if __name__ == "__main__":
    unittest.main(verbosity=2)
