#include "api/protobuf.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <random>

#include "api/protobuf_special.h"
#include "api/type_check.h"
#include "pb_encoder.h"

namespace mk8s::api {
namespace {

using nlohmann::json;
using testing::Pb;

// ObjectMeta as Go writes it: every non-pointer field present (empty strings, zero ints).
Pb Meta(std::string_view name, std::string_view label_key = "", std::string_view label = "") {
  Pb m;
  m.Str(1, name).Str(2, "").Str(3, "").Str(4, "").Str(5, "").Str(6, "").Varint(7, 0);
  m.Msg(8, Pb());  // creationTimestamp: zero Time
  if (!label_key.empty()) m.Entry(11, label_key, label);
  return m;
}

// `kubectl create deployment webapp --image=nginx --replicas=3`, encoded like client-go does.
std::string WebappDeployment() {
  // The container name kubectl derives from the image is "nginx".
  Pb container;
  container.Str(1, "nginx").Str(2, "nginx").Str(5, "").Msg(8, Pb()).Str(13, "").Str(14, "")
      .Varint(16, 0).Varint(17, 0).Varint(18, 0).Str(20, "");
  Pb pod_spec;
  pod_spec.Msg(2, container).Str(3, "").Str(6, "").Str(8, "").Str(9, "").Str(10, "")
      .Varint(11, 0).Varint(12, 0).Varint(13, 0).Str(16, "").Str(17, "").Str(19, "");
  Pb tmpl;
  tmpl.Msg(1, Pb().Str(1, "").Msg(8, Pb()).Entry(11, "app", "webapp")).Msg(2, pod_spec);
  Pb spec;
  spec.Varint(1, 3)
      .Msg(2, Pb().Entry(1, "app", "webapp"))
      .Msg(3, tmpl)
      .Msg(4, Pb().Str(1, ""))
      .Varint(5, 0)
      .Varint(7, 0);
  Pb status;
  status.Varint(1, 0).Varint(2, 0).Varint(3, 0).Varint(4, 0).Varint(5, 0).Varint(7, 0);
  Pb deploy;
  deploy.Msg(1, Meta("webapp", "app", "webapp")).Msg(2, spec).Msg(3, status);
  return Pb::Body("apps/v1", "Deployment", deploy);
}

TEST(ProtobufTest, KubectlCreateDeployment) {
  Result<json> r = DecodeProtobufBody(WebappDeployment());
  ASSERT_TRUE(r.ok()) << r.status().message();
  // kubectl-wire.md §1.4, plus the zero-valued ints and bools Go writes.
  json want = json::parse(R"({"apiVersion":"apps/v1","kind":"Deployment",
    "metadata":{"name":"webapp","labels":{"app":"webapp"},"generation":0},
    "spec":{"replicas":3,"selector":{"matchLabels":{"app":"webapp"}},
      "template":{"metadata":{"labels":{"app":"webapp"}},
        "spec":{"containers":[{"name":"nginx","image":"nginx","resources":{},
                               "stdin":false,"stdinOnce":false,"tty":false}],
                "hostNetwork":false,"hostPID":false,"hostIPC":false}},
      "strategy":{},"minReadySeconds":0,"paused":false},
    "status":{"observedGeneration":0,"replicas":0,"updatedReplicas":0,"availableReplicas":0,
              "unavailableReplicas":0,"readyReplicas":0}})");
  EXPECT_EQ(*r, want) << r->dump();
}

TEST(ProtobufTest, Namespace) {
  Pb ns;
  ns.Msg(1, Meta("x")).Msg(2, Pb()).Msg(3, Pb().Str(1, ""));
  std::string body = Pb::Body("v1", "Namespace", ns);
  Result<json> r = DecodeProtobufBody(body);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(*r, json::parse(R"({"apiVersion":"v1","kind":"Namespace",
      "metadata":{"name":"x","generation":0},"spec":{},"status":{}})"));
}

TEST(ProtobufTest, ConfigMapWithData) {
  Pb cm;
  cm.Msg(1, Meta("cfg")).Entry(2, "a", "1").Entry(2, "empty", "").Entry(2, "b", "two words");
  Result<json> r = DecodeProtobufBody(Pb::Body("v1", "ConfigMap", cm));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ((*r)["data"], json::parse(R"({"a":"1","empty":"","b":"two words"})"));
}

TEST(ProtobufTest, SecretBytesAreBase64) {
  Pb secret;
  secret.Msg(1, Meta("s"))
      .Entry(2, "password", std::string("s3cr\xff\0t", 7))
      .Entry(2, "k", "ab")
      .Str(3, "Opaque");
  Result<json> r = DecodeProtobufBody(Pb::Body("v1", "Secret", secret));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ((*r)["data"]["password"], internal::Base64Encode(std::string("s3cr\xff\0t", 7)));
  EXPECT_EQ((*r)["data"]["password"], "czNjcv8AdA==");
  EXPECT_EQ((*r)["data"]["k"], "YWI=");
  EXPECT_EQ((*r)["type"], "Opaque");
}

TEST(ProtobufTest, ServiceIntOrStringTargetPort) {
  Pb by_number;
  by_number.Str(1, "http").Str(2, "TCP").Varint(3, 80).Msg(4, Pb().Varint(1, 0).Varint(2, 8080));
  Pb by_name;
  by_name.Str(1, "admin").Str(2, "TCP").Varint(3, 81)
      .Msg(4, Pb().Varint(1, 1).Varint(2, 0).Str(3, "admin-port"));
  Pb spec;
  spec.Msg(1, by_number).Msg(1, by_name).Entry(2, "app", "web").Str(4, "ClusterIP");
  Pb svc;
  svc.Msg(1, Meta("web")).Msg(2, spec).Msg(3, Pb().Msg(1, Pb()));
  Result<json> r = DecodeProtobufBody(Pb::Body("v1", "Service", svc));
  ASSERT_TRUE(r.ok()) << r.status().message();
  const json& ports = (*r)["spec"]["ports"];
  ASSERT_EQ(ports.size(), 2u);
  EXPECT_EQ(ports[0]["targetPort"], 8080);
  EXPECT_EQ(ports[0]["port"], 80);
  EXPECT_EQ(ports[1]["targetPort"], "admin-port");
  EXPECT_EQ((*r)["spec"]["selector"]["app"], "web");
  EXPECT_EQ((*r)["status"], json::parse(R"({"loadBalancer":{}})"));
}

TEST(ProtobufTest, TimesAndNegativeInts) {
  Pb meta = Meta("t");
  meta.Msg(9, Pb().Varint(1, 1714557600).Varint(2, 123456789));  // deletionTimestamp
  // A negative int64 is a 10-byte varint.
  meta.Varint(10, static_cast<uint64_t>(int64_t{-5}));
  Pb ev;
  ev.Msg(1, meta)
      .Msg(2, Pb().Str(1, "Pod").Str(3, "p"))
      .Msg(6, Pb().Varint(1, 0))  // zero firstTimestamp: absent
      .Msg(10, Pb().Varint(1, 1714557600).Varint(2, 123456789))
      .Varint(8, static_cast<uint64_t>(int64_t{-1}));
  Result<json> r = DecodeProtobufBody(Pb::Body("v1", "Event", ev));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ((*r)["metadata"]["deletionTimestamp"], "2024-05-01T10:00:00Z");
  EXPECT_EQ((*r)["metadata"]["deletionGracePeriodSeconds"], -5);
  EXPECT_FALSE(r->contains("firstTimestamp"));
  EXPECT_EQ((*r)["eventTime"], "2024-05-01T10:00:00.123456Z");
  EXPECT_EQ((*r)["count"], -1);
  EXPECT_EQ((*r)["involvedObject"], json::parse(R"({"kind":"Pod","name":"p"})"));
}

TEST(ProtobufTest, PackedAndUnpackedRepeatedScalars) {
  // PodSecurityContext.supplementalGroups (4, []int64): packed then unpacked.
  Pb sc;
  sc.Str(4, std::string("\x01\x02\x03", 3)).Varint(4, 7);
  Pb pod;
  pod.Msg(1, Meta("p")).Msg(2, Pb().Msg(14, sc));
  Result<json> r = DecodeProtobufBody(Pb::Body("v1", "Pod", pod));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ((*r)["spec"]["securityContext"]["supplementalGroups"], json::parse("[1,2,3,7]"));
}

TEST(ProtobufTest, UnknownFieldsAreSkipped) {
  Pb ns;
  ns.Msg(1, Meta("x").Varint(999, 5).Fixed64(998, 1).Str(997, "zz")).Varint(50, 1);
  Result<json> r = DecodeProtobufBody(Pb::Body("v1", "Namespace", ns));
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ((*r)["metadata"]["name"], "x");
}

TEST(ProtobufTest, GoDurationFormat) {
  EXPECT_EQ(internal::FormatGoDuration(0), "0s");
  EXPECT_EQ(internal::FormatGoDuration(300000000000LL), "5m0s");
  EXPECT_EQ(internal::FormatGoDuration(3600000000000LL), "1h0m0s");
  EXPECT_EQ(internal::FormatGoDuration(1500000000LL), "1.5s");
  EXPECT_EQ(internal::FormatGoDuration(1500000LL), "1.5ms");
  EXPECT_EQ(internal::FormatGoDuration(2000LL), "2\xC2\xB5s");
  EXPECT_EQ(internal::FormatGoDuration(-42LL), "-42ns");
}

TEST(ProtobufTest, ErrorsNameOffsetAndPath) {
  Pb bad_container;
  bad_container.Str(1, "c").Varint(2, 5);  // image is a string, not a varint
  Pb pod;
  pod.Msg(1, Meta("p")).Msg(2, Pb().Msg(2, bad_container));
  Result<json> r = DecodeProtobufBody(Pb::Body("v1", "Pod", pod));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("spec.containers[0].image"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("at byte "), std::string::npos);
  EXPECT_NE(r.status().message().find("wrong wire type"), std::string::npos);

  Result<json> unknown = DecodeProtobufBody(Pb::Body("v1", "Gizmo", Pb()));
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find("no schema for kind \"Gizmo\""), std::string::npos);
  EXPECT_FALSE(DecodeProtobufBody("{}").ok());
  EXPECT_FALSE(DecodeProtobufBody(std::string("k8s\0", 4)).ok());
}

