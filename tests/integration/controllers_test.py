#!/usr/bin/env python3
"""The controller manager inside a real mk8sd, observed through the installed kubectl."""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kubectl_test import Cluster, wait_for  # noqa: E402

# Daemons started here run the control plane only, also when this file is run by hand outside
# ctest: the default components include the kubelet and kube-proxy, which would start containerd,
# pods and iptables rules in the host's network namespace.
os.environ.setdefault("MK8S_COMPONENTS", "apiserver,controllers,scheduler")


class ClusterTestCase(unittest.TestCase):
    """One mk8sd per test class, started with CLUSTER_ARGS; `k` runs kubectl against it."""
    CLUSTER_ARGS = ()

    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(extra_args=cls.CLUSTER_ARGS)

    @classmethod
    def tearDownClass(cls):
        cls.c.stop()

    def k(self, *args, **kw):
        return self.c.kubectl(*args, **kw)


class ControllersTest(ClusterTestCase):

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

    def test_each_node_gets_a_distinct_pod_cidr(self):
        for name in ("ipam-a", "ipam-b", "ipam-c"):
            self.k("create", "-f", "-", input=json.dumps(
                {"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}))
        def cidrs():
            out = self.k("get", "nodes", "-o", "json").stdout
            return {n["metadata"]["name"]: n["spec"].get("podCIDR") for n in json.loads(out)["items"]}
        wait_for(lambda: all(cidrs().get(n) for n in ("ipam-a", "ipam-b", "ipam-c")), what="pod CIDRs")
        assigned = cidrs()
        values = [assigned[n] for n in ("ipam-a", "ipam-b", "ipam-c")]
        self.assertEqual(len(set(values)), 3)
        for cidr in values:
            self.assertRegex(cidr, r"^10\.1\.\d+\.0/24$")
        # A deleted node's subnet is released and handed to the next node.
        self.k("delete", "node", "ipam-b")
        self.k("create", "-f", "-", input=json.dumps(
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "ipam-d"}}))
        wait_for(lambda: cidrs().get("ipam-d"), what="CIDR for ipam-d")
        self.assertEqual(cidrs()["ipam-d"], assigned["ipam-b"])

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


class WorkloadsTest(ClusterTestCase):
    """Deployments and ReplicaSets. No node runs pods yet, so pods stay Pending and rollouts
    wait on availability exactly as maxUnavailable says."""


    def pods(self, selector):
        out = self.k("get", "pods", "-l", selector, "-o", "json").stdout
        return [p for p in json.loads(out)["items"] if "deletionTimestamp" not in p["metadata"]]

    def replicasets(self, selector):
        return json.loads(self.k("get", "rs", "-l", selector, "-o", "json").stdout)["items"]

    def test_deployment_scale_rollout_undo_and_delete(self):
        self.k("create", "deployment", "web", "--image=nginx:1.26", "--replicas=3")
        wait_for(lambda: len(self.pods("app=web")) == 3, what="3 pods")
        rs = self.replicasets("app=web")
        self.assertEqual(len(rs), 1)
        first = rs[0]["metadata"]["name"]
        self.assertEqual(rs[0]["metadata"]["ownerReferences"][0]["kind"], "Deployment")
        for pod in self.pods("app=web"):
            self.assertEqual(pod["metadata"]["ownerReferences"][0]["name"], first)
            self.assertEqual(pod["status"]["phase"], "Pending")
        self.k("scale", "deployment", "web", "--replicas=5")
        wait_for(lambda: len(self.pods("app=web")) == 5, what="5 pods")
        self.k("scale", "deployment", "web", "--replicas=2")
        wait_for(lambda: len(self.pods("app=web")) == 2, what="2 pods")
        deployment = json.loads(self.k("get", "deploy", "web", "-o", "json").stdout)
        wait_for(lambda: json.loads(self.k("get", "deploy", "web", "-o", "json").stdout)
                 .get("status", {}).get("observedGeneration") == deployment["metadata"]["generation"],
                 what="observedGeneration")
        self.assertIn("SuccessfulCreate", self.k("describe", "rs", first).stdout)
        # A new template: a second ReplicaSet, revision 2.
        self.k("set", "image", "deployment/web", "nginx=nginx:1.27")
        wait_for(lambda: len(self.replicasets("app=web")) == 2, what="second ReplicaSet")
        history = self.k("rollout", "history", "deployment/web").stdout
        self.assertRegex(history, r"(?m)^1\s")
        self.assertRegex(history, r"(?m)^2\s")
        # Undo goes back to the first ReplicaSet, which becomes revision 3.
        self.k("rollout", "undo", "deployment/web")
        def first_is_revision_3():
            for item in self.replicasets("app=web"):
                if item["metadata"]["name"] == first:
                    return item["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"
            return False
        wait_for(first_is_revision_3, what="rollback to the first ReplicaSet")
        image = self.k("get", "deploy", "web", "-o", "jsonpath={.spec.template.spec.containers[0].image}").stdout
        self.assertEqual(image, "nginx:1.26")
        self.assertIn("ScalingReplicaSet", self.k("describe", "deploy", "web").stdout)
        # Deleting the Deployment collects its ReplicaSets and pods.
        self.k("delete", "deployment", "web")
        wait_for(lambda: not self.replicasets("app=web") and not self.pods("app=web"), what="cleanup")

    def test_endpoints_follow_pod_readiness(self):
        self.k("run", "backend", "--image=busybox:1.36", "--labels=app=backend", "--port=8080")
        self.k("expose", "pod", "backend", "--name=backend", "--port=80", "--target-port=8080")
        wait_for(lambda: self.k("get", "endpoints", "backend", check=False).returncode == 0, what="endpoints")
        # No kubelet yet: play its part by writing the pod's IP and readiness into its status.
        def set_ready(ready):
            self.k("patch", "pod", "backend", "--subresource=status", "--type=merge", "-p", json.dumps(
                {"status": {"podIP": "10.1.0.5", "conditions": [{"type": "Ready", "status": ready}]}}))
        set_ready("True")
        wait_for(lambda: "10.1.0.5:8080" in self.k("get", "endpoints", "backend").stdout, what="ready address")
        slice_ = json.loads(self.k("get", "endpointslices", "-l", "kubernetes.io/service-name=backend",
                                   "-o", "json").stdout)["items"][0]
        self.assertEqual(slice_["endpoints"][0]["addresses"], ["10.1.0.5"])
        self.assertTrue(slice_["endpoints"][0]["conditions"]["ready"])
        self.assertEqual(slice_["ports"][0]["port"], 8080)
        set_ready("False")
        def not_ready():
            subsets = json.loads(self.k("get", "endpoints", "backend", "-o", "json").stdout).get("subsets", [])
            return subsets and "addresses" not in subsets[0] and subsets[0]["notReadyAddresses"][0]["ip"] == "10.1.0.5"
        wait_for(not_ready, what="address moved to notReadyAddresses")
        self.k("delete", "service", "backend")
        wait_for(lambda: self.k("get", "endpoints", "backend", check=False).returncode != 0, what="endpoints gone")
        wait_for(lambda: "backend" not in self.k("get", "endpointslices").stdout, what="slices gone")

    def test_replicaset_replaces_deleted_pods_and_adopts_orphans(self):
        self.k("apply", "-f", "-", input=json.dumps({
            "apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "keeper"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "keeper"}},
                     "template": {"metadata": {"labels": {"app": "keeper"}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox:1.36"}]}}}}))
        wait_for(lambda: len(self.pods("app=keeper")) == 2, what="2 pods")
        victim = self.pods("app=keeper")[0]["metadata"]["name"]
        self.k("delete", "pod", victim)
        wait_for(lambda: len(self.pods("app=keeper")) == 2 and
                 victim not in [p["metadata"]["name"] for p in self.pods("app=keeper")], what="replacement")
        # A matching pod without an owner is adopted; one pod too many is then deleted.
        self.k("run", "stray", "--image=busybox:1.36", "--labels=app=keeper")
        def settled():
            pods = self.pods("app=keeper")
            owners = [p["metadata"].get("ownerReferences", [{}])[0].get("name") for p in pods]
            return len(pods) == 2 and owners == ["keeper", "keeper"]
        wait_for(settled, what="adoption and scale-down to 2")
        wait_for(lambda: json.loads(self.k("get", "rs", "keeper", "-o", "json").stdout)
                 .get("status", {}).get("replicas") == 2, what="status.replicas")


class NodeLifecycleTest(ClusterTestCase):
    """A node that stops heartbeating (grace period shortened to 2 s for the test)."""

    CLUSTER_ARGS = ("--node-monitor-grace-period", "2")

    def node(self, name):
        return json.loads(self.k("get", "node", name, "-o", "json").stdout)

    def test_silent_node_turns_unknown_is_tainted_and_its_pods_evicted(self):
        self.k("create", "-f", "-", input=json.dumps(
            {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "lost"}}))
        def tainted():
            node = self.node("lost")
            ready = [c for c in node.get("status", {}).get("conditions", []) if c["type"] == "Ready"]
            effects = {t["effect"] for t in node["spec"].get("taints", [])
                       if t["key"] == "node.kubernetes.io/unreachable"}
            return ready and ready[0]["status"] == "Unknown" and effects == {"NoSchedule", "NoExecute"}
        wait_for(tainted, what="Unknown and tainted")
        self.assertRegex(self.k("get", "node", "lost").stdout, r"lost\s+NotReady")
        def pod(name, toleration):
            spec = {"nodeName": "lost", "containers": [{"name": "c", "image": "busybox:1.36"}],
                    "tolerations": [toleration]}
            self.k("create", "-f", "-", input=json.dumps(
                {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}))
        pod("short", {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                      "effect": "NoExecute", "tolerationSeconds": 1})
        pod("forever", {"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                        "effect": "NoExecute"})
        def marked(name):
            out = self.k("get", "pod", name, "-o", "json", check=False)
            return out.returncode != 0 or "deletionTimestamp" in json.loads(out.stdout)["metadata"]
        wait_for(lambda: marked("short"), what="eviction of the pod tolerating 1 s")
        self.assertFalse(marked("forever"))
        self.assertIn("TaintManagerEviction", self.k("get", "events").stdout)
        # The default toleration every pod gets is 300 s.
        self.k("run", "plain", "--image=busybox:1.36")
        tolerations = json.loads(self.k("get", "pod", "plain", "-o", "json").stdout)["spec"]["tolerations"]
        self.assertIn({"key": "node.kubernetes.io/unreachable", "operator": "Exists",
                       "effect": "NoExecute", "tolerationSeconds": 300}, tolerations)


class HollowNodesTest(ClusterTestCase):
    """Rollouts end to end on hollow nodes (fake kubelets that run pods instantly)."""

    CLUSTER_ARGS = ("--hollow-nodes", "3", "--hollow-pod-start-delay-ms", "50")

    def test_nodes_register_with_leases_and_cidrs(self):
        out = self.k("get", "nodes").stdout
        for i in range(3):
            self.assertRegex(out, rf"hollow-node-{i}\s+Ready")
        wait_for(lambda: len(self.k("get", "leases", "-n", "kube-node-lease", "-o", "name").stdout.split()) == 3,
                 what="3 node leases")
        nodes = json.loads(self.k("get", "nodes", "-o", "json").stdout)["items"]
        wait_for(lambda: all(n["spec"].get("podCIDR") for n in json.loads(
            self.k("get", "nodes", "-o", "json").stdout)["items"]), what="pod CIDRs")
        self.assertEqual(nodes[0]["status"]["allocatable"]["pods"], "110")

    def test_rollout_status_finishes_and_rolling_update_completes(self):
        deployment = {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "roll"},
            "spec": {"replicas": 4, "selector": {"matchLabels": {"app": "roll"}},
                     "template": {"metadata": {"labels": {"app": "roll"}},
                                  "spec": {"nodeName": "hollow-node-1",
                                           "containers": [{"name": "c", "image": "nginx:1.26"}]}}}}
        self.k("apply", "-f", "-", input=json.dumps(deployment))
        out = self.k("rollout", "status", "deployment/roll", "--timeout=60s").stdout
        self.assertIn('deployment "roll" successfully rolled out', out)
        self.assertRegex(self.k("get", "deploy", "roll").stdout, r"roll\s+4/4\s+4\s+4")
        self.k("set", "image", "deployment/roll", "c=nginx:1.27")
        out = self.k("rollout", "status", "deployment/roll", "--timeout=60s").stdout
        self.assertIn("successfully rolled out", out)
        pods = json.loads(self.k("get", "pods", "-l", "app=roll", "-o", "json").stdout)["items"]
        live = [p for p in pods if "deletionTimestamp" not in p["metadata"]]
        wait_for(lambda: len([p for p in json.loads(self.k("get", "pods", "-l", "app=roll", "-o", "json").stdout)["items"]]) == 4,
                 what="old pods finished")
        for pod in live:
            self.assertEqual(pod["status"]["phase"], "Running")
        images = {p["spec"]["containers"][0]["image"] for p in json.loads(
            self.k("get", "pods", "-l", "app=roll", "-o", "json").stdout)["items"]}
        self.assertEqual(images, {"nginx:1.27"})


class PodGcTest(ClusterTestCase):
    """The pod garbage collector on hollow nodes, with the orphan quarantine shortened to 1 s and
    the terminated-pod threshold lowered to 2."""

    CLUSTER_ARGS = ("--hollow-nodes", "2", "--hollow-pod-start-delay-ms", "50",
                    "--pod-gc-quarantine", "1", "--terminated-pod-gc-threshold", "2")

    def pod(self, name, node, annotations=None, restart="Always"):
        self.k("create", "-f", "-", input=json.dumps({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"test": "podgc"},
                         "annotations": annotations or {}},
            "spec": {"nodeName": node, "restartPolicy": restart,
                     "containers": [{"name": "c", "image": "busybox:1.36"}]}}))

    def phases(self, selector):
        return {p["metadata"]["name"]: p.get("status", {}).get("phase") for p in json.loads(
            self.k("get", "pods", "-l", selector, "-o", "json").stdout)["items"]}

    def test_pods_of_a_deleted_node_go_away(self):
        for name, node in (("on-doomed-a", "hollow-node-1"), ("on-doomed-b", "hollow-node-1"),
                           ("on-kept", "hollow-node-0")):
            self.pod(name, node)
        wait_for(lambda: set(self.phases("test=podgc").values()) == {"Running"},
                 what="3 pods Running on hollow nodes")
        self.k("delete", "node", "hollow-node-1")
        wait_for(lambda: list(self.phases("test=podgc")) == ["on-kept"],
                 what="the deleted node's pods force-deleted")
        self.assertEqual(self.phases("test=podgc"), {"on-kept": "Running"})

    def test_terminated_pods_over_the_threshold_are_deleted_oldest_first(self):
        done = {"hollow.mk8s.io/exit-code": "0", "hollow.mk8s.io/run-ms": "50"}
        for name in ("done-1", "done-2", "done-3"):
            self.pod(name, "hollow-node-0", done, restart="Never")
            wait_for(lambda: self.phases("test=podgc").get(name) == "Succeeded",
                     what=f"{name} Succeeded")
        # The GC sweeps every 20 s.
        wait_for(lambda: "done-1" not in self.phases("test=podgc"), timeout=60,
                 what="the oldest terminated pod deleted")
        left = {n: p for n, p in self.phases("test=podgc").items() if n.startswith("done")}
        self.assertEqual(left, {"done-2": "Succeeded", "done-3": "Succeeded"})


class BatchAndDaemonSetTest(ClusterTestCase):
    """Jobs, CronJobs and DaemonSets on hollow nodes. Job pods finish through the hollow runtime's
    knobs (hollow.mk8s.io/exit-code, hollow.mk8s.io/run-ms); schedules firing on time is covered
    by the unit tests on a fake clock (tests/unit/controllers/cronjob_test.cc)."""

    CLUSTER_ARGS = ("--hollow-nodes", "3", "--hollow-pod-start-delay-ms", "50")

    @staticmethod
    def job_spec(exit_code, completions=1, parallelism=1, backoff_limit=6):
        return {"completions": completions, "parallelism": parallelism, "backoffLimit": backoff_limit,
                "template": {"metadata": {"annotations": {"hollow.mk8s.io/exit-code": str(exit_code),
                                                          "hollow.mk8s.io/run-ms": "200"}},
                             "spec": {"restartPolicy": "Never",
                                      "containers": [{"name": "work", "image": "busybox:1.36"}]}}}

    def test_job_completes(self):
        self.k("apply", "-f", "-", input=json.dumps({
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "pi"},
            "spec": self.job_spec(0, completions=3, parallelism=2)}))
        out = self.k("wait", "--for=condition=complete", "job/pi", "--timeout=60s").stdout
        self.assertIn("job.batch/pi condition met", out)
        self.assertRegex(self.k("get", "job", "pi").stdout, r"pi\s+Complete\s+3/3")
        pods = json.loads(self.k("get", "pods", "-l", "job-name=pi", "-o", "json").stdout)["items"]
        self.assertEqual(sorted(p["status"]["phase"] for p in pods), ["Succeeded"] * 3)
        for pod in pods:  # bound by the scheduler, run by a hollow kubelet
            self.assertRegex(pod["spec"].get("nodeName", ""), r"^hollow-node-\d$")
        describe = self.k("describe", "job", "pi").stdout
        self.assertIn("SuccessfulCreate", describe)
        self.assertIn("Completed", describe)
        job = json.loads(self.k("get", "job", "pi", "-o", "json").stdout)
        self.assertEqual(job["status"]["succeeded"], 3)
        self.assertIn("completionTime", job["status"])

    def test_job_over_its_backoff_limit_fails(self):
        self.k("apply", "-f", "-", input=json.dumps({
            "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "doomed"},
            "spec": self.job_spec(3, backoff_limit=0)}))
        out = self.k("wait", "--for=condition=failed", "job/doomed", "--timeout=60s").stdout
        self.assertIn("condition met", out)
        reason = self.k("get", "job", "doomed", "-o",
                        "jsonpath={.status.conditions[?(@.type==\"Failed\")].reason}").stdout
        self.assertEqual(reason, "BackoffLimitExceeded")
        self.assertIn("BackoffLimitExceeded", self.k("describe", "job", "doomed").stdout)

    def test_cronjob_template_runs_and_bad_schedules_are_rejected(self):
        self.k("apply", "-f", "-", input=json.dumps({
            "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly"},
            "spec": {"schedule": "0 3 * * *", "timeZone": "Etc/UTC",
                     "jobTemplate": {"spec": self.job_spec(0)}}}))
        self.assertRegex(self.k("get", "cronjob", "nightly").stdout,
                         r"nightly\s+0 3 \* \* \*\s+Etc/UTC\s+False\s+0\s+<none>")
        self.k("create", "job", "--from=cronjob/nightly", "nightly-manual")
        out = self.k("wait", "--for=condition=complete", "job/nightly-manual", "--timeout=60s").stdout
        self.assertIn("condition met", out)
        owner = self.k("get", "job", "nightly-manual", "-o",
                       "jsonpath={.metadata.ownerReferences[0].kind}/{.metadata.ownerReferences[0].name}").stdout
        self.assertEqual(owner, "CronJob/nightly")
        bad = self.k("create", "cronjob", "bad", "--image=busybox:1.36", "--schedule=61 * * * *", check=False)
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn('spec.schedule: Invalid value: "61 * * * *": end of range (61) above maximum (59)',
                      bad.stderr)
        zone = self.k("create", "-f", "-", check=False, input=json.dumps({
            "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "mars"},
            "spec": {"schedule": "@daily", "timeZone": "Mars/Olympus_Mons",
                     "jobTemplate": {"spec": self.job_spec(0)}}}))
        self.assertNotEqual(zone.returncode, 0)
        self.assertIn("spec.timeZone", zone.stderr)

    def test_daemonset_on_every_node_and_rolling_update(self):
        self.k("apply", "-f", "-", input=json.dumps({
            "apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent"},
            "spec": {"selector": {"matchLabels": {"app": "agent"}},
                     "template": {"metadata": {"labels": {"app": "agent"}},
                                  "spec": {"containers": [{"name": "a", "image": "busybox:1.36"}]}}}}))
        out = self.k("rollout", "status", "daemonset/agent", "--timeout=60s").stdout
        self.assertIn('daemon set "agent" successfully rolled out', out)
        def nodes_running():
            pods = json.loads(self.k("get", "pods", "-l", "app=agent", "-o", "json").stdout)["items"]
            live = [p for p in pods if "deletionTimestamp" not in p["metadata"]]
            return sorted(p["spec"].get("nodeName", "") for p in live
                          if p["status"].get("phase") == "Running")
        wait_for(lambda: nodes_running() == ["hollow-node-0", "hollow-node-1", "hollow-node-2"],
                 what="one Running pod per hollow node")
        self.assertRegex(self.k("get", "ds", "agent").stdout, r"agent\s+3\s+3\s+3\s+3\s+3")
        self.k("set", "image", "daemonset/agent", "a=busybox:1.37")
        out = self.k("rollout", "status", "daemonset/agent", "--timeout=60s").stdout
        self.assertIn("successfully rolled out", out)
        def images():
            pods = json.loads(self.k("get", "pods", "-l", "app=agent", "-o", "json").stdout)["items"]
            return sorted(p["spec"]["containers"][0]["image"] for p in pods)
        wait_for(lambda: images() == ["busybox:1.37"] * 3, what="every pod on the new image")
        history = self.k("rollout", "history", "daemonset/agent").stdout
        self.assertRegex(history, r"(?m)^1\s")
        self.assertRegex(history, r"(?m)^2\s")


class DisruptionBudgetTest(ClusterTestCase):
    """PodDisruptionBudgets through kubectl: the disruption controller's status, evictions the
    budget allows and refuses (kubectl drain's path), and the validation."""

    CLUSTER_ARGS = ("--hollow-nodes", "2", "--hollow-pod-start-delay-ms", "50")

    def budget(self, name):
        return json.loads(self.k("get", "pdb", name, "-o", "json").stdout)

    def running(self, selector):
        pods = json.loads(self.k("get", "pods", "-l", selector, "-o", "json").stdout)["items"]
        return [p["metadata"]["name"] for p in pods
                if "deletionTimestamp" not in p["metadata"] and p["status"].get("phase") == "Running"]

    def pod_node(self, pod):
        return json.loads(self.k("get", "pod", pod, "-o", "json").stdout)["spec"]["nodeName"]

    def evict(self, pod):
        body = json.dumps({"apiVersion": "policy/v1", "kind": "Eviction",
                           "metadata": {"name": pod, "namespace": "default"}})
        return self.c.https("POST", f"/api/v1/namespaces/default/pods/{pod}/eviction", body.encode(),
                            {"Content-Type": "application/json"})

    def test_budget_status_and_evictions(self):
        # Pods without a controller: an evicted one is not replaced, so the budget stays spent.
        for i in range(3):
            self.k("run", f"batch-{i}", "--image=busybox:1.36", "--labels=app=batch")
        wait_for(lambda: len(self.running("app=batch")) == 3, what="3 running pods")
        self.k("create", "pdb", "batch", "--selector=app=batch", "--min-available=2")
        wait_for(lambda: self.budget("batch")["status"].get("currentHealthy") == 3,
                 what="the budget counts 3 healthy pods")
        status = self.budget("batch")["status"]
        self.assertEqual((status["expectedPods"], status["desiredHealthy"], status["disruptionsAllowed"]),
                         (3, 2, 1))
        self.assertEqual(status["conditions"][0]["reason"], "SufficientPods")
        table = self.k("get", "pdb", "batch").stdout.split("\n")
        self.assertEqual(table[0].split(), ["NAME", "MIN", "AVAILABLE", "MAX", "UNAVAILABLE",
                                            "ALLOWED", "DISRUPTIONS", "AGE"])
        self.assertEqual(table[1].split()[:4], ["batch", "2", "N/A", "1"])

        # One eviction is allowed, and spends the budget: the next one is refused.
        status_code, _, body = self.evict("batch-0")
        self.assertEqual(status_code, 201, body)
        self.assertEqual(json.loads(body)["status"], "Success")
        refused_code, _, refused = self.evict("batch-1")
        self.assertEqual(refused_code, 429, refused)
        refusal = json.loads(refused)
        self.assertEqual(refusal["reason"], "TooManyRequests")
        self.assertEqual(refusal["message"],
                         "Cannot evict pod as it would violate the pod's disruption budget.")
        self.assertEqual(refusal["details"]["causes"][0]["reason"], "DisruptionBudget")
        wait_for(lambda: self.running("app=batch") == ["batch-1", "batch-2"],
                 what="batch-0 gone, the others running")
        wait_for(lambda: self.budget("batch")["status"].get("currentHealthy") == 2,
                 what="the budget counts 2 healthy pods")
        self.assertEqual(self.budget("batch")["status"]["disruptionsAllowed"], 0)
        # kubectl drain's path: the same refusal, retried until its timeout.
        node = self.pod_node("batch-1")
        drained = self.k("drain", node, "--pod-selector=app=batch", "--force", "--timeout=3s",
                         check=False)
        self.assertNotEqual(drained.returncode, 0)
        self.assertIn("Cannot evict pod as it would violate the pod's disruption budget",
                      drained.stdout + drained.stderr)
        self.k("uncordon", node)

        # A percentage counts on the Deployment's scale.
        self.k("create", "deployment", "web", "--image=nginx:1.26", "--replicas=3")
        wait_for(lambda: len(self.running("app=web")) == 3, what="3 running pods")
        self.k("create", "pdb", "web-pct", "--selector=app=web", "--max-unavailable=50%")
        wait_for(lambda: self.budget("web-pct")["status"].get("expectedPods") == 3,
                 what="expected pods from the Deployment's scale")
        status = self.budget("web-pct")["status"]
        self.assertEqual((status["desiredHealthy"], status["disruptionsAllowed"]), (1, 2))

        missing_code, _, missing = self.evict("no-such-pod")
        self.assertEqual(missing_code, 404, missing)
        self.assertEqual(json.loads(missing)["reason"], "NotFound")

        refused = self.k("create", "pdb", "both", "--selector=app=web", "--min-available=1",
                         "--max-unavailable=1", check=False)
        self.assertNotEqual(refused.returncode, 0)
        refused = self.k("apply", "-f", "-", check=False, input=json.dumps({
            "apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "bad"},
            "spec": {"minAvailable": "150%", "selector": {"matchLabels": {"app": "web"}}}}))
        self.assertIn("must not be greater than 100%", refused.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
