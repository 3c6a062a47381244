"""Real mk8sd processes inside network namespaces of the test's own, for e2e tests and the pod
benchmark.

- Mk8sd: one mk8sd in a NetNS (state folder, output file, kubectl with its admin kubeconfig,
  start/restart/stop). Not thread-safe; the caller owns it and stops it. Daemon: an Mk8sd in a
  temp folder of its own, answering once constructed.
- ClusterInNetns: a unittest base class. setUpClass makes a temp folder (cls.dir) and runs the
  subclass's set_up_cluster(); any failure there cleans up before re-raising. Its class helpers
  (kubectl, get, apply, node_ready, daemon_log) drive cls.main, the Mk8sd whose API server the
  test talks to. cleanup() (tearDownClass) leaves nothing behind: every mk8sd stopped, container
  tasks killed, leftover processes of the folder killed, mounts below it detached, the
  namespaces deleted, the folder removed (kept with MK8S_E2E_KEEP=1).
- e2e_main(test_class): the scripts' entry; exits 77 (ctest SKIP_RETURN_CODE) with the reason
  printed when the test cannot run on this machine.
- busybox_image / whoami_and_sleep_images: test images built with scripts/oci-image.py.

Everything that starts pods, CNI, iptables rules or 10.x traffic stays inside the namespaces.
"""
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import unittest

from netns import NetNS, missing_requirements, wait_for  # also puts tests/support on sys.path
from mk8s_testlib import pids_with, stop_process

MK8SD = os.environ.get("MK8SD_BIN", "mk8sd")
REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
OCI_IMAGE = os.path.join(REPO, "scripts", "oci-image.py")
SKIP = 77  # ctest SKIP_RETURN_CODE of the e2e tests
WHOAMI_IMAGE = "localhost/mk8s-test/whoami:1"   # httpd answering with the pod's hostname
SLEEP_IMAGE = "localhost/mk8s-test/sleep:1"


def why_no_node(tools):
    """Why a node with real pods cannot run here ("" when it can): root, `tools`, containerd,
    and busybox-static for the test images."""
    reason = missing_requirements(tools=tools)
    if reason:
        return reason
    if not os.path.exists("/usr/bin/containerd"):
        return "needs containerd (/usr/bin/containerd)"
    if not os.path.exists("/bin/busybox"):
        return "needs busybox-static for the test images"
    return ""


def busybox_image(folder, name, entrypoint, tar_name, files=()):
    """Builds a busybox image `name` running `entrypoint` (files: "host:image" pairs) into
    folder/tar_name; returns the tar's path."""
    tar = os.path.join(folder, tar_name)
    argv = [sys.executable, OCI_IMAGE, "--name", name, "--busybox"]
    for spec in files:
        argv += ["--file", spec]
    subprocess.run([*argv, "--entrypoint", entrypoint, "-o", tar], check=True)
    return tar


def whoami_and_sleep_images(folder):
    """WHOAMI_IMAGE (busybox httpd serving the pod's hostname on :80) and SLEEP_IMAGE."""
    return [busybox_image(folder, WHOAMI_IMAGE,
                          "sh -c 'mkdir -p /www && hostname > /www/index.html && "
                          "exec httpd -f -p 80 -h /www'", "whoami.tar"),
            busybox_image(folder, SLEEP_IMAGE, "sleep 3600", "sleep.tar")]


def is_ready(obj):
    """Whether a Node's or Pod's status has condition Ready=True."""
    return any(c["type"] == "Ready" and c["status"] == "True"
               for c in (obj.get("status") or {}).get("conditions", []))


