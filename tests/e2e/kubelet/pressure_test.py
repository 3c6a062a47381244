#!/usr/bin/env python3
"""Node pressure, end to end: a real mk8sd (apiserver, controllers, scheduler, kubelet on real
containerd) inside a network namespace of its own, started with a disk threshold every machine
meets (`--eviction-hard nodefs.available<100%,memory.available<100Mi`).

Checks, with the real kubectl: the kubelet reports DiskPressure=True (and MemoryPressure=False)
while the node stays Ready, allocatable memory is capacity minus the 100Mi threshold, the node
lifecycle controller taints the node node.kubernetes.io/disk-pressure:NoSchedule, a pod without
a toleration stays Pending with the scheduler's FailedScheduling message naming the taint, and a
pod that tolerates it is scheduled. Needs root, containerd, kubectl and nsenter (exits 77 =
skipped otherwise)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from cluster import ClusterInNetns, e2e_main, why_no_node  # noqa: E402
from netns import wait_for  # noqa: E402

TAINT = "node.kubernetes.io/disk-pressure"


def quantity_ki(text):
    assert text.endswith("Ki"), text
    return int(text[:-2])


class PressureE2E(ClusterInNetns):
    NAME = "pressure"

    @staticmethod
    def why_skip():
        return why_no_node(("ip", "nsenter", "kubectl", "ctr"))

    @classmethod
    def set_up_cluster(cls):
        cls.set_up_node_netns("e2e", 201)
        cls.start_node("apiserver,controllers,scheduler,kubelet", "--eviction-hard",
                       "nodefs.available<100%,memory.available<100Mi")
        cls.main.wait_api()
        cls.wait_node_ready()

    def node_object(self):
        return self.get("node", self.node)

    def condition(self, node, kind):
        for condition in node["status"].get("conditions", []):
            if condition["type"] == kind:
                return condition
        return {}

    def pod(self, name, tolerate):
        spec = {"containers": [{"name": "c", "image": "localhost/never-pulled:1",
                                "imagePullPolicy": "Never"}]}
        if tolerate:
            spec["tolerations"] = [{"key": TAINT, "operator": "Exists", "effect": "NoSchedule"}]
        return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
                "spec": spec}

    def test_1_kubelet_reports_disk_pressure_and_allocatable(self):
        wait_for(lambda: self.condition(self.node_object(), "DiskPressure").get("status") == "True",
                 timeout=60, what="DiskPressure=True")
        node = self.node_object()
        disk = self.condition(node, "DiskPressure")
        self.assertEqual(disk["reason"], "KubeletHasDiskPressure")
        self.assertEqual(disk["message"], "kubelet has disk pressure")
        self.assertEqual(self.condition(node, "MemoryPressure")["status"], "False")
        self.assertEqual(self.condition(node, "Ready")["status"], "True")
        capacity = quantity_ki(node["status"]["capacity"]["memory"])
        allocatable = quantity_ki(node["status"]["allocatable"]["memory"])
        self.assertEqual(capacity - allocatable, 100 * 1024)
        self.assertIn("DiskPressure", self.kubectl("describe", "node", self.node).stdout)

    def test_2_node_is_tainted_and_pods_kept_away(self):
        wait_for(lambda: any(t.get("key") == TAINT and t.get("effect") == "NoSchedule"
                             for t in self.node_object()["spec"].get("taints", [])),
                 timeout=60, what=f"the {TAINT} taint")
        self.apply(self.pod("kept-away", tolerate=False))
        self.apply(self.pod("tolerant", tolerate=True))

        def failed_scheduling():
            events = self.get("events", "-n", "default",
                              "--field-selector", "involvedObject.name=kept-away")["items"]
            return [e["message"] for e in events if e["reason"] == "FailedScheduling"]
        wait_for(lambda: failed_scheduling(), timeout=60, what="FailedScheduling of kept-away")
        self.assertIn(f"untolerated taint {{{TAINT}: }}", failed_scheduling()[0])
        wait_for(lambda: self.get("pod", "tolerant", "-n", "default")["spec"].get("nodeName") == self.node,
                 timeout=60, what="the tolerant pod scheduled")
        self.assertNotIn("nodeName", self.get("pod", "kept-away", "-n", "default")["spec"])


if __name__ == "__main__":
    e2e_main(PressureE2E)
