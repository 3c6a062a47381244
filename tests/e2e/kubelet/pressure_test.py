#!/usr/bin/env python3
"""Node pressure, eviction and image garbage collection, end to end: a real mk8sd (apiserver,
controllers, scheduler, kubelet on real containerd) inside a network namespace of its own. Its
node-filesystem threshold sits 1.5 GiB below the free space the test found, so the node starts
without pressure; image GC runs every second with a threshold every machine meets
(`--image-gc-high-threshold 1`, low 0, images older than 15 s).

Checks, with the real kubectl: the node reports no pressure, allocatable memory is capacity
minus the 100Mi memory threshold, and the node's Lease is owned by the Node; an image no
container uses is removed by image GC while the image of a running pod and the pause image stay.
A soft node-filesystem threshold sits 0.5 GiB below the free space found at start
(`--eviction-soft` with a 20 s `--eviction-soft-grace-period`, `--eviction-max-pod-grace-period
2`): the test fills the disk to halfway between the soft and the hard threshold; DiskPressure
turns True before any eviction, and the pod writing the most to its emptyDir is evicted no
sooner than 20 s after the fill, with 2 s of grace instead of its own 30 s (the daemon's log,
which also shows the pod's task count from its cgroup's pids.current); the filler is removed at
once so nothing else goes. Then the test fills the disk past the hard threshold (a 2.5 GiB
fallocated file in its own folder): the kubelet reports DiskPressure=True, evicts the running
pod (phase Failed, reason Evicted, the DisruptionTarget condition, an Evicted event), the node
lifecycle controller taints the node node.kubernetes.io/disk-pressure:NoSchedule, a pod
without a toleration stays Pending with the scheduler's FailedScheduling message naming the
taint, and a pod that tolerates it is scheduled but refused by the kubelet ("Pod was rejected:
The node had condition: [DiskPressure]. ").
Needs root, containerd, kubectl, nsenter and 4 GiB free on the temp folder's filesystem (exits
77 = skipped otherwise)."""
import os
import re
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from cluster import ClusterInNetns, busybox_image, e2e_main, why_no_node  # noqa: E402
from netns import wait_for  # noqa: E402

TAINT = "node.kubernetes.io/disk-pressure"
USED_IMAGE = "localhost/mk8s-test/gc-used:1"
UNUSED_IMAGE = "localhost/mk8s-test/gc-unused:1"
MIN_AGE_S = 15
MI = 1024 * 1024
MARGIN = 1536 * MI  # free space above the threshold at start
SOFT_MARGIN = 512 * MI  # free space above the soft threshold at start
SOFT_GRACE_S = 20
MAX_POD_GRACE_S = 2
FILLER = 2560 * MI  # what the test then takes: 1 GiB below the threshold


def free_bytes(folder):
    fs = os.statvfs(folder)
    return fs.f_bavail * fs.f_frsize


def pids_controller():
    """Whether the machine has the pids cgroup controller (v1 hierarchy or v2 root)."""
    try:
        with open("/sys/fs/cgroup/cgroup.controllers") as f:
            return "pids" in f.read().split()
    except OSError:
        return os.path.isdir("/sys/fs/cgroup/pids")


def quantity_ki(text):
    assert text.endswith("Ki"), text
    return int(text[:-2])


