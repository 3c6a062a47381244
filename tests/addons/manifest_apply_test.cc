// Parsing of addon manifests (YAML/JSON) into API objects.
#include <gtest/gtest.h>

#include "addonhost/manifest_apply.h"

namespace mk8s::addonhost {
namespace {

TEST(ParseManifest, MultiDocumentYaml) {
  auto objects = ParseManifest(
      "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\n---\n"
      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: b\n  namespace: a\n"
      "data:\n  quoted: \"007\"\n  plain: 7\n  yes: true\n");
  ASSERT_TRUE(objects.ok()) << objects.status().message();
  ASSERT_EQ(objects->size(), 2u);
  EXPECT_EQ((*objects)[1]["data"]["quoted"], "007");
  EXPECT_EQ((*objects)[1]["data"]["plain"], 7);
  EXPECT_EQ((*objects)[1]["data"]["yes"], true);
}

TEST(ParseManifest, JsonListIsFlattened) {
  auto objects = ParseManifest(R"({"kind":"List","apiVersion":"v1","items":[)"
                               R"({"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}},)"
                               R"({"apiVersion":"v1","kind":"Secret","metadata":{"name":"y"}}]})");
  ASSERT_TRUE(objects.ok());
  ASSERT_EQ(objects->size(), 2u);
  EXPECT_EQ((*objects)[1]["kind"], "Secret");
}

TEST(ParseManifest, RejectsIncompleteObjectsAndBadYaml) {
  EXPECT_EQ(ParseManifest("kind: ConfigMap\nmetadata:\n  name: x\n").status().code(),
            Code::kInvalidArgument);
  EXPECT_EQ(ParseManifest("a: [unclosed\n").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(ParseManifest("- just\n- a list\n").status().code(), Code::kInvalidArgument);
}

}  // namespace
}  // namespace mk8s::addonhost
