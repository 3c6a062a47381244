// json_path: non-throwing lookups along object keys.
#include "client/json_path.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace mk8s::client {
namespace {

using nlohmann::json;

TEST(JsonPathTest, FindsNestedValues) {
  const json pod = {{"spec", {{"nodeName", "n1"}, {"priority", 7}, {"hostNetwork", true}}}};
  ASSERT_NE(FindPath(pod, {"spec", "nodeName"}), nullptr);
  EXPECT_EQ(StringAtPath(pod, {"spec", "nodeName"}), "n1");
  EXPECT_EQ(IntAtPath(pod, {"spec", "priority"}, -1), 7);
  EXPECT_TRUE(BoolAtPath(pod, {"spec", "hostNetwork"}, false));
  EXPECT_EQ(FindPath(pod, {}), &pod);  // the empty path is the root
}

TEST(JsonPathTest, MissingStepsAndWrongTypesGiveDefaults) {
  const json pod = {{"spec", {{"nodeName", 3}, {"containers", json::array({1})}}},
                    {"status", nullptr}};
  EXPECT_EQ(FindPath(pod, {"metadata", "name"}), nullptr);   // missing first step
  EXPECT_EQ(FindPath(pod, {"status", "phase"}), nullptr);    // a step that is null
  EXPECT_EQ(FindPath(pod, {"spec", "containers", "0"}), nullptr);  // arrays are not walked
  EXPECT_EQ(StringAtPath(pod, {"spec", "nodeName"}), "");    // not a string
  EXPECT_EQ(IntAtPath(pod, {"spec", "nodeName"}, -1), 3);
  EXPECT_EQ(IntAtPath(pod, {"spec", "missing"}, -1), -1);
  EXPECT_FALSE(BoolAtPath(pod, {"spec", "nodeName"}, false));
  EXPECT_EQ(StringAtPath(json("text"), {"a"}), "");          // root not an object
  EXPECT_EQ(StringAtPath(json(), {"a", "b"}), "");
}

}  // namespace
}  // namespace mk8s::client
