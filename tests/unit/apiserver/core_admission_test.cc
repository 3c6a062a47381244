// The ServiceAccount token volume injected into pods, Secret stringData folding, and label
// selector validation.
#include "apiserver/registry/core_admission.h"

#include <gtest/gtest.h>

namespace mk8s::apiserver {
namespace {

using nlohmann::json;

TEST(CoreAdmissionTest, MountsTheTokenVolumeInEveryContainer) {
  json spec = {{"initContainers", json::array({{{"name", "init"}, {"image", "busybox"}}})},
               {"containers", json::array({{{"name", "app"}, {"image", "busybox"}}})}};
  MountServiceAccountToken(spec);
  ASSERT_EQ(spec["volumes"].size(), 1u);
  const json& volume = spec["volumes"][0];
  const std::string name = volume["name"];
  EXPECT_EQ(name.rfind("kube-api-access-", 0), 0u);
  EXPECT_EQ(name.size(), std::string("kube-api-access-").size() + 5);
  const json& sources = volume["/projected/sources"_json_pointer];
  ASSERT_EQ(sources.size(), 3u);
  EXPECT_EQ(sources[0]["/serviceAccountToken/path"_json_pointer], "token");
  EXPECT_EQ(sources[0]["/serviceAccountToken/expirationSeconds"_json_pointer], 3607);
  EXPECT_EQ(sources[1]["/configMap/name"_json_pointer], "kube-root-ca.crt");
  EXPECT_EQ(sources[2]["/downwardAPI/items/0/fieldRef/fieldPath"_json_pointer],
            "metadata.namespace");
  for (const char* list : {"initContainers", "containers"}) {
    const json& mount = spec[list][0]["volumeMounts"][0];
    EXPECT_EQ(mount["name"], name);
    EXPECT_EQ(mount["mountPath"], "/var/run/secrets/kubernetes.io/serviceaccount");
    EXPECT_EQ(mount["readOnly"], true);
  }
}

TEST(CoreAdmissionTest, RespectsOptOutAndExistingMounts) {
  json opted_out = {{"automountServiceAccountToken", false},
                    {"containers", json::array({{{"name", "app"}}})}};
  MountServiceAccountToken(opted_out);
  EXPECT_FALSE(opted_out.contains("volumes"));

  json own = {{"volumes", json::array({{{"name", "mine"}, {"emptyDir", json::object()}}})},
              {"containers",
               json::array({{{"name", "app"},
                             {"volumeMounts",
                              json::array({{{"name", "mine"},
                                            {"mountPath",
                                             "/var/run/secrets/kubernetes.io/serviceaccount"}}})}}})}};
  MountServiceAccountToken(own);
  EXPECT_EQ(own["volumes"].size(), 1u);
}

TEST(CoreAdmissionTest, FoldsStringDataIntoData) {
  json secret = {{"data", {{"kept", "YQ=="}, {"both", "b2xk"}}},
                 {"stringData", {{"both", "new"}, {"plain", "hello"}}}};
  std::vector<StatusCause> causes;
  FoldSecretStringData(secret, &causes);
  EXPECT_TRUE(causes.empty());
  EXPECT_FALSE(secret.contains("stringData"));
  EXPECT_EQ(secret["data"]["kept"], "YQ==");
  EXPECT_EQ(secret["data"]["both"], "bmV3");
  EXPECT_EQ(secret["data"]["plain"], "aGVsbG8=");
}

TEST(CoreAdmissionTest, RejectsNonStringStringData) {
  json secret = {{"stringData", {{"n", 5}}}};
  std::vector<StatusCause> causes;
  FoldSecretStringData(secret, &causes);
  ASSERT_EQ(causes.size(), 1u);
  EXPECT_EQ(causes[0].field, "stringData[n]");
}

TEST(CoreAdmissionTest, LabelSelectorExpressionsAreValidatedAsUpstream) {
  std::vector<StatusCause> causes;
  EXPECT_TRUE(ValidateLabelSelector(
      json::parse(R"({"matchLabels": {"a": "b"}, "matchExpressions": [
        {"key": "a", "operator": "In", "values": ["b"]}, {"key": "c", "operator": "Exists"}]})"),
      "spec.selector", &causes));
  EXPECT_TRUE(causes.empty());
  EXPECT_FALSE(ValidateLabelSelector(json::parse(R"({"matchExpressions": [
        {"key": "a", "operator": "Near", "values": ["b"]},
        {"key": "a", "operator": "NotIn"},
        {"key": "a", "operator": "DoesNotExist", "values": ["b"]}]})"),
                                     "spec.selector", &causes));
  ASSERT_EQ(causes.size(), 3u);
  EXPECT_EQ(causes[0].field, "spec.selector.matchExpressions[0].operator");
  EXPECT_EQ(causes[0].message, "Invalid value: \"Near\": not a valid selector operator");
  EXPECT_EQ(causes[1].field, "spec.selector.matchExpressions[1].values");
  EXPECT_EQ(causes[1].reason, "FieldValueRequired");
  EXPECT_EQ(causes[2].field, "spec.selector.matchExpressions[2].values");
  EXPECT_EQ(causes[2].reason, "FieldValueForbidden");
}

}  // namespace
}  // namespace mk8s::apiserver
