#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "apiserver/patch.h"

namespace mk8s::apiserver {
namespace {

using nlohmann::json;

json Deployment() {
  return json::parse(
      R"({"apiVersion":"apps/v1","kind":"Deployment",
      "spec":{"replicas":3,"template":{"spec":{"containers":[
      {"name":"nginx","image":"nginx:1.26","ports":[{"containerPort":80}]},
      {"name":"side","image":"busybox"}]}}}})");
}

TEST(PatchTest, StrategicMergeByContainerName) {
  json result;
  auto error = ApplyPatch(PatchType::kStrategic,
                          R"({"spec":{"replicas":4,"template":{"spec":{
                               "$setElementOrder/containers":[{"name":"nginx"},{"name":"side"}],
                               "containers":[{"name":"nginx","image":"nginx:1.27"}]}}}})",
                          Deployment(), &result);
  ASSERT_FALSE(error) << error->message;
  EXPECT_EQ(result["spec"]["replicas"], 4);
  const json& containers = result["spec"]["template"]["spec"]["containers"];
  ASSERT_EQ(containers.size(), 2u);
  EXPECT_EQ(containers[0]["image"], "nginx:1.27");
  EXPECT_EQ(containers[0]["ports"][0]["containerPort"], 80);  // merged, not replaced
  EXPECT_EQ(containers[1]["name"], "side");
  EXPECT_FALSE(result["spec"]["template"]["spec"].contains("$setElementOrder/containers"));
}

TEST(PatchTest, StrategicDeleteDirectiveAndNull) {
  json result;
  auto error = ApplyPatch(PatchType::kStrategic,
                          R"({"spec":{"replicas":null,"template":{"spec":{
                               "containers":[{"name":"side","$patch":"delete"}]}}}})",
                          Deployment(), &result);
  ASSERT_FALSE(error);
  EXPECT_FALSE(result["spec"].contains("replicas"));
  EXPECT_EQ(result["spec"]["template"]["spec"]["containers"].size(), 1u);
}

TEST(PatchTest, JsonAndMergePatch) {
  json result;
  ASSERT_FALSE(ApplyPatch(PatchType::kJson,
                          R"([{"op":"replace","path":"/spec/replicas","value":7}])", Deployment(),
                          &result));
  EXPECT_EQ(result["spec"]["replicas"], 7);
  ASSERT_FALSE(
      ApplyPatch(PatchType::kMerge, R"({"metadata":{"labels":{"a":"b"}}})", Deployment(), &result));
  EXPECT_EQ(result["metadata"]["labels"]["a"], "b");
  auto failed = ApplyPatch(PatchType::kJson, R"([{"op":"test","path":"/spec/replicas","value":9}])",
                           Deployment(), &result);
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->code, 422);
  auto malformed = ApplyPatch(PatchType::kMerge, "{not json", Deployment(), &result);
  ASSERT_TRUE(malformed);
  EXPECT_EQ(malformed->code, 400);
}

TEST(PatchTest, PrimitiveSetListsMerge) {
  json original = {{"metadata", {{"finalizers", {"a"}}}}};
  json result;
  ASSERT_FALSE(
      ApplyPatch(PatchType::kStrategic, R"({"metadata":{"finalizers":["b"]}})", original, &result));
  EXPECT_EQ(result["metadata"]["finalizers"], json({"a", "b"}));
  ASSERT_FALSE(ApplyPatch(PatchType::kStrategic,
                          R"({"metadata":{"$deleteFromPrimitiveList/finalizers":["a"]}})", result,
                          &result));
  EXPECT_EQ(result["metadata"]["finalizers"], json({"b"}));
}

json Apply(const json& original, const std::string& patch) {
  json result;
  auto error = ApplyPatch(PatchType::kStrategic, patch, original, &result);
  EXPECT_FALSE(error) << error->message;
  return result;
}

TEST(PatchSchemaTest, KindsResolve) {
  EXPECT_NE(SchemaTypeOf(Deployment()), nullptr);
  EXPECT_NE(SchemaTypeOf(json{{"apiVersion", "v1"}, {"kind", "Service"}}), nullptr);
  EXPECT_EQ(SchemaTypeOf(json{{"apiVersion", "example.com/v1"}, {"kind", "Gizmo"}}), nullptr);
  EXPECT_EQ(SchemaTypeOf(json::object()), nullptr);
}

