"""The dns benchmark's peer: Debian's Knot DNS (knotd) serving the same cluster.local records.

Why Knot: the dns addon answers cluster names authoritatively from memory (AA set, no recursion,
no cache in the path). Knot is an authoritative-only server that answers from a compiled
in-memory zone, like the addon, with a thread per UDP socket (SO_REUSEPORT) and
recvmmsg/sendmmsg batching: the fastest well-kept authoritative server Debian packages, so
beating it is a real bar. NSD is the same kind but forks worker processes; unbound answers
local-data through a resolver's pipeline (local-zone lookup before the cache), which measures
a recursive server, not an authoritative one.

KnotPeer writes its config, zone file, run and storage folders into a folder of the caller's,
listens on 127.0.0.1@port only, runs in the foreground as the calling user, and is stopped (and
waited for) by stop(). Nothing is written outside that folder.
"""

import os
import shutil
import signal
import subprocess

KNOTD = shutil.which("knotd") or ("/usr/sbin/knotd" if os.path.exists("/usr/sbin/knotd") else None)


def zone_text(domain, records, ttl):
    """A zone file for `domain` with the addon's SOA/NS shape and one A record per (name, ip)."""
    lines = [f"$ORIGIN {domain}.", f"$TTL {ttl}",
             f"@ SOA ns.dns.{domain}. hostmaster.{domain}. 1 7200 1800 86400 {ttl}",
             f"@ NS ns.dns.{domain}."]
    suffix = "." + domain
    for name, ip in records:
        if not name.endswith(suffix):
            raise ValueError(f"{name} is not inside {domain}")
        lines.append(f"{name[:-len(suffix)]} A {ip}")
    return "\n".join(lines) + "\n"


class KnotPeer:
    """knotd on 127.0.0.1:`port` serving `records` [(fqdn without the dot, ipv4)] in `domain`."""

    def __init__(self, folder, port, records, domain="cluster.local", ttl=5, udp_workers=None):
        self.folder = folder
        self.port = port
        os.makedirs(os.path.join(folder, "run"), exist_ok=True)
        os.makedirs(os.path.join(folder, "storage"), exist_ok=True)
        zone_file = os.path.join(folder, f"{domain}.zone")
        with open(zone_file, "w") as out:
            out.write(zone_text(domain, records, ttl))
        workers = f"    udp-workers: {udp_workers}\n" if udp_workers else ""
        self.config = os.path.join(folder, "knot.conf")
        with open(self.config, "w") as out:
            out.write(
                "server:\n"
                f"    rundir: \"{folder}/run\"\n"
                f"    listen: 127.0.0.1@{port}\n"
                f"{workers}"
                "    background-workers: 1\n"
                "    tcp-workers: 1\n"
                "log:\n"
                "  - target: stderr\n"
                "    any: warning\n"
                "database:\n"
                f"    storage: \"{folder}/storage\"\n"
                "control:\n"
                f"    listen: \"{folder}/run/knot.sock\"\n"
                "template:\n"
                "  - id: default\n"
                f"    storage: \"{folder}/storage\"\n"
                "    zonefile-sync: -1\n"
                "    journal-content: none\n"
                "zone:\n"
                f"  - domain: {domain}\n"
                f"    file: \"{zone_file}\"\n")
        self.log = open(os.path.join(folder, "knotd.out"), "w")
        self.proc = None

    def start(self):
        if KNOTD is None:
            raise RuntimeError("knotd not installed (scripts/install-deps.sh --bench)")
        knotc = shutil.which("knotc") or "/usr/sbin/knotc"
        check = subprocess.run([knotc, "--config", self.config, "conf-check"],
                               capture_output=True, text=True)
        if check.returncode != 0:
            raise RuntimeError(f"knot.conf rejected: {check.stdout}{check.stderr}")
        self.proc = subprocess.Popen([KNOTD, "--config", self.config], stdout=self.log,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def output(self):
        if not self.log.closed:
            self.log.flush()
        with open(os.path.join(self.folder, "knotd.out")) as log:
            return log.read()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
