#!/usr/bin/python3
"""snap/snapcraft.yaml without snapcraft (not packaged for Debian 12): the keys snapcraft
requires, classic confinement, the apps (mk8s with its completer, mk8sd as a daemon), the
stage-packages, and every path an app names exists in the `cmake --install` tree (prefix /usr,
as the snap's cmake part installs it).

Environment (set by ctest): MK8S_BUILD_DIR, MK8S_SOURCE_DIR.
"""

import os
import shutil
import subprocess
import tempfile
import unittest

import yaml

BUILD = os.environ.get("MK8S_BUILD_DIR", "")
SOURCE = os.environ.get("MK8S_SOURCE_DIR", "")
REQUIRED = ("name", "base", "version", "summary", "description", "confinement", "grade", "apps",
            "parts")


class SnapcraftYamlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(os.path.join(SOURCE, "snap", "snapcraft.yaml")) as f:
            cls.snap = yaml.safe_load(f)
        cls.root = tempfile.mkdtemp(prefix="mk8s-snap-")
        subprocess.run(["cmake", "--install", BUILD, "--prefix", os.path.join(cls.root, "usr")],
                       check=True, capture_output=True, timeout=300)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.root, ignore_errors=True)

    def test_required_keys(self):
        for key in REQUIRED:
            self.assertIn(key, self.snap)
        self.assertEqual(self.snap["confinement"], "classic")
        self.assertLessEqual(len(self.snap["summary"]), 78)  # snapcraft's limit
        self.assertRegex(self.snap["name"], r"^[a-z0-9][a-z0-9-]{0,39}$")
        for name, part in self.snap["parts"].items():
            self.assertIn("plugin", part, name)

    def test_apps(self):
        apps = self.snap["apps"]
        self.assertIn("completer", apps["mk8s"])
        self.assertEqual(apps["mk8sd"]["daemon"], "simple")
        self.assertIn("$SNAP_COMMON", apps["mk8sd"]["command"])
        staged = set(self.snap["parts"]["mk8s"]["stage-packages"])
        for package in ("containerd", "runc", "containernetworking-plugins", "iptables"):
            self.assertIn(package, staged)

    def test_paths_exist_in_the_install_tree(self):
        named = []
        for app in self.snap["apps"].values():
            named.append(app["command"].split()[0])
            if "completer" in app:
                named.append(app["completer"])
            for value in app.get("environment", {}).values():
                if value.startswith("$SNAP/") and ":" not in value:
                    named.append(value[len("$SNAP/"):])
        self.assertTrue(named)
        for path in named:
            self.assertTrue(os.path.exists(os.path.join(self.root, path)), path)


if __name__ == "__main__":
    unittest.main(verbosity=2)