class Mk8sd:
    """One real mk8sd inside `ns`: `mk8sd --state-dir <state> <args>`, output appended to
    `log_path`; kubectl runs inside `ns` with the admin kubeconfig the daemon writes (or
    `kubeconfig`) and a discovery cache in `cache_dir`. start() again after the process ended
    restarts it on the same state and log."""

    def __init__(self, ns, state, log_path, args=(), kubeconfig=None, cache_dir=None,
                 kubectl_timeout=60, mk8sd=None):
        self.ns = ns
        self.state = state
        self.log_path = log_path
        self.args = list(args)
        self.mk8sd = mk8sd or MK8SD
        self.kubeconfig = kubeconfig or os.path.join(state, "credentials", "client.config")
        self.env = dict(os.environ, KUBECONFIG=self.kubeconfig,
                        KUBECACHEDIR=cache_dir or os.path.join(os.path.dirname(state), "cache"))
        self.kubectl_timeout = kubectl_timeout
        self.sock = os.path.join(state, "containerd", "containerd.sock")
        self.proc = None
        self.log = None

    def start(self):
        """Starts (or restarts) the daemon; returns its Popen."""
        if self.log is not None:
            self.log.close()
        self.log = open(self.log_path, "a")
        args = list(self.args)
        if not any(a.startswith("--image-gc-high-threshold") for a in args):
            # The tests' images are imported (imagePullPolicy Never) and cannot be pulled again,
            # so image GC stays off unless a test is about it (a CI disk may be past 85 %).
            args += ["--image-gc-high-threshold", "100"]
        if not any(a.startswith("--eviction-hard") for a in args):
            # The default disk thresholds (1Gi free) would evict every test pod on a nearly full
            # CI disk; tests about pressure set their own.
            args += ["--eviction-hard", "memory.available<100Mi,nodefs.available<64Mi,"
                     "imagefs.available<64Mi"]
        self.proc = self.ns.popen(self.mk8sd, "--state-dir", self.state, *args,
                                  stdout=self.log, stderr=subprocess.STDOUT)
        return self.proc

    def output(self, tail=6000):
        """The daemon's output so far (its last `tail` characters; all with tail=None)."""
        if self.log is not None and not self.log.closed:
            self.log.flush()
        with open(self.log_path) as f:
            text = f.read()
        return text if tail is None else text[-tail:]

    def check_alive(self):
        """True while the daemon runs; AssertionError with its output once it exited."""
        if self.proc.poll() is not None:
            raise AssertionError(f"mk8sd ({os.path.basename(self.log_path)}) exited "
                                 f"({self.proc.returncode}):\n{self.output()}")
        return True

    def wait_kubeconfig(self):
        wait_for(lambda: os.path.exists(self.kubeconfig) or self.proc.poll() is not None,
                 what="kubeconfig")
        self.check_alive()

    def wait_api(self):
        wait_for(lambda: self.check_alive() and
                 self.kubectl("get", "ns", check=False).returncode == 0, what="API server")

    def kubectl(self, *args, check=True, input=None, timeout=None):
        return self.ns.run("kubectl", *args, check=check, input=input, env=self.env,
                           timeout=timeout or self.kubectl_timeout)

    def get(self, *args):
        return json.loads(self.kubectl("get", *args, "-o", "json").stdout)

    def apply(self, obj):
        """kubectl apply of one object (a dict)."""
        return self.kubectl("apply", "-f", "-", input=json.dumps(obj))

    def node_ready(self, name):
        result = self.kubectl("get", "node", name, "-o", "json", check=False)
        return result.returncode == 0 and is_ready(json.loads(result.stdout))

    def ctr(self, *args, check=True, timeout=60):
        """ctr against this daemon's containerd, namespace k8s.io."""
        return subprocess.run(["ctr", "-a", self.sock, "-n", "k8s.io", *args], check=check,
                              capture_output=True, text=True, timeout=timeout)

    def import_images(self, tars):
        for tar in tars:
            self.ctr("images", "import", tar, timeout=120)

    def kill_tasks(self):
        """SIGKILLs every container task its containerd still runs (a failed run's leftovers)."""
        if not os.path.exists(self.sock) or shutil.which("ctr") is None:
            return
        try:
            for task in self.ctr("tasks", "ls", "-q", check=False, timeout=30).stdout.split():
                self.ctr("tasks", "kill", "-s", "SIGKILL", task, check=False, timeout=30)
        except subprocess.TimeoutExpired:
            pass

    def stop(self, timeout=90):
        """SIGTERM (mk8sd then stops its pods and containerd), SIGKILL after `timeout` s."""
        if self.proc is not None:
            stop_process(self.proc, timeout)
        if self.log is not None:
            self.log.close()


