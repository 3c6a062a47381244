#!/usr/bin/env python3
"""Certificates renewed while mk8sd runs: a real mk8sd (control plane only) checks its credentials
folder every second (--certificate-check-interval 1). The test puts certificates that expire in two
days in place of the API server's serving certificate, the admin certificate and the API server's
kubelet-client certificate (signed by the cluster CA with the openssl CLI), and checks that the
daemon renews each one and uses it without a restart: the next TLS handshake presents the renewed
serving certificate, the admin kubeconfig carries the renewed admin certificate, and kubectl keeps
working throughout. Without the CA key nothing is renewed and nothing else changes.

Environment (set by ctest): MK8SD_BIN. Waits poll with deadlines.
"""
import base64
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kubectl_test as kt  # noqa: E402  (the Cluster fixture; sets the control-plane default)

TWO_DAYS = "2"
THREE_HUNDRED_DAYS_SECONDS = str(300 * 24 * 3600)


def first_pem_block(text):
    end = "-----END CERTIFICATE-----"
    return text[:text.index(end) + len(end)] + "\n"


def der(pem_text):
    return ssl.PEM_cert_to_DER_cert(first_pem_block(pem_text))


def lasts_300_days(pem_text):
    """True when the certificate is valid for at least 300 more days (openssl -checkend)."""
    result = subprocess.run(["openssl", "x509", "-noout", "-checkend", THREE_HUNDRED_DAYS_SECONDS],
                            input=first_pem_block(pem_text), capture_output=True, text=True)
    return result.returncode == 0


class CertificateRenewalTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if shutil.which("openssl") is None:
            raise unittest.SkipTest("the openssl CLI is not installed")
        cls.c = kt.Cluster(extra_args=("--certificate-check-interval", "1"))
        cls.credentials = os.path.join(cls.c.state, "credentials")
        cls.work = tempfile.mkdtemp(prefix="mk8s-certs-")

    @classmethod
    def tearDownClass(cls):
        cls.c.stop()
        shutil.rmtree(cls.work, ignore_errors=True)

    def log_text(self):
        with open(os.path.join(self.c.state, "logs", "mk8sd.log")) as f:
            return f.read()

    def read(self, name):
        with open(os.path.join(self.credentials, name)) as f:
            return f.read()

    def served(self):
        return ssl.get_server_certificate(("127.0.0.1", self.c.port), timeout=10)

    def plant_short_lived(self, name, subject, extensions):
        """Replaces credentials/<name>.crt/.key with a pair signed by the cluster CA that expires
        in two days, as a certificate near its end would be."""
        key, csr, crt, ext = (os.path.join(self.work, name + suffix)
                              for suffix in (".key", ".csr", ".crt", ".ext"))
        with open(ext, "w") as f:
            f.write("\n".join(extensions) + "\n")
        subprocess.run(["openssl", "req", "-new", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-subj", subject,
                        "-out", csr], check=True, capture_output=True)
        subprocess.run(["openssl", "x509", "-req", "-in", csr,
                        "-CA", os.path.join(self.credentials, "ca.crt"),
                        "-CAkey", os.path.join(self.credentials, "ca.key"),
                        "-set_serial", str(int.from_bytes(os.urandom(8), "big")),
                        "-days", TWO_DAYS, "-extfile", ext, "-out", crt],
                       check=True, capture_output=True)
        with open(crt) as f:
            planted = f.read()
        for suffix in (".key", ".crt"):  # atomic renames; the key first
            temp = os.path.join(self.credentials, name + suffix + ".planted")
            shutil.copyfile(os.path.join(self.work, name + suffix), temp)
            os.chmod(temp, 0o600)
            os.replace(temp, os.path.join(self.credentials, name + suffix))
        self.assertFalse(lasts_300_days(planted))
        return planted

    def renewed(self, name, planted):
        current = self.read(name + ".crt")
        return der(current) != der(planted) and lasts_300_days(current)

    def test_1_serving_certificate_is_renewed_and_served_without_a_restart(self):
        original = self.served()
        self.assertEqual(der(original), der(self.read("server.crt")))
        pid = self.c.proc.pid
        planted = self.plant_short_lived(
            "server", "/CN=kube-apiserver",
            ["subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes",
             "extendedKeyUsage=serverAuth", "keyUsage=critical,digitalSignature"])
        kt.wait_for(lambda: self.renewed("server", planted), what="server.crt renewed")
        kt.wait_for(lambda: der(self.served()) == der(self.read("server.crt")),
                    what="the renewed serving certificate in the next handshake")
        self.assertNotEqual(der(self.served()), der(original))
        self.assertEqual(self.c.proc.pid, pid)
        self.assertIsNone(self.c.proc.poll(), "mk8sd restarted or exited")
        self.c.kubectl("get", "ns", "kube-system")  # verifies the new certificate against the CA

    def test_2_admin_certificate_is_renewed_into_the_kubeconfig(self):
        kubeconfig = os.path.join(self.credentials, "client.config")

        def kubeconfig_admin_cert():
            user = self.c.config()["users"][0]["user"]
            return base64.b64decode(user["client-certificate-data"]).decode()

        before = kubeconfig_admin_cert()
        planted = self.plant_short_lived(
            "admin", "/O=system:masters/CN=admin",
            ["extendedKeyUsage=clientAuth", "keyUsage=critical,digitalSignature"])
        kt.wait_for(lambda: self.renewed("admin", planted), what="admin.crt renewed")
        kt.wait_for(lambda: der(kubeconfig_admin_cert()) == der(self.read("admin.crt")),
                    what="the kubeconfig to carry the renewed admin certificate")
        self.assertNotEqual(der(kubeconfig_admin_cert()), der(before))
        self.assertEqual(os.stat(kubeconfig).st_mode & 0o777, 0o600)
        self.c.kubectl("auth", "can-i", "get", "pods")  # the renewed certificate authenticates

    def test_3_kubelet_client_certificate_is_renewed(self):
        planted = self.plant_short_lived(
            "apiserver-kubelet-client", "/O=system:masters/CN=kube-apiserver-kubelet-client",
            ["extendedKeyUsage=clientAuth", "keyUsage=critical,digitalSignature"])
        kt.wait_for(lambda: self.renewed("apiserver-kubelet-client", planted),
                    what="apiserver-kubelet-client.crt renewed")
        kt.wait_for(lambda: any("renewed and in use" in line and "kubelet-client" in line
                                for line in self.log_text().splitlines()),
                    what="the log to say the kubelet-client certificate is in use")

    def test_4_without_the_ca_key_nothing_is_renewed_or_created(self):
        ca_key = os.path.join(self.credentials, "ca.key")
        aside = os.path.join(self.work, "ca.key.aside")
        ca_before = self.read("ca.crt")
        served_before = self.served()
        shutil.move(ca_key, aside)
        try:
            kt.wait_for(lambda: "ca.key is gone" in self.log_text(),
                        what="the log to name the missing CA key")
            self.assertFalse(os.path.exists(ca_key), "a new CA key was created")
            self.assertEqual(self.read("ca.crt"), ca_before)
            self.assertEqual(der(self.served()), der(served_before))
            self.c.kubectl("get", "ns", "default")
        finally:
            shutil.move(aside, ca_key)

if __name__ == "__main__":
    unittest.main(verbosity=2)
