#!/usr/bin/env python3
"""Image pulls from a plain-HTTP registry through the hosts.toml files mk8sd writes for
`--registry-mirror HOST=URL` (what the registry addon relies on at localhost:32000).

Inside a network namespace of its own the test runs Debian's docker-registry on the namespace's
127.0.0.1, pushes a busybox image to it with skopeo, and starts mk8sd (apiserver, controllers,
scheduler, kubelet) with two mirrors: `localhost:<port>` and a host name that resolves nowhere,
`registry.mk8s.invalid:<port>`, both to http://127.0.0.1:<port> (only the hosts.toml can make the
second one work). Covers: the hosts.toml files (and a stale one of an earlier start removed, a
hand-written one kept); a pod with imagePullPolicy Always pulls from each name and runs, the
pulled image shows in `mk8s images ls`; a pod whose image the registry does not have gets
ErrImagePull/ImagePullBackOff with a message; a bad --registry-mirror stops mk8sd at start with
one line. Needs root, containerd, kubectl, nsenter, docker-registry and skopeo (exits 77 =
skipped, with the reason, otherwise)."""
import json
import os
import random
import shutil
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from cluster import MK8SD, ClusterInNetns, busybox_image, e2e_main, why_no_node  # noqa: E402
from netns import wait_for  # noqa: E402

MK8S = os.environ.get("MK8S_BIN", "mk8s")
REGISTRY = "/usr/bin/docker-registry"


def why_skip():
    reason = why_no_node(("ip", "nsenter", "kubectl", "curl"))
    if reason:
        return reason
    if not os.access(REGISTRY, os.X_OK):
        return f"needs {REGISTRY} (apt-get install docker-registry)"
    if shutil.which("skopeo") is None:
        return "needs skopeo (apt-get install skopeo)"
    return ""


def pod(name, image):
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"terminationGracePeriodSeconds": 1,
                     "containers": [{"name": "main", "image": image,
                                     "imagePullPolicy": "Always"}]}}


