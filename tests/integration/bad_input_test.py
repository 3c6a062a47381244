#!/usr/bin/env python3
"""Hostile or wrong requests against a real mk8sd: each gets the right Status, nothing it held is
lost, and the daemon and its control loops carry on (wrongly typed fields, fuzzed bodies, huge
bodies, future resource versions, uid preconditions). The Cluster harness is kubectl_test's.
"""
import base64
import json
import os
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
from kubectl_test import Cluster  # noqa: E402  (also sets the control-plane-only components)
from mk8s_testlib import wait_for  # noqa: E402


class BadInputTest(unittest.TestCase):
    """Hostile or wrong requests get the right Status, and the store holds what it held before."""

    @classmethod
    def setUpClass(cls):
        cls.c = Cluster()
        cls.c.kubectl("create", "configmap", "keep", "--from-literal=a=b")

    @classmethod
    def tearDownClass(cls):
        cls.c.stop()

    def snapshot(self):
        status, _, body = self.c.https("GET", "/api/v1/configmaps")
        self.assertEqual(status, 200)
        items = json.loads(body)["items"]
        return sorted((i["metadata"]["namespace"], i["metadata"]["name"], i["metadata"]["resourceVersion"]) for i in items)

    def expect_status(self, response, code, reason):
        status, content_type, body = response
        self.assertEqual(status, code, body)
        self.assertTrue(content_type.startswith("application/json"))
        parsed = json.loads(body)
        self.assertEqual(parsed["kind"], "Status")
        self.assertEqual(parsed["code"], code)
        self.assertEqual(parsed["reason"], reason)
        return parsed

    def test_bad_requests_change_nothing(self):
        before = self.snapshot()
        path = "/api/v1/namespaces/default/configmaps"
        json_type = {"Content-Type": "application/json"}
        self.expect_status(self.c.https("POST", path, b'{"apiVersion":"v1","kind":"Conf', json_type), 400, "BadRequest")
        self.expect_status(self.c.https("POST", path, b"[1,2,3]", json_type), 400, "BadRequest")
        big = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "big"},
                          "data": {"x": "y" * (3 * 1024 * 1024 + 10)}}).encode()
        self.expect_status(self.c.https("POST", path, big, json_type), 413, "RequestEntityTooLarge")
        invalid = self.expect_status(self.c.https("POST", path, json.dumps(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Bad_Name"}}).encode(), json_type),
            422, "Invalid")
        self.assertEqual(invalid["details"]["causes"][0]["field"], "metadata.name")
        self.expect_status(self.c.https("POST", path, b"a: b", {"Content-Type": "text/csv"}), 415, "UnsupportedMediaType")
        self.expect_status(self.c.https("POST", path, b"\x00\x01garbage",
                                        {"Content-Type": "application/vnd.kubernetes.protobuf"}), 400, "BadRequest")
        self.expect_status(self.c.https("POST", path + "?fieldValidation=Strict", json.dumps(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "strict"}, "dta": {}}).encode(),
            json_type), 400, "BadRequest")
        # A stale resourceVersion is a conflict.
        status, _, body = self.c.https("GET", path + "/keep")
        current = json.loads(body)
        current["data"]["a"] = "changed"
        current["metadata"]["resourceVersion"] = "1"
        self.expect_status(self.c.https("PUT", path + "/keep", json.dumps(current).encode(), json_type), 409, "Conflict")
        self.expect_status(self.c.https("GET", path + "/missing"), 404, "NotFound")
        self.expect_status(self.c.https("GET", path, cert=False), 401, "Unauthorized")
        self.expect_status(self.c.https("GET", path, cert=False, token="not-a-token"), 401, "Unauthorized")
        self.expect_status(self.c.https("GET", path, cert=False, token="a.b.c"), 401, "Unauthorized")
        self.assertEqual(self.c.https("GET", "/version", cert=False)[0], 200)
        self.assertEqual(self.c.https("GET", "/healthz", cert=False)[0], 200)
        self.assertEqual(self.c.https("GET", "/openapi/v2")[0], 404)
        self.assertEqual(before, self.snapshot())

    def test_expect_100_continue_with_the_real_curl(self):
        """curl sends "Expect: 100-continue" for bodies over 1 MB and waits for the interim
        answer before the body; an oversize body gets its 413 without being uploaded."""
        self.c.tls_context(True)  # writes admin.crt/admin.key
        ca = os.path.join(self.c.dir, "ca.crt")
        with open(ca, "wb") as f:
            f.write(base64.b64decode(self.c.config()["clusters"][0]["cluster"]["certificate-authority-data"]))
        path = f"https://127.0.0.1:{self.c.port}/api/v1/namespaces/default/configmaps"

        def upload(name, size):
            body = os.path.join(self.c.dir, name + ".json")
            with open(body, "w") as f:
                json.dump({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name},
                           "data": {"x": "y" * size}}, f)
            # A server that never answers 100 would make curl wait the whole timeout, then say so.
            result = subprocess.run(
                ["curl", "-sS", "-v", "--expect100-timeout", "30", "--cacert", ca,
                 "--cert", os.path.join(self.c.dir, "admin.crt"),
                 "--key", os.path.join(self.c.dir, "admin.key"),
                 "-H", "Content-Type: application/json", "--data-binary", "@" + body,
                 "-o", os.devnull, "-w", "%{http_code}", path],
                capture_output=True, text=True, timeout=60)
            self.assertIn("> Expect: 100-continue", result.stderr)
            self.assertNotIn("Done waiting for 100-continue", result.stderr)
            return result

        uploaded = upload("large-upload", 2 * 1024 * 1024)
        self.assertEqual(uploaded.stdout, "201", uploaded.stderr[-2000:])
        self.assertIn("< HTTP/1.1 100 Continue", uploaded.stderr)
        refused = upload("too-large-upload", 4 * 1024 * 1024)
        self.assertEqual(refused.stdout, "413", refused.stderr[-2000:])
        self.assertNotIn("100 Continue", refused.stderr)
        status, _, body = self.c.https("GET", "/api/v1/namespaces/default/configmaps/large-upload")
        self.assertEqual(status, 200)
        self.assertEqual(len(json.loads(body)["data"]["x"]), 2 * 1024 * 1024)
        self.c.kubectl("delete", "configmap", "large-upload")

    def test_random_bodies_never_crash_the_daemon(self):
        import random
        rng = random.Random(20261127)
        before = self.snapshot()
        paths = ["/api/v1/namespaces/default/configmaps", "/apis/apps/v1/namespaces/default/deployments",
                 "/api/v1/namespaces", "/api/v1/namespaces/default/configmaps/fuzzed",
                 "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"]
        types = ["application/json", "application/yaml", "application/vnd.kubernetes.protobuf",
                 "application/merge-patch+json", "application/strategic-merge-patch+json",
                 "application/json-patch+json", "application/apply-patch+yaml"]
        seeds = [b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}}', b"k8s\x00\x0a\x0c\x0a\x02v1",
                 b"- a\n- b: [", b'[{"op":"remove","path":"/metadata"}]', b"{}"]
        for _ in range(300):
            body = bytearray(rng.choice(seeds))
            for _ in range(rng.randint(0, 6)):
                if body and rng.random() < 0.5:
                    body[rng.randrange(len(body))] = rng.randrange(256)
                else:
                    body.insert(rng.randrange(len(body) + 1), rng.randrange(256))
            method = rng.choice(["POST", "PUT", "PATCH"])
            status, _, _ = self.c.https(method, rng.choice(paths), bytes(body),
                                        {"Content-Type": rng.choice(types)})
            self.assertLess(status, 500, f"{method} {body!r}")
        self.assertEqual(self.c.https("GET", "/healthz", cert=False)[0], 200)
        self.assertEqual(self.c.proc.poll(), None, "mk8sd died")
        # Whatever the fuzz managed to create is new; everything that was there is untouched.
        after = self.snapshot()
        self.assertEqual(before, [item for item in after if item in before or item[1] == "keep"])

    def test_wrongly_typed_objects_are_refused_as_go_decoding_refuses_them(self):
        # Found by fuzzing: a CSR whose signerName was an array crashed the daemon in admission.
        status = self.c.https("POST", "/apis/certificates.k8s.io/v1/certificatesigningrequests",
                              json.dumps({"apiVersion": "certificates.k8s.io/v1",
                                          "kind": "CertificateSigningRequest",
                                          "metadata": {"name": "typed"},
                                          "spec": {"request": "AAAA", "signerName": [None],
                                                   "usages": ["client auth"]}}).encode(),
                              {"Content-Type": "application/json"})
        parsed = self.expect_status(status, 400, "BadRequest")
        self.assertEqual(parsed["message"],
                         'CertificateSigningRequest in version "v1" cannot be handled as a '
                         'CertificateSigningRequest: json: cannot unmarshal array into Go struct '
                         'field CertificateSigningRequestSpec.spec.signerName of type string')
        # kubectl shows the same words; a patch that would store a wrong type is refused too.
        bad = self.c.kubectl("create", "-f", "-", check=False, input=json.dumps(
            {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "typed"},
             "spec": {"replicas": "three", "selector": {"matchLabels": {"a": "b"}},
                      "template": {"metadata": {"labels": {"a": "b"}},
                                   "spec": {"containers": [{"name": "c", "image": "x"}]}}}}))
        self.assertNotEqual(bad.returncode, 0)
        self.assertIn("cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas "
                      "of type int32", bad.stderr)
        refused = self.c.kubectl("patch", "configmap", "keep", "--type=merge", "-p",
                                 '{"metadata": {"labels": {"n": 5}}}', check=False)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("ObjectMeta.metadata.labels of type string", refused.stderr)
        # Found by fuzzing too: a ReplicaSet with replicas -1 crashed its controller.
        negative = self.c.kubectl("create", "-f", "-", check=False, input=json.dumps(
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": {"name": "negative"},
             "spec": {"replicas": -1, "selector": {"matchLabels": {"a": "b"}},
                      "template": {"metadata": {"labels": {"a": "b"}},
                                   "spec": {"containers": [{"name": "c", "image": "x"}]}}}}))
        self.assertNotEqual(negative.returncode, 0)
        self.assertIn("spec.replicas: Invalid value: -1: must be greater than or equal to 0",
                      negative.stderr)
        # Found by fuzzing as well: a DaemonSet whose selector expressions did not select its own
        # template released every pod it made, a ReplicaSet with a wider selector adopted and
        # deleted them, and the two looped at full CPU. Upstream's validation refuses it.
        unselected = self.c.kubectl("create", "-f", "-", check=False, input=json.dumps(
            {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "unselected"},
             "spec": {"selector": {"matchLabels": {"a": "b"}, "matchExpressions": [
                 {"key": "a", "operator": "NotIn", "values": ["b"]}]},
                      "template": {"metadata": {"labels": {"a": "b"}},
                                   "spec": {"containers": [{"name": "c", "image": "x"}]}}}}))
        self.assertNotEqual(unselected.returncode, 0)
        self.assertIn("`selector` does not match template `labels`", unselected.stderr)
        # A null is Go's zero value: the field is simply not there.
        self.c.kubectl("create", "-f", "-", input=json.dumps(
            {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "nulls", "labels": None}, "data": {"k": None}}))
        stored = json.loads(self.c.kubectl("get", "configmap", "nulls", "-o", "json").stdout)
        self.assertNotIn("labels", stored["metadata"])
        self.assertEqual(stored["data"], {"k": ""})

    def test_a_uid_in_the_body_is_a_precondition(self):
        self.c.kubectl("create", "configmap", "uid-guarded", "--from-literal=a=b")
        uid = json.loads(self.c.kubectl("get", "cm", "uid-guarded", "-o", "json").stdout)[
            "metadata"]["uid"]
        path = "/api/v1/namespaces/default/configmaps/uid-guarded"
        patch = {"Content-Type": "application/merge-patch+json"}
        stale = self.c.https("PATCH", path, json.dumps(
            {"metadata": {"uid": "0000-not-the-one"}, "data": {"a": "c"}}).encode(), patch)
        parsed = self.expect_status(stale, 409, "Conflict")
        self.assertEqual(parsed["message"],
                         'Operation cannot be fulfilled on configmaps "uid-guarded": Precondition '
                         f'failed: UID in precondition: 0000-not-the-one, UID in object meta: {uid}')
        ok = self.c.https("PATCH", path, json.dumps(
            {"metadata": {"uid": uid}, "data": {"a": "c"}}).encode(), patch)
        self.assertEqual(ok[0], 200, ok[2])
        self.assertEqual(json.loads(ok[2])["data"], {"a": "c"})

    def test_wrongly_typed_fields_anywhere_never_crash_the_daemon(self):
        import copy
        import random
        rng = random.Random(20261128)
        template = {"metadata": {"labels": {"app": "t"}},
                    "spec": {"containers": [{"name": "c", "image": "busybox",
                                             "ports": [{"containerPort": 80}],
                                             "resources": {"requests": {"cpu": "10m"}}}],
                             "tolerations": [{"key": "k", "operator": "Exists"}]}}
        selector = {"matchLabels": {"app": "t"}}
        seeds = [
            ("/api/v1/namespaces/default/pods", {"apiVersion": "v1", "kind": "Pod", **template}),
            ("/apis/apps/v1/namespaces/default/deployments",
             {"apiVersion": "apps/v1", "kind": "Deployment",
              "spec": {"replicas": 0, "selector": selector, "template": template}}),
            ("/apis/batch/v1/namespaces/default/jobs",
             {"apiVersion": "batch/v1", "kind": "Job", "spec": {"completions": 1, "template": {
                 **template, "spec": {**template["spec"], "restartPolicy": "Never"}}}}),
            ("/api/v1/namespaces/default/services",
             {"apiVersion": "v1", "kind": "Service",
              "spec": {"selector": {"app": "t"}, "ports": [{"port": 80, "targetPort": 8080}]}}),
            ("/apis/certificates.k8s.io/v1/certificatesigningrequests",
             {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest",
              "spec": {"request": "AAAA", "signerName": "kubernetes.io/kube-apiserver-client",
                       "usages": ["client auth"]}}),
            ("/apis/policy/v1/namespaces/default/poddisruptionbudgets",
             {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
              "spec": {"minAvailable": 1, "selector": selector}}),
        ]
        weird = [None, True, 0, -1, 2 ** 31, 2 ** 64, 1.5, "", "x", "-1", "100%", [], [None],
                 {}, {"a": None}, [[[]]]]

        def paths(value, prefix=()):
            yield prefix
            children = value.items() if isinstance(value, dict) else (
                enumerate(value) if isinstance(value, list) else ())
            for key, child in children:
                yield from paths(child, prefix + (key,))

        for i in range(200):
            url, seed = rng.choice(seeds)
            body = copy.deepcopy(seed)
            spots = [p for p in paths(body) if len(p) > 1 or p and p[0] not in
                     ("apiVersion", "kind", "metadata")]
            for _ in range(rng.randint(1, 2)):
                spot = rng.choice(spots)
                try:  # an earlier mutation may have replaced part of the path
                    parent = body
                    for key in spot[:-1]:
                        parent = parent[key]
                    parent[spot[-1]] = copy.deepcopy(rng.choice(weird))
                except (KeyError, IndexError, TypeError):
                    pass
            if not isinstance(body.get("metadata"), dict):
                body["metadata"] = {}
            body["metadata"]["name"] = f"typed-{i}"
            status, _, reply = self.c.https("POST", url, json.dumps(body).encode(),
                                            {"Content-Type": "application/json"})
            self.assertLess(status, 500, f"{json.dumps(body)} -> {reply[:300]!r}")
        # The controllers and the scheduler read everything stored above and carry on: a Job
        # created after it gets its pod (job controller), which is judged (scheduler: no nodes).
        self.c.kubectl("create", "job", "typed-sentinel", "--image=busybox")

        def judged_pod():
            out = self.c.kubectl("get", "pods", "-l", "job-name=typed-sentinel", "-o",
                                 "json").stdout
            items = json.loads(out)["items"]
            return items and any(c["type"] == "PodScheduled" and c["status"] == "False"
                                 for c in items[0].get("status", {}).get("conditions", []))
        wait_for(judged_pod, what="the sentinel Job's pod, judged by the scheduler")
        self.assertIsNone(self.c.proc.poll(), "mk8sd died")

    def test_future_resource_version_does_not_hold_up_the_server(self):
        """Lists asking for a resourceVersion that never comes wait without a transport thread:
        more of them than the server has threads are in flight while other requests are
        answered, and each ends in 504 Timeout with upstream's "Too large resource version"."""
        future = "/api/v1/namespaces/default/configmaps?resourceVersion=99999999999"
        results = []

        def slow_list():
            results.append(self.c.https("GET", future))
        waiting = [threading.Thread(target=slow_list) for _ in range(4)]
        for thread in waiting:
            thread.start()
        answered_meanwhile = 0
        while any(thread.is_alive() for thread in waiting) and answered_meanwhile < 20:
            status, _, _ = self.c.https("GET", "/api/v1/namespaces/default/configmaps/keep")
            self.assertEqual(status, 200)
            answered_meanwhile += 1
        self.assertEqual(answered_meanwhile, 20, "requests were held up behind the waiting lists")
        self.assertEqual(len(results), 0, "a future resourceVersion was answered before its 5 s")
        for thread in waiting:
            thread.join()
        self.assertEqual(len(results), 4)
        for response in results:
            parsed = self.expect_status(response, 504, "Timeout")
            self.assertIn("Too large resource version: 99999999999", parsed["message"])

    def test_static_admin_token_works(self):
        with open(os.path.join(self.c.state, "credentials", "known_tokens.csv")) as f:
            tokens = f.read()
        token = tokens.split(",")[0]
        status, _, _ = self.c.https("GET", "/api/v1/namespaces", cert=False, token=token)
        self.assertEqual(status, 200)


if __name__ == "__main__":
    unittest.main(verbosity=2)
