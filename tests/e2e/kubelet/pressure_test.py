#!/usr/bin/env python3
"""Node pressure and image garbage collection, end to end: a real mk8sd (apiserver, controllers,
scheduler, kubelet on real containerd) inside a network namespace of its own, started with a disk
threshold every machine meets (`--eviction-hard nodefs.available<100%,memory.available<100Mi`)
and an image GC threshold every machine meets (`--image-gc-high-threshold 1`, low 0, images
older than 15 s, checked every second).

Checks, with the real kubectl: the kubelet reports DiskPressure=True (and MemoryPressure=False)
while the node stays Ready, allocatable memory is capacity minus the 100Mi threshold, the node
lifecycle controller taints the node node.kubernetes.io/disk-pressure:NoSchedule, a pod without
a toleration stays Pending with the scheduler's FailedScheduling message naming the taint, and a
pod that tolerates it is scheduled; an image no container uses is removed by image GC while the
image of a running pod and the pause image stay. Needs root, containerd, kubectl and nsenter (exits 77 =
skipped otherwise)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from cluster import ClusterInNetns, busybox_image, e2e_main, why_no_node  # noqa: E402
from netns import wait_for  # noqa: E402

TAINT = "node.kubernetes.io/disk-pressure"
USED_IMAGE = "localhost/mk8s-test/gc-used:1"
UNUSED_IMAGE = "localhost/mk8s-test/gc-unused:1"
MIN_AGE_S = 15


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
        cls.images = [busybox_image(cls.dir, USED_IMAGE, "sleep 3600", "used.tar"),
                      busybox_image(cls.dir, UNUSED_IMAGE, "sleep 3601", "unused.tar")]  # another id
        cls.start_node("apiserver,controllers,scheduler,kubelet", "--eviction-hard",
                       "nodefs.available<100%,memory.available<100Mi",
                       "--image-gc-high-threshold", "1", "--image-gc-low-threshold", "0",
                       "--image-minimum-gc-age", f"{MIN_AGE_S}s", "--image-gc-period", "1s")
        cls.main.wait_api()
        cls.wait_node_ready()

    def node_object(self):
        return self.get("node", self.node)

    def condition(self, node, kind):
        for condition in node["status"].get("conditions", []):
            if condition["type"] == kind:
                return condition
        return {}

    def pod(self, name, tolerate, image="localhost/never-pulled:1"):
        spec = {"containers": [{"name": "c", "image": image, "imagePullPolicy": "Never"}],
                "terminationGracePeriodSeconds": 1}
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
        # The node's heartbeat Lease is owned by the Node (deleting the Node collects it).
        lease = self.get("lease", self.node, "-n", "kube-node-lease")
        self.assertEqual([(o["kind"], o["name"], o["uid"]) for o in lease["metadata"]["ownerReferences"]],
                         [("Node", self.node, node["metadata"]["uid"])])

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

    def image_names(self):
        out = self.main.ctr("images", "list", "-q").stdout.split()
        return set(out)

    def test_3_image_gc_removes_only_unused_images(self):
        self.main.import_images(self.images)
        self.apply(self.pod("image-user", tolerate=True, image=USED_IMAGE))
        wait_for(lambda: self.get("pod", "image-user", "-n", "default")["status"].get("phase") == "Running",
                 timeout=60, what="the pod using the kept image Running")
        self.assertIn(UNUSED_IMAGE, self.image_names())  # younger than the minimum age
        try:
            wait_for(lambda: UNUSED_IMAGE not in self.image_names(), timeout=MIN_AGE_S + 45,
                     what="the unused image removed by image GC")
        except AssertionError as error:
            lines = [line for line in self.daemon_log().splitlines() if "image" in line]
            raise AssertionError(f"{error}; images {sorted(self.image_names())}; daemon log:\n"
                                 + "\n".join(lines[-15:])) from None
        names = self.image_names()
        self.assertIn(USED_IMAGE, names)
        self.assertTrue(any(name.startswith("localhost/mk8s/pause:") for name in names), names)
        self.assertRegex(self.daemon_log(), r"image filesystem at \d+%.*: (removed [1-9]|freed [1-9])")


if __name__ == "__main__":
    e2e_main(PressureE2E)
