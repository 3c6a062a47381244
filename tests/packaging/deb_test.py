#!/usr/bin/python3
"""The .deb as apt sees it. One script, three ctest entries (the first is the others' fixture):

  deb_test.py build     `cpack -G DEB` into <build>/packaging-deb/ (emptied first); the package's
                        file list (binaries, systemd unit with KillMode=process, completions in
                        the standard folders, addons folder, SDK), its Depends/Recommends lines,
                        its maintainer scripts (executable, valid sh).
  deb_test.py simulate  `apt-get install --simulate ./mk8s_*.deb`: dependencies resolve, no
                        conflicts, mk8s would be installed.
  deb_test.py system    only with MK8S_TEST_SYSTEM_INSTALL=1 (.ci/run sets it: CI is root on a
                        machine of its own) and root: a real `apt-get install -y ./mk8s_*.deb`,
                        the INSTALLED /usr/bin/mk8sd launched the way the unit's ExecStart does
                        (a temp --state-dir, API server on a free loopback port, the control plane
                        only: nothing touches the host's network; a policy-rc.d keeps postinst
                        from starting the unit), `/usr/bin/mk8s enable dns`,
                        dig against it, stop, `apt-get purge -y mk8s`, and the machine's package
                        list and the package's paths are as before. Exits 77 (ctest: skipped)
                        with the reason otherwise, or when mk8s is already installed here.

Environment (set by ctest): MK8S_BUILD_DIR, MK8S_SOURCE_DIR. Waits poll with deadlines.
"""

import glob
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

BUILD = os.environ.get("MK8S_BUILD_DIR", "build")
DEB_DIR = os.path.join(BUILD, "packaging-deb")
SKIP = 77
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from packaging_support import CONTROL_PLANE, DEB_PATHS, InstalledDaemon  # noqa: E402

# What mk8sd execs at run time, by package (see CPACK_DEBIAN_PACKAGE_DEPENDS).
RUNTIME_DEPENDS = ("containerd", "runc", "containernetworking-plugins", "iptables", "iproute2")
APT_ENV = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
APT_LOCK = ["-o", "DPkg::Lock::Timeout=300"]
ENABLED_LINK = "/etc/systemd/system/multi-user.target.wants/mk8sd.service"
ABSENT = ("not known", "unknown ok not-installed")  # dpkg's word for a package not (or no longer) here


def fail(message):
    print(f"FAIL: {message}", flush=True)
    sys.exit(1)


def check(condition, message):
    if not condition:
        fail(message)


def run(argv, timeout=600, **kwargs):
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, **kwargs)


def the_deb():
    debs = glob.glob(os.path.join(DEB_DIR, "mk8s_*.deb"))
    check(len(debs) == 1, f"expected one mk8s_*.deb in {DEB_DIR} (the deb_package test builds "
                          f"it), found {debs}")
    return os.path.abspath(debs[0])


def field(deb, name):
    return run(["dpkg-deb", "-f", deb, name]).stdout.strip()


def build():
    shutil.rmtree(DEB_DIR, ignore_errors=True)
    os.makedirs(DEB_DIR)
    os.chmod(DEB_DIR, 0o755)  # apt's sandbox user (_apt) reads local .debs from here
    made = run(["cpack", "-G", "DEB", "--config", os.path.join(BUILD, "CPackConfig.cmake"),
                "-B", os.path.abspath(DEB_DIR)], cwd=BUILD)
    check(made.returncode == 0, f"cpack failed:\n{made.stdout}{made.stderr}")
    for leftover in ("_CPack_Packages",):  # cpack's staging tree: not needed afterwards
        shutil.rmtree(os.path.join(DEB_DIR, leftover), ignore_errors=True)
    deb = the_deb()
    os.chmod(deb, 0o644)
    listing = run(["dpkg-deb", "-c", deb])
    check(listing.returncode == 0, f"dpkg-deb -c failed: {listing.stderr}")
    files = {line.split()[-1] for line in listing.stdout.splitlines()}
    for path in DEB_PATHS:
        check(path in files, f"{path} is not in the package")
    check(field(deb, "Package") == "mk8s", "Package is not mk8s")
    depends = [d.strip().split()[0] for d in field(deb, "Depends").split(",")]
    for package in RUNTIME_DEPENDS + ("libc6",):  # libc6: dpkg-shlibdeps ran
        check(package in depends, f"Depends lacks {package}: {depends}")
    recommends = field(deb, "Recommends")
    check("conntrack" in recommends and "kubectl" in recommends, f"Recommends: {recommends}")
    root = tempfile.mkdtemp(prefix="mk8s-debx-", dir="/tmp")
    try:
        # The maintainer scripts (packaging/deb): present, executable, valid sh.
        control = os.path.join(root, "DEBIAN")
        run(["dpkg-deb", "-e", deb, control])
        for script in ("postinst", "prerm", "postrm"):
            path = os.path.join(control, script)
            check(os.access(path, os.X_OK), f"the package has no executable {script}")
            check(run(["sh", "-n", path]).returncode == 0, f"{script} is not valid sh")
        with open(os.path.join(control, "postinst")) as postinst:
            check("deb-systemd-helper enable mk8sd.service" in postinst.read(),
                  "postinst does not enable mk8sd.service")
        run(["dpkg-deb", "-x", deb, root])
        with open(os.path.join(root, "usr/lib/systemd/system/mk8sd.service")) as unit:
            text = unit.read()
        check("ExecStart=/usr/bin/mk8sd " in text, "the unit does not start /usr/bin/mk8sd")
        check("KillMode=process" in text, "the unit lacks KillMode=process")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"ok: {os.path.basename(deb)}; Depends: {field(deb, 'Depends')}")