class PressureE2E(ClusterInNetns):
    NAME = "pressure"

    @staticmethod
    def why_skip():
        free = free_bytes(tempfile.gettempdir())
        if free < MARGIN + FILLER:
            return f"needs {(MARGIN + FILLER) // MI} MiB free in {tempfile.gettempdir()}, has {free // MI}"
        return why_no_node(("ip", "nsenter", "kubectl", "ctr"))

    @classmethod
    def set_up_cluster(cls):
        cls.set_up_node_netns("e2e", 201)
        cls.images = [busybox_image(cls.dir, USED_IMAGE, "sleep 3600", "used.tar"),
                      busybox_image(cls.dir, UNUSED_IMAGE, "sleep 3601", "unused.tar")]  # another id
        cls.filler = os.path.join(cls.dir, "filler")
        free = free_bytes(cls.dir)
        threshold_mi = (free - MARGIN) // MI
        cls.soft_threshold_mi = (free - SOFT_MARGIN) // MI
        cls.hard_threshold_mi = threshold_mi
        cls.start_node("apiserver,controllers,scheduler,kubelet", "--eviction-hard",
                       f"nodefs.available<{threshold_mi}Mi,memory.available<100Mi",
                       "--eviction-soft", f"nodefs.available<{cls.soft_threshold_mi}Mi",
                       "--eviction-soft-grace-period", f"nodefs.available={SOFT_GRACE_S}s",
                       "--eviction-max-pod-grace-period", str(MAX_POD_GRACE_S),
                       "--image-gc-high-threshold", "1", "--image-gc-low-threshold", "0",
                       "--image-minimum-gc-age", f"{MIN_AGE_S}s", "--image-gc-period", "1s")
        cls.main.wait_api()
        cls.wait_node_ready()

    @classmethod
    def tearDownClass(cls):
        if getattr(cls, "filler", None) and os.path.exists(cls.filler):
            os.unlink(cls.filler)  # even with MK8S_E2E_KEEP
        super().tearDownClass()

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

    def test_1_no_pressure_yet_and_allocatable(self):
        node = self.node_object()
        for kind in ("DiskPressure", "MemoryPressure", "PIDPressure"):
            self.assertEqual(self.condition(node, kind)["status"], "False", kind)
        self.assertEqual(self.condition(node, "DiskPressure")["reason"], "KubeletHasNoDiskPressure")
        self.assertEqual(self.condition(node, "Ready")["status"], "True")
        capacity = quantity_ki(node["status"]["capacity"]["memory"])
        allocatable = quantity_ki(node["status"]["allocatable"]["memory"])
        self.assertEqual(capacity - allocatable, 100 * 1024)
        # The node's heartbeat Lease is owned by the Node (deleting the Node collects it).
        lease = self.get("lease", self.node, "-n", "kube-node-lease")
        self.assertEqual([(o["kind"], o["name"], o["uid"]) for o in lease["metadata"]["ownerReferences"]],
                         [("Node", self.node, node["metadata"]["uid"])])

    def image_names(self):
        out = self.main.ctr("images", "list", "-q").stdout.split()
        return set(out)

    def test_2_image_gc_removes_only_unused_images(self):
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

    def test_3_soft_threshold_evicts_after_its_grace_period(self):
        writer = self.pod("disk-writer", tolerate=True, image=USED_IMAGE)
        writer["spec"]["terminationGracePeriodSeconds"] = 30  # capped to MAX_POD_GRACE_S
        writer["spec"]["volumes"] = [{"name": "scratch", "emptyDir": {}}]
        writer["spec"]["containers"][0].update({
            "command": ["sh", "-c", "dd if=/dev/zero of=/scratch/big bs=1M count=64 && sleep 3600"],
            "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}]})
        self.apply(writer)
        wait_for(lambda: self.get("pod", "disk-writer", "-n", "default")["status"].get("phase") == "Running",
                 timeout=60, what="disk-writer Running")
        # Halfway between the soft and the hard threshold, measured now (other work on the
        # machine moves the free space).
        target = (self.soft_threshold_mi + self.hard_threshold_mi) // 2 * MI
        size = free_bytes(self.dir) - target
        self.assertGreater(size, 0)
        try:
            with open(self.filler, "wb") as f:
                os.posix_fallocate(f.fileno(), 0, size)
            filled = time.monotonic()
            wait_for(lambda: self.condition(self.node_object(), "DiskPressure").get("status") == "True",
                     timeout=60, what="DiskPressure=True from the soft threshold")
            pressure_seen = time.monotonic()
            wait_for(lambda: self.get("pod", "disk-writer", "-n", "default")["status"]["phase"] == "Failed",
                     timeout=SOFT_GRACE_S + 60, what="disk-writer evicted by the soft threshold")
            evicted = time.monotonic()
        finally:
            if os.path.exists(self.filler):
                os.unlink(self.filler)  # at once, so the next pass evicts nobody else
        self.assertLess(pressure_seen, evicted)
        self.assertGreaterEqual(evicted - filled, SOFT_GRACE_S)
        status = self.get("pod", "disk-writer", "-n", "default")["status"]
        self.assertEqual(status["reason"], "Evicted")
        self.assertTrue(status["message"].startswith(
            "The node was low on resource: ephemeral-storage. "
            f"Threshold quantity: {self.soft_threshold_mi}Mi, "), status["message"])
        events = self.get("events", "-n", "default", "--field-selector",
                          "involvedObject.name=disk-writer")["items"]
        self.assertIn("Evicted", [e["reason"] for e in events])
        # The log line also shows the task count read from the pod's cgroup (pids.current, what
        # PID-pressure ranking uses): the pause process and the shell at least.
        evicting = re.search(r"evicting pod default/disk-writer \(soft threshold, grace (\d+) s; "
                             r"it has (\d+) tasks\)", self.daemon_log())
        self.assertIsNotNone(evicting, "no soft eviction of disk-writer in the daemon's log")
        self.assertEqual(int(evicting.group(1)), MAX_POD_GRACE_S)
        if pids_controller():
            self.assertGreaterEqual(int(evicting.group(2)), 2)
        self.assertEqual(self.get("pod", "image-user", "-n", "default")["status"]["phase"], "Running")

    def test_4_disk_pressure_evicts_taints_and_refuses(self):
        self.assertEqual(self.get("pod", "image-user", "-n", "default")["status"]["phase"], "Running")
        with open(self.filler, "wb") as f:
            os.posix_fallocate(f.fileno(), 0, FILLER)
        wait_for(lambda: self.condition(self.node_object(), "DiskPressure").get("status") == "True",
                 timeout=60, what="DiskPressure=True")
        disk = self.condition(self.node_object(), "DiskPressure")
        self.assertEqual((disk["reason"], disk["message"]),
                         ("KubeletHasDiskPressure", "kubelet has disk pressure"))
        self.assertIn("DiskPressure", self.kubectl("describe", "node", self.node).stdout)

        # The running pod is evicted.
        wait_for(lambda: self.get("pod", "image-user", "-n", "default")["status"]["phase"] == "Failed",
                 timeout=60, what="the running pod evicted")
        status = self.get("pod", "image-user", "-n", "default")["status"]
        self.assertEqual(status["reason"], "Evicted")
        self.assertTrue(status["message"].startswith(
            "The node was low on resource: ephemeral-storage. Threshold quantity: "), status["message"])
        target = [c for c in status["conditions"] if c["type"] == "DisruptionTarget"]
        self.assertEqual([(c["status"], c["reason"]) for c in target], [("True", "TerminationByKubelet")])
        self.assertEqual([c["state"].get("terminated") is not None for c in status["containerStatuses"]],
                         [True])
        events = self.get("events", "-n", "default", "--field-selector",
                          "involvedObject.name=image-user")["items"]
        self.assertIn("Evicted", [e["reason"] for e in events])

        # New pods: kept away by the taint, or refused by the kubelet when they tolerate it.
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
        wait_for(lambda: self.get("pod", "tolerant", "-n", "default")["status"].get("phase") == "Failed",
                 timeout=60, what="the tolerant pod refused by the kubelet")
        tolerant = self.get("pod", "tolerant", "-n", "default")
        self.assertEqual(tolerant["spec"]["nodeName"], self.node)
        self.assertEqual((tolerant["status"]["reason"], tolerant["status"]["message"]),
                         ("Evicted", "Pod was rejected: The node had condition: [DiskPressure]. "))
        self.assertNotIn("nodeName", self.get("pod", "kept-away", "-n", "default")["spec"])


if __name__ == "__main__":
    e2e_main(PressureE2E)
