"""What deb_test.py and install_test.py share: the paths the package installs, and an installed
mk8sd (control plane only, API server on a free loopback port, a temp state folder) whose
installed dns addon the installed mk8s enables and dig queries.

InstalledDaemon is a context manager: entering starts the daemon and an upstream DNS server of
the test's own and waits until `mk8s status` answers; leaving stops both (SIGTERM, then SIGKILL
after 60 s) and prints the daemon's output when it did not exit cleanly. Failures raise
AssertionError with the command's output. Nothing touches the host's network: the control plane
only, loopback addresses, free ports.
"""
import os
import signal
import subprocess
import sys

TESTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, os.path.join(TESTS, "addons", "dns"))
sys.path.insert(0, os.path.join(TESTS, "support"))
from dns_test import DIG, TinyUpstream  # noqa: E402
from mk8s_testlib import free_port, stop_process, wait_for  # noqa: E402

# What the package installs, relative to the root ("./usr/..."); an install prefix <p>/usr holds
# the same below <p>.
DEB_PATHS = (
    "./usr/bin/mk8s",
    "./usr/bin/mk8sd",
    "./usr/lib/systemd/system/mk8sd.service",
    "./usr/share/bash-completion/completions/mk8s",
    "./usr/share/zsh/vendor-completions/_mk8s",
    "./usr/share/fish/vendor_completions.d/mk8s.fish",
    "./usr/lib/mk8s/addons/dns.so",
    "./usr/include/mk8s/abi.h",
    "./usr/include/mk8s/addon.hpp",
    "./usr/lib/cmake/mk8s-sdk/mk8s-sdk-config.cmake",
)
CONTROL_PLANE = ("--components", "apiserver,controllers,scheduler")
KUBERNETES_IP = "10.152.183.1"  # the ClusterIP of default/kubernetes


class InstalledDaemon:
    """`mk8sd_argv` (an installed mk8sd, its state folder `state`) and the installed `mk8s` CLI,
    both run with `env` only (nothing from the build tree). Output goes to <root>/daemon.out."""

    def __init__(self, mk8sd_argv, mk8s, state, root, env):
        self.argv = list(mk8sd_argv)
        self.mk8s_bin = mk8s
        self.state = state
        self.env = env
        self.log_path = os.path.join(root, "daemon.out")
        self.daemon = None
        self.upstream = None
        self.log = None

    def mk8s(self, *args, check=True):
        """Runs the installed `mk8s --state-dir <state> ARGS`; AssertionError on failure when
        `check`."""
        result = subprocess.run([self.mk8s_bin, "--state-dir", self.state, *args],
                                capture_output=True, text=True, env=self.env, timeout=120,
                                stdin=subprocess.DEVNULL)
        if check and result.returncode != 0:
            raise AssertionError(f"mk8s {args} failed:\n{result.stdout}{result.stderr}")
        return result

    def __enter__(self):
        self.upstream = TinyUpstream()
        self.log = open(self.log_path, "w")
        self.daemon = subprocess.Popen(self.argv, stdout=self.log, stderr=subprocess.STDOUT,
                                       env=self.env, stdin=subprocess.DEVNULL)
        try:
            wait_for(lambda: self.mk8s("status", check=False).returncode == 0
                     or self.daemon.poll() is not None, "the installed mk8sd to answer")
            if self.daemon.poll() is not None:
                raise AssertionError(f"the installed mk8sd exited ({self.daemon.returncode})")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def serves_dns(self):
        """Enables the dns addon on a free loopback port (upstream: the test's own server) and
        waits until dig gets kubernetes.default's ClusterIP from it."""
        port = free_port()
        self.mk8s("enable",
                  f"dns:port={port};address=127.0.0.1;upstream=127.0.0.1:{self.upstream.port}")
        status = self.mk8s("status", "-a", "dns").stdout.strip()
        if status != "enabled":
            raise AssertionError(f"dns is {status!r}, not enabled")

        def answer():
            dig = subprocess.run([DIG, "@127.0.0.1", "-p", str(port), "+short", "+time=2",
                                  "+tries=1", "kubernetes.default.svc.cluster.local"],
                                 capture_output=True, text=True, timeout=30)
            return dig.stdout.strip() == KUBERNETES_IP
        wait_for(answer, f"dig kubernetes.default.svc.cluster.local -> {KUBERNETES_IP}")

    def __exit__(self, *exc):
        if self.daemon is not None:
            stop_process(self.daemon, timeout=60)
        if self.log is not None:
            self.log.close()
        if self.upstream is not None:
            self.upstream.stop()
        if self.daemon is not None and self.daemon.returncode not in (0, -signal.SIGTERM):
            with open(self.log_path) as out:
                print(out.read()[-4000:])
