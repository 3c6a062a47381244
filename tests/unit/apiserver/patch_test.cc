#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "apiserver/patch.h"

namespace mk8s::apiserver {
namespace {

using nlohmann::json;

json Deployment() {
  return json::parse(R"({"spec":{"replicas":3,"template":{"spec":{"containers":[
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
  ASSERT_FALSE(ApplyPatch(PatchType::kJson, R"([{"op":"replace","path":"/spec/replicas","value":7}])",
                          Deployment(), &result));
  EXPECT_EQ(result["spec"]["replicas"], 7);
  ASSERT_FALSE(ApplyPatch(PatchType::kMerge, R"({"metadata":{"labels":{"a":"b"}}})", Deployment(),
                          &result));
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
  ASSERT_FALSE(ApplyPatch(PatchType::kStrategic, R"({"metadata":{"finalizers":["b"]}})", original,
                          &result));
  EXPECT_EQ(result["metadata"]["finalizers"], json({"a", "b"}));
  ASSERT_FALSE(ApplyPatch(PatchType::kStrategic,
                          R"({"metadata":{"$deleteFromPrimitiveList/finalizers":["a"]}})", result,
                          &result));
  EXPECT_EQ(result["metadata"]["finalizers"], json({"b"}));
}

}  // namespace
}  // namespace mk8s::apiserver