TEST(PatchSchemaTest, EnvByNameInsideContainers) {
  json pod = json::parse(R"({"apiVersion":"v1","kind":"Pod","spec":{"containers":[
      {"name":"app","image":"a","env":[{"name":"A","value":"1"},{"name":"B","value":"2"}],
       "volumeMounts":[{"name":"v","mountPath":"/data"}]}]}})");
  json result = Apply(pod, R"({"spec":{"containers":[{"name":"app",
      "env":[{"name":"B","value":"3"},{"name":"C","value":"4"}],
      "volumeMounts":[{"name":"w","mountPath":"/data"}]}]}})");
  const json& c = result["spec"]["containers"][0];
  EXPECT_EQ(c["image"], "a");
  EXPECT_EQ(c["env"], json::parse(R"([{"name":"A","value":"1"},{"name":"B","value":"3"},
                                      {"name":"C","value":"4"}])"));
  // volumeMounts merge by mountPath: same path, so the item is merged, not added.
  ASSERT_EQ(c["volumeMounts"].size(), 1u);
  EXPECT_EQ(c["volumeMounts"][0]["name"], "w");
}

TEST(PatchSchemaTest, ServicePortsByPort) {
  json svc = json::parse(R"({"apiVersion":"v1","kind":"Service","spec":{"ports":[
      {"name":"http","port":80,"targetPort":8080},{"name":"https","port":443}]}})");
  json result = Apply(svc, R"({"spec":{"ports":[{"port":80,"targetPort":9090},{"port":8443}]}})");
  const json& ports = result["spec"]["ports"];
  ASSERT_EQ(ports.size(), 3u);
  EXPECT_EQ(ports[0]["name"], "http");
  EXPECT_EQ(ports[0]["targetPort"], 9090);
  EXPECT_EQ(ports[2]["port"], 8443);
}

TEST(PatchSchemaTest, ListsWithoutStrategyAreReplaced) {
  json pod = json::parse(R"({"apiVersion":"v1","kind":"Pod","spec":{
      "tolerations":[{"key":"a","operator":"Exists"}],
      "containers":[{"name":"app","args":["x","y"]}]}})");
  json result = Apply(pod, R"({"spec":{"tolerations":[{"key":"b","operator":"Exists"}],
      "containers":[{"name":"app","args":["z"]}]}})");
  EXPECT_EQ(result["spec"]["tolerations"], json::parse(R"([{"key":"b","operator":"Exists"}])"));
  EXPECT_EQ(result["spec"]["containers"][0]["args"], json({"z"}));
}

TEST(PatchSchemaTest, FinalizersMergeAsASet) {
  json ns = json::parse(R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{
      "finalizers":["a","b"],"ownerReferences":[{"uid":"1","name":"x"}]}})");
  json result = Apply(ns, R"({"metadata":{"finalizers":["b","c"],
      "ownerReferences":[{"uid":"2","name":"y"}]}})");
  EXPECT_EQ(result["metadata"]["finalizers"], json({"a", "b", "c"}));
  EXPECT_EQ(result["metadata"]["ownerReferences"].size(), 2u);
}

TEST(PatchSchemaTest, RetainKeysStrategy) {
  json deploy = json::parse(R"({"apiVersion":"apps/v1","kind":"Deployment","spec":{
      "strategy":{"type":"RollingUpdate","rollingUpdate":{"maxSurge":1}}}})");
  json result = Apply(deploy, R"({"spec":{"strategy":{"$retainKeys":["type"],"type":"Recreate",
      "rollingUpdate":null}}})");
  EXPECT_EQ(result["spec"]["strategy"], json::parse(R"({"type":"Recreate"})"));
}

TEST(PatchSchemaTest, MapValuesAndScale) {
  // map[string]T values use T's rules; Scale (the scale subresource) resolves too.
  json scale =
      json::parse(R"({"apiVersion":"autoscaling/v1","kind":"Scale","spec":{"replicas":1}})");
  EXPECT_EQ(Apply(scale, R"({"spec":{"replicas":5}})")["spec"]["replicas"], 5);
  json cm = json::parse(R"({"apiVersion":"v1","kind":"ConfigMap","data":{"a":"1"}})");
  EXPECT_EQ(Apply(cm, R"({"data":{"b":"2"}})")["data"], json::parse(R"({"a":"1","b":"2"})"));
}

TEST(PatchSchemaTest, UnknownKindsFallBackToTheBuiltinTable) {
  json obj = json::parse(R"({"apiVersion":"example.com/v1","kind":"Gizmo","spec":{
      "template":{"spec":{"containers":[{"name":"a","image":"1"},{"name":"b","image":"2"}]}}}})");
  json result =
      Apply(obj, R"({"spec":{"template":{"spec":{"containers":[{"name":"a","image":"3"}]}}}})");
  EXPECT_EQ(result["spec"]["template"]["spec"]["containers"].size(), 2u);
}

}  // namespace
}  // namespace mk8s::apiserver
