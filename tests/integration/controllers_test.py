#!/usr/bin/env python3
"""The controller manager inside a real mk8sd, observed through the installed kubectl."""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kubectl_test import Cluster, wait_for  # noqa: E402


class ControllersTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Cluster()

    @classmethod
    def tearDownClass(cls):
        cls.c.stop()

    def k(self, *args, **kw):
        return self.c.kubectl(*args, **kw)

    def exists(self, *args):
        return self.k("get", *args, check=False).returncode == 0

    def make_parent_and_child(self, ns, parent, child):
        self.k("-n", ns, "create", "configmap", parent)
        uid = self.k("-n", ns, "get", "cm", parent, "-o", "jsonpath={.metadata.uid}").stdout
        self.k("-n", ns, "create", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": child, "ownerReferences": [
                {"apiVersion": "v1", "kind": "ConfigMap", "name": parent, "uid": uid}]}}))

    def test_new_namespace_gets_default_account_and_root_ca(self):
        self.k("create", "namespace", "fresh")
        wait_for(lambda: self.exists("-n", "fresh", "serviceaccount", "default"), what="default SA")
        wait_for(lambda: self.exists("-n", "fresh", "configmap", "kube-root-ca.crt"), what="root CA")
        ca = self.k("-n", "fresh", "get", "cm", "kube-root-ca.crt", "-o", "jsonpath={.data.ca\\.crt}").stdout
        self.assertIn("BEGIN CERTIFICATE", ca)
        # A deleted default account comes back.
        self.k("-n", "fresh", "delete", "serviceaccount", "default")
        wait_for(lambda: self.exists("-n", "fresh", "serviceaccount", "default"), what="SA recreated")

    def test_background_deletion_collects_dependents(self):
        self.make_parent_and_child("default", "bg-parent", "bg-child")
        self.k("delete", "cm", "bg-parent")
        wait_for(lambda: not self.exists("cm", "bg-child"), what="child collected")

    def test_orphan_deletion_keeps_dependents(self):
        self.make_parent_and_child("default", "or-parent", "or-child")
        self.k("delete", "cm", "or-parent", "--cascade=orphan")
        wait_for(lambda: not self.exists("cm", "or-parent"), what="parent deleted")
        child = json.loads(self.k("get", "cm", "or-child", "-o", "json").stdout)
        self.assertNotIn("ownerReferences", child["metadata"])

    def test_foreground_deletion_waits_for_dependents(self):
        self.make_parent_and_child("default", "fg-parent", "fg-child")
        self.k("delete", "cm", "fg-parent", "--cascade=foreground", "--wait=true", "--timeout=30s")
        self.assertFalse(self.exists("cm", "fg-child"))
        self.assertFalse(self.exists("cm", "fg-parent"))

    def test_namespace_deletion_cascades(self):
        self.k("create", "namespace", "doomed")
        self.k("-n", "doomed", "create", "configmap", "a", "--from-literal=x=y")
        self.k("-n", "doomed", "create", "deployment", "d", "--image=nginx:1.27")
        self.k("-n", "doomed", "create", "secret", "generic", "s", "--from-literal=p=q")
        out = self.k("delete", "namespace", "doomed", "--timeout=30s").stdout
        self.assertIn('namespace "doomed" deleted', out)
        wait_for(lambda: not self.exists("namespace", "doomed"), what="namespace gone")
        status, _, _ = self.c.https("GET", "/api/v1/namespaces/doomed/configmaps/a")
        self.assertEqual(status, 404)
        # Creating into a namespace that no longer exists is a 404.
        result = self.k("-n", "doomed", "create", "configmap", "late", check=False)
        self.assertNotEqual(result.returncode, 0)
        self.assertIn('namespaces "doomed" not found', result.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
