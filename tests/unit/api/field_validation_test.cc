#include "api/field_validation.h"

#include <gtest/gtest.h>

namespace mk8s::api {
namespace {

using Problems = std::vector<std::string>;

Problems Check(std::string_view body, std::string_view group, std::string_view kind) {
  Result<Problems> r = StrictFieldProblems(body, group, "v1", kind);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return r.ok() ? *r : Problems{"<error>"};
}

// A Pod manifest that sets (nearly) every field kubectl users write, nested and all.
constexpr char kFullPod[] = R"({
  "apiVersion": "v1", "kind": "Pod",
  "metadata": {"name": "p", "namespace": "default", "labels": {"app": "web"},
    "annotations": {"a": "b"}, "generateName": "p-", "finalizers": ["x/y"],
    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "rs",
      "uid": "u", "controller": true, "blockOwnerDeletion": true}],
    "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "v1",
      "time": "2024-01-01T00:00:00Z", "fieldsType": "FieldsV1",
      "fieldsV1": {"f:metadata": {"f:labels": {".": {}, "f:anything": {}}}}}]},
  "spec": {
    "volumes": [
      {"name": "cfg", "configMap": {"name": "cfg", "items": [{"key": "k", "path": "p", "mode": 420}],
        "defaultMode": 420, "optional": true}},
      {"name": "sec", "secret": {"secretName": "s"}},
      {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "1Gi"}},
      {"name": "host", "hostPath": {"path": "/var", "type": "Directory"}},
      {"name": "proj", "projected": {"sources": [{"serviceAccountToken": {"path": "t",
        "expirationSeconds": 3600}}, {"downwardAPI": {"items": [{"path": "l",
        "fieldRef": {"fieldPath": "metadata.labels"}}]}}]}},
      {"name": "pvc", "persistentVolumeClaim": {"claimName": "c", "readOnly": true}}],
    "initContainers": [{"name": "init", "image": "busybox", "command": ["sh", "-c", "true"],
      "restartPolicy": "Always"}],
    "containers": [{
      "name": "web", "image": "nginx:1.27", "imagePullPolicy": "IfNotPresent",
      "command": ["nginx"], "args": ["-g", "daemon off;"], "workingDir": "/",
      "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP", "hostPort": 8080,
        "hostIP": "0.0.0.0"}],
      "env": [{"name": "A", "value": "1"},
        {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k", "optional": false}}},
        {"name": "C", "valueFrom": {"configMapKeyRef": {"name": "c", "key": "k"}}},
        {"name": "D", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "spec.nodeName"}}},
        {"name": "E", "valueFrom": {"resourceFieldRef": {"containerName": "web",
          "resource": "limits.cpu", "divisor": "1m"}}}],
      "envFrom": [{"prefix": "X_", "configMapRef": {"name": "c"}}, {"secretRef": {"name": "s"}}],
      "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "100m"}},
      "volumeMounts": [{"name": "cfg", "mountPath": "/etc/cfg", "readOnly": true,
        "subPath": "x", "mountPropagation": "None"}],
      "livenessProbe": {"httpGet": {"path": "/healthz", "port": 80, "scheme": "HTTP",
        "httpHeaders": [{"name": "X", "value": "y"}]}, "initialDelaySeconds": 3,
        "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
      "readinessProbe": {"tcpSocket": {"port": "http"}},
      "startupProbe": {"exec": {"command": ["true"]}},
      "lifecycle": {"preStop": {"sleep": {"seconds": 5}}, "postStart": {"exec": {"command": ["x"]}}},
      "securityContext": {"runAsUser": 1000, "runAsNonRoot": true, "privileged": false,
        "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
        "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"}},
      "terminationMessagePath": "/dev/termination-log", "terminationMessagePolicy": "File",
      "stdin": false, "stdinOnce": false, "tty": false}],
    "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "activeDeadlineSeconds": 60,
    "dnsPolicy": "ClusterFirst", "nodeSelector": {"kubernetes.io/os": "linux"},
    "serviceAccountName": "default", "automountServiceAccountToken": false,
    "nodeName": "n1", "hostNetwork": false, "hostPID": false, "hostIPC": false,
    "shareProcessNamespace": false,
    "securityContext": {"fsGroup": 2000, "runAsGroup": 3000, "supplementalGroups": [1, 2],
      "sysctls": [{"name": "net.core.somaxconn", "value": "1024"}]},
    "imagePullSecrets": [{"name": "reg"}], "hostname": "h", "subdomain": "s",
    "affinity": {
      "nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "k", "operator": "In", "values": ["v"]}]}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1,
          "preference": {"matchFields": [{"key": "metadata.name", "operator": "In",
          "values": ["n1"]}]}}]},
      "podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 100,
        "podAffinityTerm": {"labelSelector": {"matchLabels": {"app": "web"}},
        "topologyKey": "kubernetes.io/hostname"}}]}},
    "schedulerName": "default-scheduler",
    "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute",
      "tolerationSeconds": 30}],
    "hostAliases": [{"ip": "1.2.3.4", "hostnames": ["a"]}],
    "priorityClassName": "p", "priority": 0,
    "dnsConfig": {"nameservers": ["1.1.1.1"], "searches": ["x"],
      "options": [{"name": "ndots", "value": "2"}]},
    "readinessGates": [{"conditionType": "x"}], "runtimeClassName": "runc",
    "enableServiceLinks": true, "preemptionPolicy": "Never", "overhead": {"cpu": "1m"},
    "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone",
      "whenUnsatisfiable": "DoNotSchedule", "labelSelector": {"matchExpressions": [
      {"key": "app", "operator": "Exists"}]}}],
    "os": {"name": "linux"}, "hostUsers": true, "schedulingGates": [{"name": "g"}]},
  "status": {"phase": "Running", "podIP": "10.1.0.5", "podIPs": [{"ip": "10.1.0.5"}],
    "hostIP": "10.0.0.1", "startTime": "2024-01-01T00:00:00Z", "qosClass": "Burstable",
    "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": null}],
    "containerStatuses": [{"name": "web", "ready": true, "restartCount": 0, "image": "nginx",
      "imageID": "sha", "containerID": "containerd://x", "started": true,
      "state": {"running": {"startedAt": "2024-01-01T00:00:00Z"}},
      "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}
})";