TEST(ProtobufTest, DeepNestingIsRefused) {
  // The builtin schema has no recursive type, so use a self-nesting test schema.
  Result<Schema> s = Schema::Parse({{"r.schema", "package r.v1 r\nmessage R\n  r 1 R\n"}});
  ASSERT_TRUE(s.ok()) << s.status().message();
  Pb inner;
  for (int i = 0; i < 100; ++i) inner = Pb().Msg(1, inner);
  Result<json> r = DecodeProtobufBody(Pb::Body("r/v1", "R", inner), *s);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("nesting deeper than 64"), std::string::npos);
  Pb ok_inner;
  for (int i = 0; i < 60; ++i) ok_inner = Pb().Msg(1, ok_inner);
  EXPECT_TRUE(DecodeProtobufBody(Pb::Body("r/v1", "R", ok_inner), *s).ok());
}

TEST(ProtobufTest, EveryTruncationFailsCleanlyOrDecodes) {
  const std::string bodies[] = {WebappDeployment(),
                                Pb::Body("v1", "Secret", Pb().Msg(1, Meta("s")).Entry(2, "k", "v"))};
  for (const std::string& full : bodies) {
    for (size_t n = 0; n < full.size(); ++n) {
      Result<json> r = DecodeProtobufBody(std::string_view(full).substr(0, n));
      if (!r.ok()) {
        EXPECT_FALSE(r.status().message().empty());
      }
    }
    // Every single-byte corruption too.
    for (size_t i = 4; i < full.size(); ++i) {
      for (int flip : {0x01, 0x80, 0xff}) {
        std::string bad = full;
        bad[i] = static_cast<char>(bad[i] ^ flip);
        Result<json> r = DecodeProtobufBody(bad);
        if (r.ok()) {
          EXPECT_TRUE(r->is_object());
        }
      }
    }
  }
}