class RegistryE2E(ClusterInNetns):
    NAME = "registry"
    why_skip = staticmethod(why_skip)

    @classmethod
    def set_up_cluster(cls):
        cls.port = random.randrange(30000, 40000)  # the namespace is new: nothing listens yet
        cls.tag = f"t{random.randrange(16**6):06x}"
        cls.set_up_node_netns("reg", 202)
        cls.start_registry()
        cls.push_image()
        cls.seed_certs_d()
        cls.start_node("apiserver,controllers,scheduler,kubelet",
                       "--registry-mirror", f"localhost:{cls.port}=http://127.0.0.1:{cls.port}",
                       "--registry-mirror",
                       f"registry.mk8s.invalid:{cls.port}=http://127.0.0.1:{cls.port}")
        cls.wait_node_ready()

    @classmethod
    def cleanup(cls):
        """The base's cleanup (the registry goes with the namespace), then the registry's log."""
        super().cleanup()
        if getattr(cls, "registry_log", None):
            cls.registry_log.close()

    # --- helpers -----------------------------------------------------------------------------
    @classmethod
    def start_registry(cls):
        """docker-registry serving a temporary folder on the namespace's 127.0.0.1:<port>."""
        storage = os.path.join(cls.dir, "registry")
        os.makedirs(storage)
        config = os.path.join(cls.dir, "registry.yml")
        with open(config, "w") as f:
            f.write("version: 0.1\n"
                    "log:\n  level: warn\n"
                    f"storage:\n  filesystem:\n    rootdirectory: {storage}\n"
                    "  delete:\n    enabled: true\n"
                    f"http:\n  addr: 127.0.0.1:{cls.port}\n")
        cls.registry_log = open(os.path.join(cls.dir, "registry.out"), "w")
        registry = cls.ns.popen(REGISTRY, "serve", config, stdout=cls.registry_log,
                                stderr=subprocess.STDOUT)

        def up():
            if registry.poll() is not None:
                raise AssertionError(f"docker-registry exited ({registry.returncode}):\n"
                                     f"{open(cls.registry_log.name).read()[-3000:]}")
            return cls.ns.run("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                              "--max-time", "2", f"http://127.0.0.1:{cls.port}/v2/",
                              check=False).stdout == "200"
        wait_for(up, what=f"docker-registry on 127.0.0.1:{cls.port}", interval=0.1)

    @classmethod
    def seed_certs_d(cls):
        """A mirror an earlier mk8sd wrote (must go) and a hand-written one (must stay)."""
        certs_d = os.path.join(cls.state, "containerd", "certs.d")
        for host, text in (("stale.example:1", "# Written by mk8sd.\nserver = \"http://x\"\n"),
                           ("hand.example:1", "server = \"https://hand.example:1\"\n")):
            os.makedirs(os.path.join(certs_d, host))
            with open(os.path.join(certs_d, host, "hosts.toml"), "w") as f:
                f.write(text)

    @classmethod
    def push_image(cls):
        """Builds the busybox test image (scripts/oci-image.py) and pushes it with skopeo."""
        tar = busybox_image(cls.dir, f"localhost/mk8s-test/busybox:{cls.tag}", "sleep 3600",
                            "busybox.tar")
        cls.ns.run("skopeo", "--insecure-policy", "copy", "--quiet", "--dest-tls-verify=false",
                   f"oci-archive:{tar}",
                   f"docker://127.0.0.1:{cls.port}/mk8s-test/busybox:{cls.tag}", timeout=120)

    def pod_json(self, name):
        result = self.kubectl("get", "pod", name, "-o", "json", check=False)
        return json.loads(result.stdout) if result.returncode == 0 else None

    def running(self, name):
        p = self.pod_json(name)
        return p if p and p["status"].get("phase") == "Running" else None

    def waiting(self, name, reasons):
        p = self.pod_json(name)
        for status in (p or {}).get("status", {}).get("containerStatuses") or []:
            w = status.get("state", {}).get("waiting") or {}
            if w.get("reason") in reasons and w.get("message"):
                return w
        return None

    def images(self):
        listed = subprocess.run([MK8S, "--state-dir", self.state, "images", "ls"],
                                capture_output=True, text=True, timeout=60)
        self.assertEqual(listed.returncode, 0, listed.stderr)
        return listed.stdout

    def events(self, name):
        return self.kubectl("get", "events", "--field-selector", f"involvedObject.name={name}",
                            "-o", "json").stdout

    # --- tests, in order ---------------------------------------------------------------------
    def test_1_hosts_toml_written(self):
        for host in (f"localhost:{self.port}", f"registry.mk8s.invalid:{self.port}"):
            path = os.path.join(self.state, "containerd", "certs.d", host, "hosts.toml")
            with open(path) as f:
                self.assertIn(f'server = "http://127.0.0.1:{self.port}"', f.read())
        certs_d = os.path.join(self.state, "containerd", "certs.d")
        self.assertFalse(os.path.exists(os.path.join(certs_d, "stale.example:1")))
        self.assertTrue(os.path.exists(os.path.join(certs_d, "hand.example:1", "hosts.toml")))

    def test_2_pull_always_from_localhost(self):
        image = f"localhost:{self.port}/mk8s-test/busybox:{self.tag}"
        self.apply(pod("pulled", image))
        wait_for(lambda: self.running("pulled"), timeout=120, what="pod pulled Running",
                 interval=0.2)
        self.assertIn("Successfully pulled image", self.events("pulled"))
        self.assertIn(f"localhost:{self.port}/mk8s-test/busybox", self.images())

    def test_3_pull_through_mirror_only_name(self):
        # registry.mk8s.invalid resolves nowhere: only its hosts.toml leads to the registry.
        image = f"registry.mk8s.invalid:{self.port}/mk8s-test/busybox:{self.tag}"
        self.apply(pod("mirrored", image))
        wait_for(lambda: self.running("mirrored"), timeout=120, what="pod mirrored Running",
                 interval=0.2)
        self.assertIn(f"registry.mk8s.invalid:{self.port}/mk8s-test/busybox", self.images())

    def test_4_missing_image_fails_to_pull(self):
        image = f"localhost:{self.port}/mk8s-test/missing:{self.tag}"
        self.apply(pod("missing", image))
        waiting = wait_for(lambda: self.waiting("missing", ("ErrImagePull", "ImagePullBackOff")),
                           timeout=120, what="pod missing in ErrImagePull/ImagePullBackOff",
                           interval=0.2)
        self.assertIn(image, waiting["message"])
        self.assertIn("Failed to pull image", self.events("missing"))
        self.assertNotEqual(self.pod_json("missing")["status"].get("phase"), "Running")

    def test_5_bad_mirror_flag_fails_at_start(self):
        state = os.path.join(self.dir, "bad-state")
        for value in ("localhost:5000", "localhost:5000=ftp://x", "a/b=http://x"):
            result = subprocess.run([MK8SD, "--state-dir", state, "--registry-mirror", value],
                                    capture_output=True, text=True, timeout=30)
            self.assertEqual(result.returncode, 2, result.stderr)
            lines = result.stderr.strip().splitlines()
            self.assertEqual(len(lines), 1, result.stderr)
            self.assertIn("--registry-mirror", lines[0])
            self.assertIn(value, lines[0])
        self.assertFalse(os.path.exists(state))


if __name__ == "__main__":
    e2e_main(RegistryE2E)
