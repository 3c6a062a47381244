#!/usr/bin/env python3
"""The Deployment controller claims ReplicaSets by selector, as upstream's ControllerRefManager,
on a real mk8sd with hollow nodes, driven by the installed kubectl:
`kubectl delete deployment web --cascade=orphan` leaves the ReplicaSet and its pods running
without an owner; the same Deployment created again adopts them (same ReplicaSet, same pods, no
second ReplicaSet); a ReplicaSet relabelled out of the selector is released and the Deployment
makes a new one."""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from controllers_test import ClusterTestCase  # noqa: E402  (also keeps the daemon control-plane only)
from kubectl_test import wait_for  # noqa: E402

NS = "adopt"


def deployment():
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]}}}}


class AdoptionTest(ClusterTestCase):
    CLUSTER_ARGS = ("--hollow-nodes", "2", "--hollow-pod-start-delay-ms", "50")

    def get(self, *what):
        return json.loads(self.k("-n", NS, "get", *what, "-o", "json").stdout)

    def replicasets(self):
        return self.get("replicasets")["items"]

    def running_pods(self):
        """{name: uid} of the Running, not terminating pods labelled app=web."""
        return {p["metadata"]["name"]: p["metadata"]["uid"]
                for p in self.get("pods", "-l", "app=web")["items"]
                if "deletionTimestamp" not in p["metadata"] and p["status"].get("phase") == "Running"}

    @staticmethod
    def owner_uid(obj):
        return next((o["uid"] for o in obj["metadata"].get("ownerReferences", []) if o.get("controller")), None)

    def rollout_status(self):
        out = self.k("-n", NS, "rollout", "status", "deployment/web", "--timeout=60s").stdout
        self.assertIn('deployment "web" successfully rolled out', out)

    def test_orphaned_replicaset_is_adopted_then_released(self):
        self.k("create", "namespace", NS)
        self.k("-n", NS, "apply", "-f", "-", input=json.dumps(deployment()))
        self.k("-n", NS, "wait", "--for=condition=Available", "deployment/web", "--timeout=60s")
        self.rollout_status()
        first_uid = self.get("deployment", "web")["metadata"]["uid"]
        [rs] = self.replicasets()
        rs_name, rs_uid = rs["metadata"]["name"], rs["metadata"]["uid"]
        self.assertEqual(rs["metadata"]["ownerReferences"][0]["uid"], first_uid)
        pods = wait_for(lambda: (lambda p: p if len(p) == 3 else None)(self.running_pods()),
                        what="3 Running pods")

        # Orphaned: the Deployment goes, its ReplicaSet and pods stay, without an owner.
        self.k("-n", NS, "delete", "deployment", "web", "--cascade=orphan", "--wait=true")
        wait_for(lambda: self.k("-n", NS, "get", "deployment", "web", check=False).returncode != 0,
                 what="the Deployment gone")
        orphan = wait_for(lambda: (lambda r: r if not r["metadata"].get("ownerReferences") else None)(
            self.get("rs", rs_name)), what="the ReplicaSet's ownerReference removed")
        self.assertEqual(orphan["metadata"]["uid"], rs_uid)
        self.assertEqual(orphan["spec"]["replicas"], 3)
        self.assertEqual(self.running_pods(), pods)

        # The same Deployment again: the orphan is adopted and is its new ReplicaSet.
        self.k("-n", NS, "apply", "-f", "-", input=json.dumps(deployment()))
        second_uid = self.get("deployment", "web")["metadata"]["uid"]
        self.assertNotEqual(second_uid, first_uid)
        adopted = wait_for(lambda: (lambda r: r if r["metadata"].get("ownerReferences") else None)(
            self.get("rs", rs_name)), what="the orphan adopted")
        [reference] = adopted["metadata"]["ownerReferences"]
        self.assertEqual((reference["kind"], reference["name"], reference["uid"]),
                         ("Deployment", "web", second_uid))
        self.assertTrue(reference["controller"])
        self.assertTrue(reference["blockOwnerDeletion"])
        self.rollout_status()
        [only] = self.replicasets()
        self.assertEqual(only["metadata"]["uid"], rs_uid, "a second ReplicaSet was made")
        web = self.get("deployment", "web")
        self.assertNotIn("collisionCount", web["status"])
        self.assertEqual(web["status"].get("updatedReplicas"), 3)
        self.assertEqual(self.running_pods(), pods, "the adopted ReplicaSet's pods were replaced")

        # Relabelled out of the selector: released (it keeps its pods); the Deployment makes a
        # new ReplicaSet, past the name the released one holds.
        self.k("-n", NS, "label", "rs", rs_name, "app=retired", "--overwrite")
        wait_for(lambda: not self.get("rs", rs_name)["metadata"].get("ownerReferences"),
                 what="the relabelled ReplicaSet released")
        fresh = wait_for(lambda: [r for r in self.replicasets()
                                  if r["metadata"]["uid"] != rs_uid and self.owner_uid(r) == second_uid],
                         what="a new ReplicaSet of web")
        self.assertEqual(len(fresh), 1)
        self.rollout_status()
        self.assertEqual(self.get("deployment", "web")["status"].get("collisionCount"), 1)
        released = self.get("rs", rs_name)
        self.assertEqual(released["spec"]["replicas"], 3)
        new_hash = fresh[0]["metadata"]["labels"]["pod-template-hash"]
        running = wait_for(lambda: (lambda p: p if len(p) == 6 else None)(self.running_pods()),
                           what="3 released and 3 new Running pods")
        self.assertTrue(set(pods.items()) <= set(running.items()))
        new_pods = self.get("pods", "-l", "pod-template-hash=" + new_hash)["items"]
        self.assertEqual(len([p for p in new_pods if "deletionTimestamp" not in p["metadata"]]), 3)


if __name__ == "__main__":
    unittest.main(verbosity=2)