// Random multi-byte mutations (flips, insertions, deletions, copied runs) of a real body: each
// fails with a message or decodes to an object, which the API server's type check then reads
// without throwing. (Run 100,000 times under ASan and UBSan when written: clean.)
TEST(ProtobufTest, RandomMutationsFailCleanlyOrDecode) {
  const std::string seed = WebappDeployment();
  const MessageType* deployment = Schema::Builtin().ForKind("apps", "v1", "Deployment");
  ASSERT_NE(deployment, nullptr);
  std::mt19937_64 rng(20261128);
  int decoded = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string body = seed;
    for (int k = 1 + static_cast<int>(rng() % 8); k > 0; --k) {
      const size_t at = 4 + rng() % (body.size() - 3);  // never the magic
      switch (rng() % 4) {
        case 0: if (at < body.size()) body[at] = static_cast<char>(rng()); break;
        case 1: body.insert(body.begin() + at, static_cast<char>(rng())); break;
        case 2: if (at < body.size()) body.erase(body.begin() + at); break;
        default: body.insert(at, body.substr(4 + rng() % (body.size() - 4), rng() % 16)); break;
      }
    }
    Result<json> r = DecodeProtobufBody(body);
    if (!r.ok()) {
      ASSERT_EQ(r.status().code(), Code::kInvalidArgument) << r.status().message();
      continue;
    }
    ++decoded;
    ASSERT_TRUE(r->is_object());
    EXPECT_NO_THROW((void)CheckAndNormalizeTypes(*r, *deployment));
  }
  EXPECT_GT(decoded, 0);  // some mutations only change values: the decoder really ran
}

TEST(ProtobufTest, MalformedVarintAndLengths) {
  std::string head = std::string("k8s\0", 4);
  EXPECT_FALSE(DecodeProtobufBody(head + std::string(11, '\xff')).ok());  // varint too long
  EXPECT_FALSE(DecodeProtobufBody(head + "\x0a\x7f").ok());               // length past the end
  EXPECT_FALSE(DecodeProtobufBody(head + "\x0b").ok());                   // group wire type
}

}  // namespace
}  // namespace mk8s::api
