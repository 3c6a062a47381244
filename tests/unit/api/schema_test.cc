#include "api/schema.h"

#include <set>

#include <gtest/gtest.h>

namespace mk8s::api {
namespace {

TEST(SchemaTest, BuiltinLoadsAndLinks) {
  const Schema& s = Schema::Builtin();
  std::vector<const MessageType*> all = s.Messages();
  EXPECT_GT(all.size(), 150u);
  for (const MessageType* m : all) {
    std::set<int> numbers;
    std::set<std::string> names;
    for (const Field& f : m->fields()) {
      EXPECT_TRUE(numbers.insert(f.number).second) << m->full_name() << " " << f.json_name;
      EXPECT_TRUE(names.insert(f.json_name).second) << m->full_name() << " " << f.json_name;
      if (f.kind == ValueKind::kMessage) {
        EXPECT_NE(f.message, nullptr) << m->full_name() << "." << f.json_name;
      }
      EXPECT_EQ(m->FieldByNumber(f.number), &f);
    }
  }
}

TEST(SchemaTest, ServedKindsResolve) {
  const Schema& s = Schema::Builtin();
  struct Gvk {
    const char* group;
    const char* version;
    const char* kind;
  };
  const Gvk kinds[] = {
      {"", "v1", "Namespace"},   {"", "v1", "Node"},          {"", "v1", "Pod"},
      {"", "v1", "Service"},     {"", "v1", "Endpoints"},     {"", "v1", "ConfigMap"},
      {"", "v1", "Secret"},      {"", "v1", "ServiceAccount"}, {"", "v1", "Event"},
      {"", "v1", "Binding"},     {"", "v1", "PodList"},       {"", "v1", "Status"},
      {"apps", "v1", "Deployment"}, {"apps", "v1", "DeploymentList"},
      {"apps", "v1", "DeleteOptions"},
  };
  for (const Gvk& k : kinds) {
    EXPECT_NE(s.ForKind(k.group, k.version, k.kind), nullptr)
        << k.group << "/" << k.version << " " << k.kind;
  }
  EXPECT_EQ(s.ForKind("", "v1", "Nope"), nullptr);
  EXPECT_EQ(s.ForKind("apps", "v2", "Deployment"), nullptr);
}

TEST(SchemaTest, FieldAttributes) {
  const MessageType* spec = Schema::Builtin().FindMessage("core.v1.PodSpec");
  ASSERT_NE(spec, nullptr);
  const Field* volumes = spec->FieldByJson("volumes");
  ASSERT_NE(volumes, nullptr);
  EXPECT_EQ(volumes->number, 1);
  EXPECT_EQ(volumes->shape, FieldShape::kList);
  EXPECT_EQ(volumes->merge_key, "name");
  EXPECT_EQ(volumes->patch, kPatchMerge | kPatchRetainKeys);
  const Field* containers = spec->FieldByJson("containers");
  ASSERT_NE(containers, nullptr);
  EXPECT_TRUE(containers->required);
  EXPECT_EQ(spec->FieldByNumber(7)->json_name, "nodeSelector");
  EXPECT_EQ(spec->FieldByNumber(7)->shape, FieldShape::kMap);
  // Inlined fields are visible by JSON name through the parent.
  const MessageType* volume = Schema::Builtin().FindMessage("core.v1.Volume");
  ASSERT_NE(volume, nullptr);
  ASSERT_NE(volume->FieldByJson("configMap"), nullptr);
  EXPECT_EQ(volume->FieldByJson("volumeSource"), nullptr);
  const MessageType* ports = Schema::Builtin().FindMessage("core.v1.Container");
  const Field* p = ports->FieldByJson("ports");
  EXPECT_EQ(p->list_type, ListType::kMap);
  EXPECT_EQ(p->list_map_keys, (std::vector<std::string>{"containerPort", "protocol"}));
}

TEST(SchemaTest, ParseErrorsNameFileAndLine) {
  Result<Schema> r = Schema::Parse({{"x.schema",
                                     "package x.v1 x\n"
                                     "message A \"An A.\"\n"
                                     "  b 1 B\n"
                                     "  c 1 string\n"
                                     "  d zero string\n"
                                     "  e 2 string bogus\n"}});
  ASSERT_FALSE(r.ok());
  const std::string& m = r.status().message();
  EXPECT_NE(m.find("x.schema:3: unknown type B"), std::string::npos) << m;
  EXPECT_NE(m.find("x.schema:4: x.v1.A.c: field number 1 used twice"), std::string::npos) << m;
  EXPECT_NE(m.find("x.schema:5: bad field number 'zero'"), std::string::npos) << m;
  EXPECT_NE(m.find("x.schema:6: unknown attribute 'bogus'"), std::string::npos) << m;
}

TEST(SchemaTest, ParsesDescriptionsAndQualifiedTypes) {
  Result<Schema> r = Schema::Parse({{"a.schema",
                                     "package a.v1 a\n"
                                     "message A \"Has \\\"quotes\\\".\"  # comment\n"
                                     "  b 1 []b.v1.B mergeKey=k patch=merge \"The Bs.\"\n"
                                     "  m 2 map[string][]string\n"},
                                    {"b.schema", "package b.v1\nmessage B\n  k 1 string\n"}});
  ASSERT_TRUE(r.ok()) << r.status().message();
  const MessageType* a = r->FindMessage("a.v1.A");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->description(), "Has \"quotes\".");
  EXPECT_EQ(a->FieldByJson("b")->message, r->FindMessage("b.v1.B"));
  EXPECT_EQ(a->FieldByJson("b")->description, "The Bs.");
  EXPECT_EQ(a->FieldByJson("m")->shape, FieldShape::kMapOfList);
  EXPECT_EQ(r->ForKind("a", "v1", "A"), a);
  EXPECT_EQ(r->ForKind("b", "v1", "B"), nullptr);  // package b.v1 declares no API group
}

}  // namespace
}  // namespace mk8s::api