TEST(FieldValidationTest, FullPodIsClean) { EXPECT_EQ(Check(kFullPod, "", "Pod"), Problems{}); }

TEST(FieldValidationTest, FullDeploymentIsClean) {
  constexpr char kDeploy[] = R"({"apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "labels": {"app": "web"}},
    "spec": {"replicas": 3, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
      "minReadySeconds": 0, "paused": false,
      "selector": {"matchLabels": {"app": "web"}},
      "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%",
        "maxUnavailable": 1}},
      "template": {"metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "nginx", "image": "nginx",
          "ports": [{"containerPort": 80}]}]}}},
    "status": {"replicas": 3, "conditions": [{"type": "Available", "status": "True",
      "lastUpdateTime": "2024-01-01T00:00:00Z", "reason": "x", "message": "y"}]}})";
  EXPECT_EQ(Check(kDeploy, "apps", "Deployment"), Problems{});
}

TEST(FieldValidationTest, UnknownFieldsAtNestedPaths) {
  constexpr char kBody[] = R"({"apiVersion": "apps/v1", "kind": "Deployment",
    "metadata": {"name": "web", "nmae": "x"},
    "spec": {"template": {"spec": {"containers": [
      {"name": "a", "image": "nginx"},
      {"name": "b", "imagePullPolcy": "Always", "ports": [{"containerPort": 80, "prot": "TCP"}]}
    ]}}},
    "extra": {"deep": [1, 2, {"x": 1}]}})";
  EXPECT_EQ(Check(kBody, "apps", "Deployment"),
            (Problems{"unknown field \"metadata.nmae\"",
                      "unknown field \"spec.template.spec.containers[1].imagePullPolcy\"",
                      "unknown field \"spec.template.spec.containers[1].ports[0].prot\"",
                      "unknown field \"extra\""}));
}

TEST(FieldValidationTest, DuplicateFields) {
  constexpr char kBody[] = R"({"apiVersion": "v1", "kind": "ConfigMap",
    "metadata": {"name": "a", "name": "b", "labels": {"x": "1", "x": "2"}},
    "data": {"k": "v"}, "kind": "ConfigMap"})";
  EXPECT_EQ(Check(kBody, "", "ConfigMap"),
            (Problems{"duplicate field \"metadata.name\"", "duplicate field \"metadata.labels.x\"",
                      "duplicate field \"kind\""}));
}

TEST(FieldValidationTest, InlinedAndFreeFormFields) {
  // Volume inlines VolumeSource; managedFields.fieldsV1 is free-form JSON.
  constexpr char kBody[] = R"({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p",
    "managedFields": [{"fieldsV1": {"f:anything": {"f:goes": {}}}}]},
    "spec": {"containers": [{"name": "c"}],
      "volumes": [{"name": "v", "emptyDir": {}, "volumeSource": {}}]}})";
  EXPECT_EQ(Check(kBody, "", "Pod"),
            (Problems{"unknown field \"spec.volumes[0].volumeSource\""}));
}

TEST(FieldValidationTest, TypeMismatchesAreNotOurs) {
  constexpr char kBody[] = R"({"apiVersion": "v1", "kind": "Pod", "metadata": "oops",
    "spec": {"containers": {"name": "c"}, "nodeSelector": ["a"], "priority": {"x": 1}}})";
  EXPECT_EQ(Check(kBody, "", "Pod"), Problems{});
}

TEST(FieldValidationTest, BadBodies) {
  EXPECT_FALSE(StrictFieldProblems("{", "", "v1", "Pod").ok());
  EXPECT_FALSE(StrictFieldProblems("[]", "", "v1", "Pod").ok());
  EXPECT_FALSE(StrictFieldProblems("{} {}", "", "v1", "Pod").ok());
  Result<Problems> unknown = StrictFieldProblems("{}", "", "v1", "Gizmo");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), Code::kNotFound);
  // Deep free-form nesting is fine and cheap.
  std::string deep = R"({"metadata": {"managedFields": [{"fieldsV1": )" +
                     std::string(10000, '[') + std::string(10000, ']') + "}]}}";
  EXPECT_TRUE(StrictFieldProblems(deep, "", "v1", "Pod").ok());
}

}  // namespace
}  // namespace mk8s::api
