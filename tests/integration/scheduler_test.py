#!/usr/bin/env python3
"""The scheduler and leader election inside real mk8sd processes with hollow nodes, observed
through the installed kubectl: spreading, resource fit with upstream's FailedScheduling message,
extended resources, taints, anti-affinity, PriorityClasses, and a controller-manager/scheduler
takeover."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kubectl_test import MK8SD, Cluster, wait_for  # noqa: E402

# Daemons started here run the control plane only, also when this file is run by hand outside
# ctest: the default components include the kubelet and kube-proxy, which would start containerd,
# pods and iptables rules in the host's network namespace.
os.environ.setdefault("MK8S_COMPONENTS", "apiserver,controllers,scheduler")

HOLLOW = ("--hollow-nodes=3", "--hollow-pod-start-delay-ms=50")


class SchedulerTestCase(unittest.TestCase):
    CLUSTER_ARGS = HOLLOW

    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(extra_args=cls.CLUSTER_ARGS)
        wait_for(lambda: len(cls.nodes()) == 3, what="3 hollow nodes")

    @classmethod
    def tearDownClass(cls):
        cls.c.stop()

    @classmethod
    def nodes(cls):
        return json.loads(cls.c.kubectl("get", "nodes", "-o", "json").stdout)["items"]

    def k(self, *args, **kw):
        return self.c.kubectl(*args, **kw)

    def pods(self, selector):
        out = self.k("get", "pods", "-l", selector, "-o", "json").stdout
        return [p for p in json.loads(out)["items"] if "deletionTimestamp" not in p["metadata"]]

    def running_nodes(self, selector):
        """Node of each Running pod matching the selector."""
        return [p["spec"]["nodeName"] for p in self.pods(selector)
                if p.get("status", {}).get("phase") == "Running"]

    def pod(self, name):
        return json.loads(self.k("get", "pod", name, "-o", "json").stdout)

    def create_pod(self, name, requests=None, limits=None, labels=None, **spec):
        container = {"name": "main", "image": "busybox:1.36"}
        if requests or limits:
            container["resources"] = {k: v for k, v in
                                      (("requests", requests), ("limits", limits)) if v}
        body = {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": name, "labels": labels or {"test": name}},
                "spec": {"containers": [container], **spec}}
        self.k("create", "-f", "-", input=json.dumps(body))

    def wait_running(self, name):
        wait_for(lambda: self.pod(name).get("status", {}).get("phase") == "Running",
                 what=f"pod {name} Running")
        return self.pod(name)["spec"]["nodeName"]

    def wait_unschedulable(self, name):
        """Waits for PodScheduled=False and returns its message."""
        def condition():
            for c in self.pod(name).get("status", {}).get("conditions", []):
                if c["type"] == "PodScheduled" and c["status"] == "False":
                    return c
            return None
        wait_for(lambda: condition() is not None, what=f"pod {name} unschedulable")
        found = condition()
        self.assertEqual(found["reason"], "Unschedulable")
        self.assertEqual(self.pod(name)["status"]["phase"], "Pending")
        self.assertNotIn("nodeName", self.pod(name)["spec"])
        return found["message"]

    def failed_scheduling_events(self, name):
        out = self.k("get", "events", "--field-selector",
                     f"involvedObject.name={name},reason=FailedScheduling", "-o", "json").stdout
        return [e["message"] for e in json.loads(out)["items"]]


class SpreadingTest(SchedulerTestCase):

    def test_deployment_spreads_over_the_nodes_and_scales(self):
        self.k("create", "deployment", "web", "--image=nginx:1.26", "--replicas=3")
        wait_for(lambda: len(self.running_nodes("app=web")) == 3, what="3 running pods")
        self.assertEqual(sorted(self.running_nodes("app=web")),
                         ["hollow-node-0", "hollow-node-1", "hollow-node-2"])
        self.assertIn("Successfully assigned default/", self.k("get", "events", "--field-selector",
                                                               "reason=Scheduled").stdout)
        self.k("scale", "deployment", "web", "--replicas=10")
        wait_for(lambda: len(self.running_nodes("app=web")) == 10, what="10 running pods")
        per_node = {n: self.running_nodes("app=web").count(n) for n in set(self.running_nodes("app=web"))}
        self.assertEqual(len(per_node), 3, per_node)
        self.assertLessEqual(max(per_node.values()) - min(per_node.values()), 2, per_node)
        self.k("scale", "deployment", "web", "--replicas=2")
        wait_for(lambda: len(self.pods("app=web")) == 2, what="2 pods")
        self.k("rollout", "status", "deployment/web", "--timeout=60s")


class ResourceFitTest(SchedulerTestCase):

    def test_a_pod_that_fits_nowhere_waits_with_the_reason_and_runs_when_room_appears(self):
        # Hollow nodes have 4 CPUs: a 3-CPU pod per node leaves 1 CPU free on each.
        placed = set()
        for i in range(3):
            self.create_pod(f"filler-{i}", requests={"cpu": "3"})
            placed.add(self.wait_running(f"filler-{i}"))
        self.assertEqual(len(placed), 3)
        self.create_pod("needs-two", requests={"cpu": "2"})
        message = self.wait_unschedulable("needs-two")
        self.assertTrue(message.startswith("0/3 nodes are available: 3 Insufficient cpu."), message)
        wait_for(lambda: self.failed_scheduling_events("needs-two"), what="FailedScheduling event")
        self.assertIn("3 Insufficient cpu", self.failed_scheduling_events("needs-two")[0])
        self.assertIn("FailedScheduling", self.k("describe", "pod", "needs-two").stdout)
        # Freeing a node is a cluster change: the pending pod is retried and lands there.
        freed = self.pod("filler-1")["spec"]["nodeName"]
        self.k("delete", "pod", "filler-1", "--wait=true")
        self.assertEqual(self.wait_running("needs-two"), freed)

    def test_extended_resources_place_a_gpu_pod_only_on_the_node_that_has_one(self):
        self.k("patch", "node", "hollow-node-2", "--subresource=status", "--type=merge", "-p",
               json.dumps({"status": {"capacity": {"nvidia.com/gpu": "1"},
                                      "allocatable": {"nvidia.com/gpu": "1"}}}))
        self.create_pod("gpu-1", limits={"nvidia.com/gpu": "1"})
        self.assertEqual(self.wait_running("gpu-1"), "hollow-node-2")
        self.create_pod("gpu-2", limits={"nvidia.com/gpu": "1"})
        message = self.wait_unschedulable("gpu-2")
        self.assertIn("3 Insufficient nvidia.com/gpu", message)


class TaintsTest(SchedulerTestCase):

    def test_untolerated_taints_keep_pods_off_and_tolerations_let_them_on(self):
        for node in ("hollow-node-0", "hollow-node-1"):
            self.k("taint", "nodes", node, "dedicated=db:NoSchedule")
        for i in range(4):
            self.create_pod(f"plain-{i}", labels={"test": "plain"})
        wait_for(lambda: len(self.running_nodes("test=plain")) == 4, what="4 plain pods")
        self.assertEqual(set(self.running_nodes("test=plain")), {"hollow-node-2"})
        self.k("taint", "nodes", "hollow-node-2", "dedicated=db:NoSchedule")
        self.create_pod("stuck")
        message = self.wait_unschedulable("stuck")
        self.assertIn("3 node(s) had untolerated taint {dedicated: db}", message)
        self.create_pod("tolerant", tolerations=[{"key": "dedicated", "operator": "Equal",
                                                  "value": "db", "effect": "NoSchedule"}])
        self.wait_running("tolerant")
        # Removing the taint is a cluster change: the stuck pod runs.
        self.k("taint", "nodes", "hollow-node-0", "dedicated=db:NoSchedule-")
        self.assertEqual(self.wait_running("stuck"), "hollow-node-0")


class AffinityTest(SchedulerTestCase):

    def test_required_anti_affinity_puts_one_replica_per_node(self):
        deployment = {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "spread"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "spread"}},
                     "template": {
                         "metadata": {"labels": {"app": "spread"}},
                         "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}],
                                  "affinity": {"podAntiAffinity": {
                                      "requiredDuringSchedulingIgnoredDuringExecution": [{
                                          "labelSelector": {"matchLabels": {"app": "spread"}},
                                          "topologyKey": "kubernetes.io/hostname"}]}}}}}}
        self.k("create", "-f", "-", input=json.dumps(deployment))
        wait_for(lambda: len(self.running_nodes("app=spread")) == 3, what="3 spread pods")
        self.assertEqual(len(set(self.running_nodes("app=spread"))), 3)
        self.k("scale", "deployment", "spread", "--replicas=4")
        wait_for(lambda: len(self.pods("app=spread")) == 4, what="a 4th pod")
        pending = [p["metadata"]["name"] for p in self.pods("app=spread") if "nodeName" not in p["spec"]]
        self.assertEqual(len(pending), 1)
        message = self.wait_unschedulable(pending[0])
        self.assertIn("3 node(s) didn't match pod anti-affinity rules", message)

    def test_a_pod_waiting_for_a_peer_is_placed_when_the_peer_is(self):
        # Required pod affinity: no pod matches yet, so it fits nowhere; placing the peer is the
        # cluster change that lets it fit (no 5-minute wait for the unschedulable timeout).
        affinity = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
            "labelSelector": {"matchLabels": {"role": "peer"}},
            "topologyKey": "kubernetes.io/hostname"}]}}
        self.create_pod("follower", affinity=affinity)
        message = self.wait_unschedulable("follower")
        self.assertIn("didn't match pod affinity rules", message)
        self.create_pod("peer", labels={"role": "peer"})
        peer_node = self.wait_running("peer")
        self.assertEqual(self.wait_running("follower"), peer_node)

    def test_a_namespace_label_lets_a_waiting_pod_see_its_peer(self):
        # The peer runs in a namespace the follower's term selects by label, once it has it.
        self.k("create", "namespace", "peers")
        peer = {"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "ns-peer", "namespace": "peers", "labels": {"role": "ns-peer"}},
                "spec": {"containers": [{"name": "main", "image": "busybox:1.36"}]}}
        self.k("create", "-f", "-", input=json.dumps(peer))
        wait_for(lambda: json.loads(self.k("get", "pod", "ns-peer", "-n", "peers", "-o", "json").stdout)
                 .get("status", {}).get("phase") == "Running", what="ns-peer Running")
        affinity = {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
            "labelSelector": {"matchLabels": {"role": "ns-peer"}},
            "namespaceSelector": {"matchLabels": {"team": "blue"}},
            "topologyKey": "kubernetes.io/hostname"}]}}
        self.create_pod("ns-follower", affinity=affinity)
        self.assertIn("didn't match pod affinity rules", self.wait_unschedulable("ns-follower"))
        self.k("label", "namespace", "peers", "team=blue")
        peer_node = json.loads(self.k("get", "pod", "ns-peer", "-n", "peers", "-o", "json").stdout)["spec"]["nodeName"]
        self.assertEqual(self.wait_running("ns-follower"), peer_node)


class PriorityTest(SchedulerTestCase):
    """PriorityClasses through kubectl: the built-ins, user classes and their rules, and a pod's
    priority from its class (the queue's order by priority is unit-tested in queue_test.cc)."""

    def classes(self):
        out = self.k("get", "priorityclasses", "-o", "json").stdout
        return {c["metadata"]["name"]: c for c in json.loads(out)["items"]}

    def test_classes_and_pod_priority(self):
        builtins = self.classes()
        self.assertEqual(builtins["system-cluster-critical"]["value"], 2000000000)
        self.assertEqual(builtins["system-node-critical"]["value"], 2000001000)
        self.assertIn("PREEMPTIONPOLICY", self.k("get", "pc").stdout)
        self.k("create", "priorityclass", "gold", "--value=1000", "--description=important")
        self.assertEqual(self.classes()["gold"]["preemptionPolicy"], "PreemptLowerPriority")

        refused = self.k("create", "priorityclass", "platinum", "--value=2000000000", check=False)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("maximum allowed value of a user defined priority is 1000000000", refused.stderr)
        refused = self.k("delete", "pc", "system-cluster-critical", check=False)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("this is a system priority class and cannot be deleted", refused.stderr)
        self.assertIn("system-cluster-critical", self.classes())
        refused = self.k("patch", "pc", "gold", "--type=merge", "-p", '{"value": 5}', check=False)
        self.assertIn("may not be changed in an update", refused.stderr)

        self.create_pod("golden", priorityClassName="gold")
        self.assertEqual(self.pod("golden")["spec"]["priority"], 1000)
        self.create_pod("critical", priorityClassName="system-node-critical")
        self.assertEqual(self.pod("critical")["spec"]["priority"], 2000001000)
        with self.assertRaises(AssertionError) as refused_pod:
            self.create_pod("unknown", priorityClassName="nonexistent")
        self.assertIn("no PriorityClass with name nonexistent was found", str(refused_pod.exception))
        with self.assertRaises(AssertionError) as forged:
            self.create_pod("forged", priority=2000000000)
        self.assertIn("must not be provided in pod spec", str(forged.exception))

    def events(self, name, reason):
        out = self.k("get", "events", "--field-selector",
                     f"involvedObject.name={name},reason={reason}", "-o", "json").stdout
        return [e["message"] for e in json.loads(out)["items"]]

    def test_a_more_important_pod_preempts_the_least_it_needs(self):
        self.k("create", "priorityclass", "batch-low", "--value=10")
        self.k("create", "priorityclass", "urgent-high", "--value=100000")
        self.k("create", "priorityclass", "polite-high", "--value=100000",
               "--preemption-policy=Never")
        # Hollow nodes have 4 CPUs: a 3-CPU low-priority pod per node leaves 1 CPU on each.
        victims = {}
        for i in range(3):
            self.create_pod(f"batch-{i}", requests={"cpu": "3"}, labels={"test": "batch"},
                            priorityClassName="batch-low")
            victims[self.wait_running(f"batch-{i}")] = f"batch-{i}"
        self.assertEqual(len(victims), 3)

        # preemptionPolicy Never: it waits, and says why preemption was not tried.
        self.create_pod("polite", requests={"cpu": "2"}, priorityClassName="polite-high")
        message = self.wait_unschedulable("polite")
        self.assertEqual(message, "0/3 nodes are available: 3 Insufficient cpu. preemption: not "
                                  "eligible due to preemptionPolicy=Never.")
        self.k("delete", "pod", "polite", "--wait=true")
        self.assertEqual(len(self.running_nodes("test=batch")), 3)

        # A pod of the victims' own priority cannot preempt them: it waits, and a nomination it
        # holds (written by hand here) is the next preemptor's to take on that node (upstream
        # clears lower-priority nominations there).
        target = sorted(victims)[0]
        self.create_pod("waiter", requests={"cpu": "3"}, priorityClassName="batch-low")
        self.assertIn("No preemption victims found", self.wait_unschedulable("waiter"))
        self.k("patch", "pod", "waiter", "--subresource=status", "--type=merge", "-p",
               json.dumps({"status": {"nominatedNodeName": target}}))
        self.assertEqual(self.pod("waiter")["status"]["nominatedNodeName"], target)

        # A 2-CPU pod of higher priority: exactly one low-priority pod is evicted for it.
        self.create_pod("urgent", requests={"cpu": "2"}, priorityClassName="urgent-high",
                        nodeSelector={"kubernetes.io/hostname": target})
        node = self.wait_running("urgent")
        self.assertEqual(node, target)
        victim = victims[node]
        wait_for(lambda: "nominatedNodeName" not in self.pod("waiter")["status"],
                 what="the waiter's nomination cleared")
        self.assertEqual(self.pod("waiter")["status"]["phase"], "Pending")  # 2 CPUs free at most
        wait_for(lambda: len(self.pods("test=batch")) == 2, what="one victim gone")
        self.assertEqual(sorted(p["metadata"]["name"] for p in self.pods("test=batch")),
                         sorted(v for v in victims.values() if v != victim))
        uid = self.pod("urgent")["metadata"]["uid"]
        wait_for(lambda: self.events(victim, "Preempted"), what="Preempted event")
        self.assertEqual(self.events(victim, "Preempted"),
                         [f"Preempted by pod {uid} on node {node}"])
        self.assertIn("0/3 nodes are available: 1 Insufficient cpu, 2 node(s) didn't match "
                      "Pod's node affinity/selector.",
                      self.events("urgent", "FailedScheduling")[0])
        # The ReplicaSet-less victim is gone for good; the survivors keep running.
        self.assertEqual(len(self.running_nodes("test=batch")), 2)


class LeaderElectionTest(unittest.TestCase):
    """An API-server-only daemon, and two processes running the controller manager and the
    scheduler against it over HTTPS: exactly one leads each; when the leader is killed the
    other takes over within the lease duration and nothing is created twice."""

    LEASE = 4.0

    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(extra_args=("--components=apiserver", *HOLLOW))
        cls.candidates = []
        for i in range(2):
            cls.candidates.append(cls.start_candidate(f"candidate-{i}"))

    @classmethod
    def start_candidate(cls, identity):
        state = tempfile.mkdtemp(prefix=f"mk8s-{identity}-")
        log = open(os.path.join(state, "out.log"), "w")
        proc = subprocess.Popen(
            [MK8SD, "--state-dir", state, "--components=controllers,scheduler",
             "--kubeconfig", cls.c.kubeconfig, "--no-log-stderr",
             f"--leader-elect-identity={identity}",
             f"--leader-elect-lease-duration={cls.LEASE}s",
             "--leader-elect-renew-deadline=3s", "--leader-elect-retry-period=500ms"],
            stdout=log, stderr=subprocess.STDOUT)
        return {"identity": identity, "proc": proc, "state": state, "log": log}

    @classmethod
    def tearDownClass(cls):
        for candidate in cls.candidates:
            if candidate["proc"].poll() is None:
                candidate["proc"].send_signal(signal.SIGTERM)
                candidate["proc"].wait(timeout=30)
            candidate["log"].close()
            shutil.rmtree(candidate["state"], ignore_errors=True)
        cls.c.stop()

    @staticmethod
    def log_of(candidate):
        with open(os.path.join(candidate["state"], "logs", "mk8sd.log")) as f:
            return f.read()

    def k(self, *args, **kw):
        return self.c.kubectl(*args, **kw)

    def holder(self, lease):
        result = self.k("-n", "kube-system", "get", "lease", lease, "-o",
                        "jsonpath={.spec.holderIdentity}", check=False)
        return result.stdout if result.returncode == 0 else ""

    def running(self, selector):
        out = json.loads(self.k("get", "pods", "-l", selector, "-o", "json").stdout)["items"]
        return [p for p in out if p.get("status", {}).get("phase") == "Running"
                and "deletionTimestamp" not in p["metadata"]]

    def created_events(self):
        out = self.k("get", "events", "--field-selector",
                     "involvedObject.kind=ReplicaSet,reason=SuccessfulCreate", "-o", "json").stdout
        return json.loads(out)["items"]

    def test_one_leader_then_takeover_without_duplicates(self):
        identities = {c["identity"] for c in self.candidates}
        wait_for(lambda: self.holder("kube-controller-manager") in identities, what="a controller-manager leader")
        wait_for(lambda: self.holder("kube-scheduler") in identities, what="a scheduler leader")
        leader = self.holder("kube-controller-manager")
        # Only the leader's log says it leads the controller manager.
        leading = [c["identity"] for c in self.candidates
                   if "kube-controller-manager: " + c["identity"] + " is the leader"
                   in self.log_of(c)]
        self.assertEqual(leading, [leader])

        self.k("create", "deployment", "ha", "--image=nginx:1.26", "--replicas=4")
        wait_for(lambda: len(self.running("app=ha")) == 4, what="4 running pods")

        victim = next(c for c in self.candidates if c["identity"] == leader)
        survivor = next(c for c in self.candidates if c["identity"] != leader)
        victim["proc"].send_signal(signal.SIGKILL)
        victim["proc"].wait(timeout=10)
        killed_at = time.monotonic()
        wait_for(lambda: self.holder("kube-controller-manager") == survivor["identity"],
                 timeout=60, what="takeover of kube-controller-manager")
        wait_for(lambda: self.holder("kube-scheduler") == survivor["identity"],
                 timeout=60, what="takeover of kube-scheduler")
        took = time.monotonic() - killed_at
        # The standby waits one lease duration after its last sight of a renewal, plus its
        # retry period; allow generous slack for a loaded machine.
        self.assertLess(took, self.LEASE + 10, f"takeover took {took:.1f} s")

        self.k("scale", "deployment", "ha", "--replicas=6")
        wait_for(lambda: len(self.running("app=ha")) == 6, what="6 running pods after takeover")
        all_pods = json.loads(self.k("get", "pods", "-l", "app=ha", "-o", "json").stdout)["items"]
        self.assertEqual(len(all_pods), 6)
        creates = sum(e.get("count", 1) for e in self.created_events())
        self.assertEqual(creates, 6, "each pod was created exactly once")


if __name__ == "__main__":
    unittest.main(verbosity=2)
