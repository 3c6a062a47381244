// The schema against the served API: every served kind resolves, new group versions decode from
// protobuf, and the OpenAPI documents generated from the schema carry what kubectl reads.
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>

#include "api/protobuf.h"
#include "api/schema.h"
#include "apiserver/openapi.h"
#include "apiserver/resources.h"
#include "pb_encoder.h"

namespace mk8s::api {
namespace {

using apiserver::OpenApi;
using apiserver::ResourceInfo;
using apiserver::ResourceRegistry;
using nlohmann::json;
using testing::Pb;

TEST(SchemaCoverageTest, EveryServedKindResolves) {
  const Schema& schema = Schema::Builtin();
  for (const ResourceInfo& info : ResourceRegistry::Builtin().All()) {
    EXPECT_NE(schema.ForKind(info.group, info.version, info.kind), nullptr)
        << info.GroupVersion() << " " << info.kind;
    // Lists too (list responses and kubectl explain of lists), where the resource lists.
    if (std::find(info.verbs.begin(), info.verbs.end(), "list") == info.verbs.end()) continue;
    EXPECT_NE(schema.ForKind(info.group, info.version, info.kind + "List"), nullptr)
        << info.GroupVersion() << " " << info.kind << "List";
  }
}

TEST(SchemaCoverageTest, JobFromProtobuf) {
  Pb container;
  container.Str(1, "pi").Str(2, "perl").Str(3, "perl").Str(3, "-e");
  Pb pod_spec;
  pod_spec.Msg(2, container).Str(3, "Never");
  Pb spec;
  spec.Varint(7, 4)                                           // backoffLimit
      .Msg(6, Pb().Msg(1, Pb().Str(1, "")).Msg(2, pod_spec))  // template
      .Str(9, "Indexed")                                      // completionMode
      .Varint(8, 100);                                        // ttlSecondsAfterFinished
  Pb status;
  status.Msg(1, Pb().Str(1, "Complete").Str(2, "True").Msg(4, Pb().Varint(1, 1700000000)))
      .Varint(5, 1)
      .Msg(8, Pb().Str(1, "uid-a").Str(1, "uid-b"));
  Pb job;
  job.Msg(1, Pb().Str(1, "pi")).Msg(2, spec).Msg(3, status);
  Result<json> r = DecodeProtobufBody(Pb::Body("batch/v1", "Job", job));
  ASSERT_TRUE(r.ok()) << r.status().message();
  const json& j = *r;
  EXPECT_EQ(j["kind"], "Job");
  EXPECT_EQ(j["spec"]["backoffLimit"], 4);
  EXPECT_EQ(j["spec"]["completionMode"], "Indexed");
  EXPECT_EQ(j["spec"]["ttlSecondsAfterFinished"], 100);
  EXPECT_EQ(j["spec"]["template"]["spec"]["restartPolicy"], "Never");
  EXPECT_EQ(j["spec"]["template"]["spec"]["containers"][0]["command"], json({"perl", "-e"}));
  EXPECT_EQ(j["status"]["conditions"][0]["type"], "Complete");
  EXPECT_EQ(j["status"]["conditions"][0]["lastTransitionTime"], "2023-11-14T22:13:20Z");
  EXPECT_EQ(j["status"]["succeeded"], 1);
  EXPECT_EQ(j["status"]["uncountedTerminatedPods"]["succeeded"], json({"uid-a", "uid-b"}));
}

TEST(SchemaCoverageTest, ClusterRoleAndBindingFromProtobuf) {
  Pb rule;
  rule.Str(1, "get").Str(1, "list").Str(2, "").Str(3, "pods").Str(4, "web");
  Pb role;
  role.Msg(1, Pb().Str(1, "reader"))
      .Msg(2, rule)
      .Msg(3, Pb().Msg(1, Pb().Entry(1, "rbac.example.com/aggregate", "true")));
  Result<json> r =
      DecodeProtobufBody(Pb::Body("rbac.authorization.k8s.io/v1", "ClusterRole", role));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ((*r)["rules"][0]["verbs"], json({"get", "list"}));
  EXPECT_EQ((*r)["rules"][0]["apiGroups"], json({""}));  // the core group, kept in lists
  EXPECT_EQ((*r)["rules"][0]["resources"], json({"pods"}));
  EXPECT_EQ((*r)["rules"][0]["resourceNames"], json({"web"}));
  EXPECT_EQ((*r)["aggregationRule"]["clusterRoleSelectors"][0]["matchLabels"]
                ["rbac.example.com/aggregate"],
            "true");

  Pb binding;
  binding.Msg(1, Pb().Str(1, "read-all"))
      .Msg(2, Pb().Str(1, "ServiceAccount").Str(3, "default").Str(4, "kube-system"))
      .Msg(3, Pb().Str(1, "rbac.authorization.k8s.io").Str(2, "ClusterRole").Str(3, "reader"));
  r = DecodeProtobufBody(Pb::Body("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", binding));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ((*r)["subjects"][0]["namespace"], "kube-system");
  EXPECT_EQ((*r)["roleRef"]["kind"], "ClusterRole");
}

json Document(const OpenApi& openapi, const std::string& path) {
  auto [status, body] = openapi.Serve(path);
  EXPECT_EQ(status, 200) << path;
  return json::parse(body);
}

TEST(OpenApiTest, IndexAndDocumentsAreHashed) {
  OpenApi openapi(ResourceRegistry::Builtin());
  json index = Document(openapi, "/openapi/v3");
  ASSERT_TRUE(index["paths"].contains("api/v1"));
  ASSERT_TRUE(index["paths"].contains("apis/apps/v1"));
  const std::string url = index["paths"]["apis/batch/v1"]["serverRelativeURL"];
  EXPECT_EQ(url.rfind("/openapi/v3/apis/batch/v1?hash=", 0), 0u) << url;
  EXPECT_EQ(openapi.Serve("/openapi/v3/apis/nope/v1").first, 404);
  EXPECT_GT(openapi.total_bytes(), 100000u);
  std::cout << "openapi: " << openapi.total_bytes() << " bytes in " << openapi.build_micros()
            << " us\n";
}

TEST(OpenApiTest, PodComponent) {
  OpenApi openapi(ResourceRegistry::Builtin());
  json doc = Document(openapi, "/openapi/v3/api/v1");
  const json& schemas = doc["components"]["schemas"];
  const json& pod = schemas["io.k8s.api.core.v1.Pod"];
  EXPECT_EQ(pod["x-kubernetes-group-version-kind"],
            json::parse(R"([{"group":"","version":"v1","kind":"Pod"}])"));
  EXPECT_EQ(pod["properties"]["kind"]["type"], "string");
  EXPECT_EQ(pod["properties"]["spec"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.api.core.v1.PodSpec");
  EXPECT_EQ(pod["properties"]["metadata"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta");
  const json& spec = schemas["io.k8s.api.core.v1.PodSpec"];
  EXPECT_NE(std::find(spec["required"].begin(), spec["required"].end(), "containers"),
            spec["required"].end());
  const json& containers = spec["properties"]["containers"];
  EXPECT_EQ(containers["type"], "array");
  EXPECT_EQ(containers["x-kubernetes-patch-merge-key"], "name");
  EXPECT_EQ(containers["x-kubernetes-patch-strategy"], "merge");
  EXPECT_EQ(containers["items"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.api.core.v1.Container");
  EXPECT_EQ(spec["properties"]["nodeSelector"]["additionalProperties"]["type"], "string");
  EXPECT_EQ(spec["properties"]["terminationGracePeriodSeconds"]["format"], "int64");
  const json& meta = schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"];
  EXPECT_EQ(meta["properties"]["creationTimestamp"]["allOf"][0]["$ref"],
            "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Time");
  EXPECT_EQ(schemas["io.k8s.apimachinery.pkg.apis.meta.v1.Time"]["format"], "date-time");
  EXPECT_EQ(schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]["format"], "int-or-string");
  EXPECT_EQ(schemas["io.k8s.api.core.v1.PodList"]["x-kubernetes-group-version-kind"][0]["kind"],
            "PodList");
  // Every $ref resolves within the document.
  std::function<void(const json&)> check = [&](const json& v) {
    if (v.is_object()) {
      if (auto ref = v.find("$ref"); ref != v.end()) {
        const std::string name = ref->get<std::string>().substr(21);
        EXPECT_TRUE(schemas.contains(name)) << name;
      }
      for (const auto& [k, child] : v.items()) check(child);
    } else if (v.is_array()) {
      for (const auto& child : v) check(child);
    }
  };
  check(doc);
  // The patch operation keeps what kubectl's fieldValidation probe looks for.
  const json& patch = doc["paths"]["/api/v1/namespaces/{namespace}/pods/{name}"]["patch"];
  EXPECT_EQ(patch["x-kubernetes-group-version-kind"]["kind"], "Pod");
  bool field_validation = false;
  for (const auto& p : patch["parameters"]) field_validation |= p["name"] == "fieldValidation";
  EXPECT_TRUE(field_validation);
}

TEST(OpenApiTest, AppsDocumentHasScaleAndStrategy) {
  OpenApi openapi(ResourceRegistry::Builtin());
  json doc = Document(openapi, "/openapi/v3/apis/apps/v1");
  const json& schemas = doc["components"]["schemas"];
  EXPECT_TRUE(schemas.contains("io.k8s.api.autoscaling.v1.Scale"));
  EXPECT_EQ(schemas["io.k8s.api.apps.v1.DeploymentSpec"]["properties"]["strategy"]
                   ["x-kubernetes-patch-strategy"],
            "retainKeys");
  EXPECT_TRUE(schemas.contains("io.k8s.api.apps.v1.StatefulSet"));
  EXPECT_TRUE(
      doc["paths"].contains("/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"));
}

}  // namespace
}  // namespace mk8s::api