class Daemon(Mk8sd):
    """A control-plane style mk8sd inside `ns` in a temporary folder of its own (API server on a
    free port, `args` added), started and answering when constructed. remove() deletes the
    folder after stop()."""

    def __init__(self, ns, mk8sd, args=()):
        self.dir = tempfile.mkdtemp(prefix="mk8s-e2e-")
        super().__init__(ns, os.path.join(self.dir, "state"), os.path.join(self.dir, "daemon.out"),
                         ["--apiserver-port", "0", *args], mk8sd=mk8sd)
        self.start()
        try:
            self.wait_kubeconfig()
            self.wait_api()
        except BaseException:
            self.stop()
            raise

    def read_log(self):
        return self.output(tail=None)

    def stop(self, timeout=30):
        super().stop(timeout)

    def remove(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def kill_processes_mentioning(text):
    for pid in pids_with(text):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def unmount_below(folder):
    """Lazily detaches every mount point below `folder`, deepest first."""
    with open("/proc/mounts") as f:
        mounts = [line.split()[1] for line in f if folder in line.split()[1]]
    for mount in reversed(mounts):
        subprocess.run(["umount", "-l", mount], check=False, capture_output=True)


class ClusterInNetns(unittest.TestCase):
    """Base of e2e tests running real mk8sd processes in network namespaces of their own.
    Subclasses set NAME, override why_skip() and set_up_cluster() (classmethods), and use
    set_up_node_netns() + start_node() for the common single-node shape."""

    NAME = "e2e"

    @staticmethod
    def why_skip():
        """Why the test cannot run here ("" when it can)."""
        return ""

    @classmethod
    def set_up_cluster(cls):
        raise NotImplementedError

    @classmethod
    def setUpClass(cls):
        reason = cls.why_skip()
        if reason:
            print(f"SKIP {cls.NAME} e2e: {reason}", flush=True)
            raise unittest.SkipTest(reason)
        cls.dir = tempfile.mkdtemp(prefix=f"mk8s-{cls.NAME}-e2e-")
        cls.namespaces, cls.daemons, cls.main = [], [], None
        try:
            cls.set_up_cluster()
        except BaseException:
            cls.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.cleanup()

    # --- building the cluster ------------------------------------------------------------------
    @classmethod
    def new_netns(cls, tag):
        ns = NetNS(tag)
        cls.namespaces.append(ns)
        return ns

    @classmethod
    def add_mk8sd(cls, ns, state, log_name, *args):
        """Starts `mk8sd --state-dir <state> <args>` in `ns`, output in cls.dir/<log_name>; the
        first one added is cls.main."""
        daemon = Mk8sd(ns, state, os.path.join(cls.dir, log_name), args,
                       cache_dir=os.path.join(cls.dir, "cache"))
        cls.daemons.append(daemon)
        if cls.main is None:
            cls.use_main(daemon)
        daemon.start()
        return daemon

    @classmethod
    def use_main(cls, daemon):
        cls.main, cls.kubeconfig, cls.env = daemon, daemon.kubeconfig, daemon.env

    @classmethod
    def set_up_node_netns(cls, node_prefix, second_octet):
        """The single-node shape: cls.state, cls.sock, a random cls.node name and cls.node_ip
        (10.<second_octet>.<random>.1) on a dummy interface node0 of a new namespace cls.ns."""
        cls.state = os.path.join(cls.dir, "state")
        cls.sock = os.path.join(cls.state, "containerd", "containerd.sock")
        cls.node = f"{node_prefix}-{random.randrange(16**6):06x}"
        cls.node_ip = f"10.{second_octet}.{random.randrange(1, 250)}.1"
        cls.ns = cls.new_netns(cls.NAME)
        cls.ns.add_dummy("node0", [cls.node_ip + "/24"])

    @classmethod
    def start_node(cls, components, *args):
        """mk8sd with `components` as cls.node on cls.node_ip (API server and kubelet on free
        ports) in cls.ns; returns once its kubeconfig exists. cls.proc is its process."""
        if cls.main is None:
            cls.add_mk8sd(cls.ns, cls.state, "daemon.out", "--apiserver-port", "0",
                          f"--components={components}", "--kubelet-port", "0",
                          "--node-name", cls.node, "--node-ip", cls.node_ip, *args)
        else:
            cls.main.start()
        cls.proc = cls.main.proc
        cls.main.wait_kubeconfig()

    @classmethod
    def wait_node_ready(cls, *names, timeout=90):
        names = names or (cls.node,)
        wait_for(lambda: cls.check_alive() and all(cls.node_ready(n) for n in names),
                 timeout=timeout, what=f"node{'s' if len(names) > 1 else ''} "
                 f"{', '.join(names)} Ready", interval=0.2)

    # --- driving it -----------------------------------------------------------------------------
    @classmethod
    def check_alive(cls):
        for daemon in cls.daemons:
            daemon.check_alive()
        return True

    @classmethod
    def daemon_log(cls, name="daemon.out"):
        """The last 6000 characters of cls.dir/<name> (a daemon's output)."""
        for daemon in cls.daemons:
            if daemon.log is not None and not daemon.log.closed:
                daemon.log.flush()
        with open(os.path.join(cls.dir, name)) as f:
            return f.read()[-6000:]

    @classmethod
    def kubectl(cls, *args, check=True, input=None):
        return cls.main.kubectl(*args, check=check, input=input)

    @classmethod
    def get(cls, *args):
        return cls.main.get(*args)

    @classmethod
    def apply(cls, obj):
        return cls.main.apply(obj)

    @classmethod
    def node_ready(cls, name=None):
        return cls.main.node_ready(name or cls.node)

    # --- cleaning up ----------------------------------------------------------------------------
    @classmethod
    def cleanup(cls):
        """Leaves nothing behind, whatever state a failure left: every mk8sd (the last started
        first, so a worker stops while its API server still runs; SIGTERM stops pods and
        containerd), leftover tasks and processes of the folder, mounts, the namespaces and the
        folder."""
        for daemon in reversed(cls.daemons):
            daemon.stop()
        for daemon in cls.daemons:
            daemon.kill_tasks()
        kill_processes_mentioning(cls.dir)
        unmount_below(cls.dir)
        for ns in reversed(cls.namespaces):
            ns.close()
        if os.environ.get("MK8S_E2E_KEEP"):
            print(f"kept {cls.dir} (MK8S_E2E_KEEP)", flush=True)
            return
        shutil.rmtree(cls.dir, ignore_errors=True)


def e2e_main(test_class):
    """Runs the test module; exits 77 (skipped) with the printed reason when
    test_class.why_skip() says it cannot run here."""
    reason = test_class.why_skip()
    if reason:
        print(f"SKIP {test_class.NAME} e2e: {reason}", flush=True)
        sys.exit(SKIP)
    unittest.main(verbosity=2)
