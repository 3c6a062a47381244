#!/usr/bin/env python3
"""status.collisionCount end to end: a Deployment (DaemonSet) whose ReplicaSet (ControllerRevision)
name is already taken by an object that is not its own still rolls out, under the next name, on a
real mk8sd with hollow nodes, observed through the installed kubectl.

The taken name is learnt from a twin in a scratch namespace: the name is <owner>-<hash of the pod
template>, and the namespace is not part of the hash."""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from controllers_test import ClusterTestCase  # noqa: E402  (also keeps the daemon control-plane only)
from kubectl_test import wait_for  # noqa: E402


def deployment(name, image):
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


def daemonset(name, image):
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": image}]}}}}


class CollisionCountTest(ClusterTestCase):
    CLUSTER_ARGS = ("--hollow-nodes", "2", "--hollow-pod-start-delay-ms", "50")

    def get(self, ns, *what):
        return json.loads(self.k("-n", ns, "get", *what, "-o", "json").stdout)

    def owned_by(self, ns, kind_plural, owner_uid):
        return [o for o in self.get(ns, kind_plural)["items"]
                if any(r.get("uid") == owner_uid and r.get("controller")
                       for r in o["metadata"].get("ownerReferences", []))]

    def running_pods(self, ns, selector):
        pods = self.get(ns, "pods", "-l", selector)["items"]
        return [p for p in pods
                if "deletionTimestamp" not in p["metadata"] and p["status"].get("phase") == "Running"]

    def test_schema_serves_collision_count(self):
        for path in ("deployment.status.collisionCount", "daemonset.status.collisionCount"):
            out = self.k("explain", path).stdout
            self.assertRegex(out, r"FIELD:\s+collisionCount\s+<integer>", out)
            self.assertIn("taken by another object", out)

    def test_deployment_takes_the_next_name_past_a_stranger(self):
        self.k("create", "namespace", "dep-probe")
        self.k("create", "namespace", "dep-collide")
        twin = deployment("web", "nginx:1.27")
        self.k("-n", "dep-probe", "apply", "-f", "-", input=json.dumps(twin))
        probe_uid = self.get("dep-probe", "deployment", "web")["metadata"]["uid"]
        sets = wait_for(lambda: self.owned_by("dep-probe", "replicasets", probe_uid),
                        what="the twin's ReplicaSet")
        taken = sets[0]["metadata"]["name"]
        self.assertEqual(taken, "web-" + sets[0]["metadata"]["labels"]["pod-template-hash"])

        # A stranger: no owner, another template, one pod of its own.
        self.k("-n", "dep-collide", "create", "-f", "-", input=json.dumps({
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": taken},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "stranger"}},
                     "template": {"metadata": {"labels": {"app": "stranger"}},
                                  "spec": {"containers": [{"name": "s", "image": "busybox:1.36"}]}}}}))
        planted = self.get("dep-collide", "rs", taken)

        self.k("-n", "dep-collide", "apply", "-f", "-", input=json.dumps(twin))
        out = self.k("-n", "dep-collide", "wait", "--for=condition=Available", "deployment/web",
                     "--timeout=50s").stdout
        self.assertIn("condition met", out)
        out = self.k("-n", "dep-collide", "rollout", "status", "deployment/web", "--timeout=50s").stdout
        self.assertIn('deployment "web" successfully rolled out', out)
        web = self.get("dep-collide", "deployment", "web")
        self.assertEqual(web["status"].get("collisionCount"), 1)
        self.assertEqual(web["status"].get("availableReplicas"), 2)
        ours = self.owned_by("dep-collide", "replicasets", web["metadata"]["uid"])
        self.assertEqual(len(ours), 1)
        name = ours[0]["metadata"]["name"]
        self.assertNotEqual(name, taken)
        new_hash = ours[0]["metadata"]["labels"]["pod-template-hash"]
        self.assertEqual(name, "web-" + new_hash)
        pods = wait_for(lambda: (lambda p: p if len(p) == 2 else None)(
            self.running_pods("dep-collide", "app=web")), what="2 Running pods of web")
        self.assertEqual({p["metadata"]["labels"]["pod-template-hash"] for p in pods}, {new_hash})

        # The stranger is as it was, and still runs its own pod.
        after = self.get("dep-collide", "rs", taken)
        self.assertEqual(after["metadata"]["uid"], planted["metadata"]["uid"])
        self.assertNotIn("ownerReferences", after["metadata"])
        self.assertEqual(after["metadata"]["generation"], planted["metadata"]["generation"])
        self.assertEqual(after["spec"], planted["spec"])
        wait_for(lambda: len(self.running_pods("dep-collide", "app=stranger")) == 1,
                 what="the stranger's pod Running")

        # A later rollout keeps the count: the next template is named past it, no new collision.
        self.k("-n", "dep-collide", "set", "image", "deployment/web", "c=nginx:1.28")
        out = self.k("-n", "dep-collide", "rollout", "status", "deployment/web", "--timeout=50s").stdout
        self.assertIn("successfully rolled out", out)
        self.assertEqual(self.get("dep-collide", "deployment", "web")["status"].get("collisionCount"), 1)
        self.assertEqual(len(self.owned_by("dep-collide", "replicasets", web["metadata"]["uid"])), 2)

    def test_daemonset_takes_the_next_name_past_a_stranger(self):
        self.k("create", "namespace", "ds-probe")
        self.k("create", "namespace", "ds-collide")
        twin = daemonset("agent", "busybox:1.36")
        self.k("-n", "ds-probe", "apply", "-f", "-", input=json.dumps(twin))
        probe_uid = self.get("ds-probe", "daemonset", "agent")["metadata"]["uid"]
        revisions = wait_for(lambda: self.owned_by("ds-probe", "controllerrevisions", probe_uid),
                             what="the twin's ControllerRevision")
        taken = revisions[0]["metadata"]["name"]

        # A stranger: no owner, another template.
        self.k("-n", "ds-collide", "create", "-f", "-", input=json.dumps({
            "apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": taken},
            "data": {"spec": {"template": {"$patch": "replace",
                                           "metadata": {"labels": {"app": "stranger"}},
                                           "spec": {"containers": [{"name": "s", "image": "busybox:1.37"}]}}}},
            "revision": 1}))
        planted = self.get("ds-collide", "controllerrevision", taken)

        self.k("-n", "ds-collide", "apply", "-f", "-", input=json.dumps(twin))
        out = self.k("-n", "ds-collide", "rollout", "status", "daemonset/agent", "--timeout=50s").stdout
        self.assertIn('daemon set "agent" successfully rolled out', out)
        agent = self.get("ds-collide", "daemonset", "agent")
        self.assertEqual(agent["status"].get("collisionCount"), 1)
        ours = self.owned_by("ds-collide", "controllerrevisions", agent["metadata"]["uid"])
        self.assertEqual(len(ours), 1)
        self.assertNotEqual(ours[0]["metadata"]["name"], taken)
        new_hash = ours[0]["metadata"]["labels"]["controller-revision-hash"]
        self.assertEqual(ours[0]["metadata"]["name"], "agent-" + new_hash)
        pods = wait_for(lambda: (lambda p: p if len(p) == 2 else None)(
            self.running_pods("ds-collide", "app=agent")), what="a Running pod per hollow node")
        self.assertEqual(sorted(p["spec"]["nodeName"] for p in pods), ["hollow-node-0", "hollow-node-1"])
        self.assertEqual({p["metadata"]["labels"]["controller-revision-hash"] for p in pods}, {new_hash})
        wait_for(lambda: self.get("ds-collide", "daemonset", "agent")["status"].get("numberAvailable") == 2,
                 what="2 available")
        history = self.k("-n", "ds-collide", "rollout", "history", "daemonset/agent").stdout
        self.assertRegex(history, r"(?m)^1\s")

        # The stranger is as it was.
        after = self.get("ds-collide", "controllerrevision", taken)
        self.assertEqual(after["metadata"]["resourceVersion"], planted["metadata"]["resourceVersion"])
        self.assertNotIn("ownerReferences", after["metadata"])
        self.assertEqual(after["data"], planted["data"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