def simulate():
    deb = the_deb()
    result = run(["apt-get", "install", "--simulate", "--no-install-recommends", deb],
                 env=APT_ENV)
    check(result.returncode == 0,
          f"apt-get install --simulate {deb} failed:\n{result.stdout}{result.stderr}")
    installs = [line.split()[1] for line in result.stdout.splitlines() if line.startswith("Inst ")]
    check("mk8s" in installs, f"apt would not install mk8s:\n{result.stdout}")
    others = [name for name in installs if name != "mk8s"]
    print(f"ok: apt accepts {os.path.basename(deb)}"
          + (f"; it would also install {' '.join(others)}" if others else "; nothing else needed"))


def installed_state():
    """Every package with its status and version: what an install + purge must give back."""
    listed = run(["dpkg-query", "-W", "-f", "${Package} ${Status} ${Version}\n"]).stdout
    return "\n".join(line for line in listed.splitlines() if " not-installed" not in line)


def package_status():
    result = run(["dpkg-query", "-W", "-f", "${Status}", "mk8s"])
    return result.stdout.strip() if result.returncode == 0 else "not known"


def unit_argv(state):
    """The installed unit's ExecStart, with the test's state folder and loopback API server."""
    with open("/usr/lib/systemd/system/mk8sd.service") as unit:
        line = next(l for l in unit.read().splitlines() if l.startswith("ExecStart="))
    argv = shlex.split(line[len("ExecStart="):])
    check(argv[0] == "/usr/bin/mk8sd", f"ExecStart runs {argv[0]}")
    if "--state-dir" in argv:
        argv[argv.index("--state-dir") + 1] = state
    return argv + ["--apiserver-port", "0", "--apiserver-bind-address", "127.0.0.1",
                   *CONTROL_PLANE]


def serve_dns(root):
    state = os.path.join(root, "state")
    env = {"PATH": "/usr/bin:/bin:/usr/sbin:/sbin", "HOME": root}  # nothing from the build tree
    with InstalledDaemon(unit_argv(state), "/usr/bin/mk8s", state, root, env) as daemon:
        daemon.serves_dns()
        print("ok: the installed mk8sd serves kubernetes.default through the installed dns addon")
        daemon.mk8s("disable", "dns")


def system():
    if os.environ.get("MK8S_TEST_SYSTEM_INSTALL") != "1":
        print("SKIPPED: a real apt-get install runs only with MK8S_TEST_SYSTEM_INSTALL=1 "
              "(set by .ci/run); `deb_apt_simulate` checks the package without installing it")
        sys.exit(SKIP)
    if os.geteuid() != 0:
        print("SKIPPED: apt-get install needs root")
        sys.exit(SKIP)
    if package_status() not in ABSENT or os.path.exists("/usr/bin/mk8sd"):
        print("SKIPPED: mk8s is installed on this machine already; the test leaves it alone")
        sys.exit(SKIP)
    deb = the_deb()
    before = installed_state()
    root = tempfile.mkdtemp(prefix="mk8s-debi-", dir="/tmp")
    # postinst starts mk8sd.service where systemd runs: a full node (kubelet, kube-proxy) in the
    # host's network namespace, which no test may start. policy-rc.d (exit 101: "action
    # forbidden") is Debian's way to keep package scripts from starting services.
    policy = "/usr/sbin/policy-rc.d"
    own_policy = not os.path.exists(policy)
    if own_policy:
        with open(policy, "w") as script:
            script.write("#!/bin/sh\n# mk8s deb_test.py: no service starts during the test\nexit 101\n")
        os.chmod(policy, 0o755)
    try:
        result = run(["apt-get", "install", "-y", "--no-install-recommends", *APT_LOCK, deb],
                     env=APT_ENV)
        check(result.returncode == 0, f"apt-get install failed:\n{result.stdout}{result.stderr}")
        check(package_status() == "install ok installed", f"mk8s is {package_status()}")
        for path in DEB_PATHS:
            check(os.path.exists(path[1:]), f"{path[1:]} was not installed")
        check(os.path.islink(ENABLED_LINK), f"postinst did not enable the unit ({ENABLED_LINK})")
        serve_dns(root)
    finally:
        purged = run(["apt-get", "purge", "-y", *APT_LOCK, "mk8s"], env=APT_ENV)
        if own_policy:
            os.remove(policy)
        shutil.rmtree(root, ignore_errors=True)
    check(purged.returncode == 0, f"apt-get purge failed:\n{purged.stdout}{purged.stderr}")
    check(package_status() in ABSENT,
          f"after the purge mk8s is {package_status()}")
    for path in DEB_PATHS + ("./usr/lib/mk8s", "./usr/include/mk8s", "./usr/lib/cmake/mk8s-sdk"):
        check(not os.path.exists(path[1:]), f"{path[1:]} is left after the purge")
    check(not os.path.lexists(ENABLED_LINK), f"{ENABLED_LINK} is left after the purge")
    after = installed_state()
    check(before == after, "the package list changed: "
          + " ".join(sorted(set(after.splitlines()) ^ set(before.splitlines()))))
    print("ok: apt-get install, the installed daemon served dns, apt-get purge left the machine "
          "as it was")


if __name__ == "__main__":
    modes = {"build": build, "simulate": simulate, "system": system}
    if len(sys.argv) != 2 or sys.argv[1] not in modes:
        sys.exit(f"usage: {sys.argv[0]} {'|'.join(modes)}")
    try:
        modes[sys.argv[1]]()
    except AssertionError as error:  # packaging_support's checks
        fail(str(error))
