"""Small helpers shared by the python tests and benchmarks (stdlib only, no mk8s knowledge).

- wait_for: polls a condition with a deadline (tests never sleep blindly).
- free_port: a loopback port free for both TCP and UDP.
- stop_process: SIGTERM, a bounded wait, then SIGKILL.
- pids_with: processes whose command line mentions a text (leftover daemons of a test folder).
- cpu_seconds: utime+stime of a process from /proc/<pid>/stat.

Callers add this folder to sys.path (tests/support, relative to their own file).
"""
import os
import signal
import socket
import subprocess
import time

DEADLINE = 90  # seconds


def wait_for(condition, what="condition", timeout=DEADLINE, interval=0.05):
    """Polls `condition` until it returns a true value, which is returned. Raises AssertionError
    naming `what` once `timeout` seconds passed (the condition is asked at least once, and once
    more at the deadline)."""
    end = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() >= end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)  # poll interval


def free_port():
    """A port free for both UDP and TCP on 127.0.0.1 (at the time of asking)."""
    while True:
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.bind(("127.0.0.1", 0))
        port = tcp.getsockname()[1]
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            udp.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
        finally:
            udp.close()
            tcp.close()


def stop_process(proc, timeout=30, sig=signal.SIGTERM):
    """Sends `sig` to a running Popen (None: the caller already asked it to end, e.g. closed its
    stdin), waits up to `timeout` s, then SIGKILLs it. Safe to call on a process that already
    exited. Returns its exit code."""
    if proc.poll() is None:
        if sig is not None:
            proc.send_signal(sig)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def pids_with(text, comm=None):
    """Pids of the processes (this one excluded) whose command line contains `text`, and whose
    name (/proc/<pid>/comm) is `comm` when given."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            if comm is not None:
                with open(f"/proc/{entry}/comm") as f:
                    if f.read().strip() != comm:
                        continue
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry))
    return found


def cpu_seconds(pid):
    """utime+stime of a process (all its threads) in seconds, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
