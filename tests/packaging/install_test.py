#!/usr/bin/python3
"""The installed product, not the build tree: `cmake --install` into a temp prefix, then the
INSTALLED mk8sd (temp state folder, API server on a free port) finds the installed dns addon,
the INSTALLED mk8s enables it on free loopback ports, and dig gets kubernetes.default's ClusterIP
from it. The .deb itself (cpack, apt-get install/purge) is deb_test.py's.

Environment (set by ctest): MK8S_BUILD_DIR, MK8S_SOURCE_DIR. Waits poll with deadlines.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import unittest

BUILD = os.environ.get("MK8S_BUILD_DIR", "")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from packaging_support import CONTROL_PLANE, DEB_PATHS, InstalledDaemon  # noqa: E402

# Daemons started here run the control plane only, also when this file is run by hand outside
# ctest: the default components include the kubelet and kube-proxy, which would start containerd,
# pods and iptables rules in the host's network namespace.
os.environ.setdefault("MK8S_COMPONENTS", "apiserver,controllers,scheduler")


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
        env = {"PATH": "/usr/bin:/bin", "HOME": self.root}  # nothing from the build tree
        # The control plane only, given on the command line: `env` does not carry
        # MK8S_COMPONENTS, and the kubelet and kube-proxy would touch the host's network.
        argv = [os.path.join(self.prefix, "bin", "mk8sd"), "--state-dir", state,
                "--apiserver-port", "0", "--apiserver-bind-address", "127.0.0.1",
                "--no-log-stderr", *CONTROL_PLANE]
        with InstalledDaemon(argv, os.path.join(self.prefix, "bin", "mk8s"), state, self.root,
                             env) as daemon:
            self.assertIn("dns", daemon.mk8s("addons", "list").stdout)
            daemon.serves_dns()
            daemon.mk8s("disable", "dns")


if __name__ == "__main__":
    unittest.main(verbosity=2)
