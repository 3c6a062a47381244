#!/usr/bin/python3
"""The installed product, not the build tree: `cmake --install` into a temp prefix, then the
INSTALLED mk8sd (temp state folder, API server on a free port) finds the installed dns addon,
the INSTALLED mk8s enables it on free loopback ports, and dig gets kubernetes.default's ClusterIP
from it. The .deb itself (cpack, apt-get install/purge) is deb_test.py's.

Environment (set by ctest): MK8S_BUILD_DIR, MK8S_SOURCE_DIR. Waits poll with deadlines.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

BUILD = os.environ.get("MK8S_BUILD_DIR", "")
SOURCE = os.environ.get("MK8S_SOURCE_DIR", "")
sys.path.insert(0, os.path.join(SOURCE, "tests", "addons", "dns"))
from dns_test import DIG, TinyUpstream, free_port, wait_for  # noqa: E402  (shared helpers)

# Daemons started here run the control plane only, also when this file is run by hand outside
# ctest: the default components include the kubelet and kube-proxy, which would start containerd,
# pods and iptables rules in the host's network namespace.
os.environ.setdefault("MK8S_COMPONENTS", "apiserver,controllers,scheduler")

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


class InstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.root = tempfile.mkdtemp(prefix="mk8s-inst-", dir="/tmp")
        cls.prefix = os.path.join(cls.root, "usr")
        subprocess.run(["cmake", "--install", BUILD, "--prefix", cls.prefix], check=True,
                       capture_output=True, timeout=300)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)

    def test_installed_layout(self):
        for path in DEB_PATHS:
            self.assertTrue(os.path.exists(os.path.join(self.root, path)), path)
        with open(os.path.join(self.prefix, "lib/systemd/system/mk8sd.service")) as unit:
            text = unit.read()
        self.assertIn("KillMode=process", text)
        self.assertIn(f"ExecStart={self.prefix}/bin/mk8sd ", text)

    def test_installed_daemon_serves_dns(self):
        state = os.path.join(self.root, "state")
        mk8s = os.path.join(self.prefix, "bin", "mk8s")
        env = {"PATH": "/usr/bin:/bin", "HOME": self.root}  # nothing from the build tree

        def run(*args, check=True):
            result = subprocess.run([mk8s, "--state-dir", state, *args], capture_output=True,
                                    text=True, env=env, timeout=120, stdin=subprocess.DEVNULL)
            if check and result.returncode != 0:
                raise AssertionError(f"mk8s {args} failed:\n{result.stdout}{result.stderr}")
            return result

        upstream = TinyUpstream()
        log = open(os.path.join(self.root, "daemon.out"), "w")
        daemon = subprocess.Popen(
            [os.path.join(self.prefix, "bin", "mk8sd"), "--state-dir", state,
             "--apiserver-port", "0", "--apiserver-bind-address", "127.0.0.1", "--no-log-stderr",
             # explicit: `env` below carries nothing over, MK8S_COMPONENTS included, and the
             # default components would write kube-proxy rules into the host's namespace
             "--components", os.environ["MK8S_COMPONENTS"]],
            stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            wait_for(lambda: run("status", check=False).returncode == 0
                     or daemon.poll() is not None, "the installed mk8sd to answer")
            self.assertIsNone(daemon.poll(), "mk8sd exited")
            listing = run("addons", "list").stdout
            self.assertIn("dns", listing)
            port = free_port()
            run("enable", f"dns:port={port};address=127.0.0.1;upstream=127.0.0.1:{upstream.port}")
            self.assertEqual(run("status", "-a", "dns").stdout.strip(), "enabled")

            def answer():
                result = subprocess.run(
                    [DIG, "@127.0.0.1", "-p", str(port), "+short", "+time=2", "+tries=1",
                     "kubernetes.default.svc.cluster.local"],
                    capture_output=True, text=True, timeout=30)
                return result.stdout.strip() == "10.152.183.1"
            wait_for(answer, "dig kubernetes.default.svc.cluster.local -> 10.152.183.1")
            run("disable", "dns")
        finally:
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
                try:
                    daemon.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    daemon.kill()
                    daemon.wait()
            log.close()
            upstream.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
