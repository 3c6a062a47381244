"""Network namespaces for e2e tests: everything that touches iptables, routes or 10.x traffic
runs inside one of these, never in the host namespace.

NetNS creates a uniquely named namespace (so parallel runs never clash), runs commands and
long-lived processes in it through `nsenter --net=/run/netns/<name>`, and on close() stops those
processes and deletes the namespace (use it as a context manager, or call close() in a
finally/tearDown so a failing test still cleans up). cluster.py runs real mk8sd inside them.
Importing this module puts tests/support on sys.path; wait_for is mk8s_testlib's.
"""
import os
import secrets
import shutil
import signal
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "support"))
from mk8s_testlib import wait_for  # noqa: E402,F401  (re-exported for the e2e tests)


def missing_requirements(tools=("ip", "nsenter", "iptables", "iptables-save")):
    """Why netns tests cannot run here ("" if they can): root and the tools they need."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, iptables)"
    for tool in tools:
        if shutil.which(tool) is None:
            return f"needs {tool} in PATH"
    return ""


class NetNS:
    def __init__(self, tag="test"):
        self.name = f"mk8s-{tag}-{os.getpid()}-{secrets.token_hex(3)}"
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        self.path = f"/run/netns/{self.name}"
        self.procs = []
        self.run("ip", "link", "set", "lo", "up")

    def prefix(self):
        return ["nsenter", f"--net={self.path}"]

    def run(self, *argv, check=True, input=None, timeout=60, env=None):
        """Runs argv inside the namespace; returns the CompletedProcess (text mode)."""
        result = subprocess.run([*self.prefix(), *argv], capture_output=True, text=True,
                                input=input, timeout=timeout, env=env)
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} in {self.name} failed ({result.returncode}):\n"
                                 f"{result.stdout}\n{result.stderr}")
        return result

    def popen(self, *argv, **kwargs):
        """Starts a long-lived process inside the namespace; stopped by close()."""
        proc = subprocess.Popen([*self.prefix(), *argv], **kwargs)
        self.procs.append(proc)
        return proc

    def add_dummy(self, ifname, addresses):
        """A dummy interface holding `addresses` (CIDR strings), up. Where the kernel has no
        dummy driver, a bridge without ports plays the part (it holds addresses and routes)."""
        if self.run("ip", "link", "add", ifname, "type", "dummy", check=False).returncode != 0:
            self.run("ip", "link", "add", ifname, "type", "bridge")
        for address in addresses:
            self.run("ip", "addr", "add", address, "dev", ifname)
        self.run("ip", "link", "set", ifname, "up")

    def serve_text(self, ip, port, text):
        """An HTTP server on ip:port answering every GET with `text` (e.g. a backend's name)."""
        code = ("import http.server, sys\n"
                "class H(http.server.BaseHTTPRequestHandler):\n"
                "    def do_GET(self):\n"
                "        body = sys.argv[3].encode()\n"
                "        self.send_response(200)\n"
                "        self.send_header('Content-Length', str(len(body)))\n"
                "        self.end_headers()\n"
                "        self.wfile.write(body)\n"
                "    def log_message(self, *args):\n"
                "        pass\n"
                "http.server.ThreadingHTTPServer((sys.argv[1], int(sys.argv[2])), H).serve_forever()\n")
        proc = self.popen("python3", "-c", code, ip, str(port), text,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: self.run("curl", "-s", "--max-time", "2", f"http://{ip}:{port}/",
                                  check=False).stdout == text, what=f"http server on {ip}:{port}")
        return proc

    def serve_udp_text(self, ip, port, text):
        """A UDP server on ip:port answering every datagram with `text`."""
        code = ("import socket, sys\n"
                "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                "s.bind((sys.argv[1], int(sys.argv[2])))\n"
                "while True:\n"
                "    _, peer = s.recvfrom(2048)\n"
                "    s.sendto(sys.argv[3].encode(), peer)\n")
        proc = self.popen("python3", "-c", code, ip, str(port), text,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: self.udp_query(ip, port) == text, what=f"udp server on {ip}:{port}")
        return proc

    def udp_query(self, ip, port, source_port=0, timeout=1.0):
        """Sends one datagram from inside the namespace (from `source_port`, 0 = any) and returns
        the answer's text, or None when nothing came back in time."""
        code = ("import socket, sys\n"
                "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
                "s.bind(('', int(sys.argv[3])))\n"
                "s.settimeout(float(sys.argv[4]))\n"
                "s.sendto(b'?', (sys.argv[1], int(sys.argv[2])))\n"
                "try:\n"
                "    print(s.recv(2048).decode(), end='')\n"
                "except (socket.timeout, ConnectionRefusedError):\n"
                "    sys.exit(1)\n")
        r = self.run("python3", "-c", code, ip, str(port), str(source_port), str(timeout),
                     check=False)
        return r.stdout if r.returncode == 0 else None

    def close(self):
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(self.procs):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = []
        subprocess.run(["ip", "netns", "del", self.name], check=False)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
