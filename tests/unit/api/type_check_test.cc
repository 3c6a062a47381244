// api::CheckAndNormalizeTypes: Go's typed decoding of a request body against the schema — wrong
// JSON types refused in Go's words, nulls turned into zero values, everything else untouched.
#include "api/type_check.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace mk8s::api {
namespace {

using nlohmann::json;

const MessageType& Kind(std::string_view group, std::string_view kind) {
  const MessageType* type = Schema::Builtin().ForKind(group, "v1", kind);
  EXPECT_NE(type, nullptr) << kind;
  return *type;
}

std::optional<std::string> Check(json& object, std::string_view group, std::string_view kind) {
  return CheckAndNormalizeTypes(object, Kind(group, kind));
}

TEST(TypeCheckTest, AWellTypedObjectPassesUnchanged) {
  json pod = json::parse(R"({
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "p", "labels": {"a": "b"}, "generation": 3,
                 "creationTimestamp": "2026-01-01T00:00:00Z",
                 "managedFields": [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]},
    "spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}],
                             "resources": {"requests": {"cpu": "100m", "memory": 1048576},
                                           "limits": {"cpu": 2}},
                             "livenessProbe": {"httpGet": {"port": "http", "path": "/"}},
                             "readinessProbe": {"tcpSocket": {"port": 8080}}}],
             "terminationGracePeriodSeconds": 30, "hostNetwork": false,
             "tolerations": [{"key": "k", "operator": "Exists", "tolerationSeconds": 5}],
             "somethingNew": {"unknown": ["fields", 1, null]}},
    "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}})");
  const json before = pod;
  EXPECT_EQ(Check(pod, "", "Pod"), std::nullopt);
  EXPECT_EQ(pod, before);
}

TEST(TypeCheckTest, WrongTypesAreRefusedInGosWords) {
  json csr = json::parse(R"({"metadata": {"name": "x"},
    "spec": {"request": "AAAA", "signerName": [null], "usages": ["client auth"]}})");
  EXPECT_EQ(Check(csr, "certificates.k8s.io", "CertificateSigningRequest"),
            "json: cannot unmarshal array into Go struct field "
            "CertificateSigningRequestSpec.spec.signerName of type string");

  json pod = json::parse(R"({"spec": {"containers": {"name": "c"}}})");
  EXPECT_EQ(Check(pod, "", "Pod"), "json: cannot unmarshal object into Go struct field "
                                   "PodSpec.spec.containers of type []v1.Container");

  json deployment = json::parse(R"({"spec": {"replicas": "3"}})");
  EXPECT_EQ(Check(deployment, "apps", "Deployment"),
            "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of "
            "type int32");

  json labels = json::parse(R"({"metadata": {"labels": {"a": 1}}})");
  EXPECT_EQ(Check(labels, "", "ConfigMap"), "json: cannot unmarshal number into Go struct field "
                                            "ObjectMeta.metadata.labels of type string");

  json deep = json::parse(R"({"spec": {"template": {"spec": {"containers": [
    {"name": "c", "ports": [{"containerPort": true}]}]}}}})");
  EXPECT_EQ(Check(deep, "apps", "ReplicaSet"),
            "json: cannot unmarshal bool into Go struct field "
            "ContainerPort.spec.template.spec.containers.ports.containerPort of type int32");
}

TEST(TypeCheckTest, IntegersMustBeWholeAndInRange) {
  json big = json::parse(R"({"spec": {"replicas": 2147483648}})");
  EXPECT_EQ(Check(big, "apps", "Deployment"),
            "json: cannot unmarshal number 2147483648 into Go struct field "
            "DeploymentSpec.spec.replicas of type int32");
  json fraction = json::parse(R"({"spec": {"terminationGracePeriodSeconds": 1.5,
                                           "containers": []}})");
  EXPECT_EQ(Check(fraction, "", "Pod"),
            "json: cannot unmarshal number 1.5 into Go struct field "
            "PodSpec.spec.terminationGracePeriodSeconds of type int64");
  json huge = json::parse(R"({"spec": {"activeDeadlineSeconds": 18446744073709551615}})");
  EXPECT_NE(Check(huge, "batch", "Job"), std::nullopt);
  json ok = json::parse(R"({"spec": {"activeDeadlineSeconds": 9223372036854775807}})");
  EXPECT_EQ(Check(ok, "batch", "Job"), std::nullopt);
}

TEST(TypeCheckTest, IntOrStringTakesWholeNumbersOrText) {
  json strategy = json::parse(R"({"spec": {"strategy": {"rollingUpdate":
    {"maxSurge": "25%", "maxUnavailable": 1}}}})");
  EXPECT_EQ(Check(strategy, "apps", "Deployment"), std::nullopt);
  strategy["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] = 1.5;
  EXPECT_EQ(Check(strategy, "apps", "Deployment"),
            "json: cannot unmarshal number 1.5 into Go struct field "
            "RollingUpdateDeployment.spec.strategy.rollingUpdate.maxUnavailable of type "
            "intstr.IntOrString");
  strategy["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] = json::array();
  EXPECT_NE(Check(strategy, "apps", "Deployment"), std::nullopt);
}

TEST(TypeCheckTest, NullsBecomeZeroValues) {
  json pod = json::parse(R"({"metadata": {"name": "p", "labels": {"a": null},
                                          "annotations": null},
    "spec": {"nodeName": null, "containers": [null, {"name": "c", "args": ["a", null]}],
             "affinity": null}})");
  EXPECT_EQ(Check(pod, "", "Pod"), std::nullopt);
  EXPECT_EQ(pod, json::parse(R"({"metadata": {"name": "p", "labels": {"a": ""}},
    "spec": {"containers": [{}, {"name": "c", "args": ["a", ""]}]}})"));
}

TEST(TypeCheckTest, TheTopLevelMustBeAnObject) {
  json list = json::array();
  EXPECT_EQ(Check(list, "", "Pod"), "json: cannot unmarshal array into Go value of type v1.Pod");
}

}  // namespace
}  // namespace mk8s::api
