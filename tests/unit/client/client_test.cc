// Request building and answer decoding, without a server.
#include "client/client.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace mk8s::client {
namespace {

using json = nlohmann::json;

TEST(ResourceRefTest, Paths) {
  EXPECT_EQ(kPods.Path("default"), "/api/v1/namespaces/default/pods");
  EXPECT_EQ(kPods.Path(""), "/api/v1/pods");
  EXPECT_EQ(kPods.Path("ns", "web", "binding"), "/api/v1/namespaces/ns/pods/web/binding");
  EXPECT_EQ(kNodes.Path("ignored", "n1", "status"), "/api/v1/nodes/n1/status");
  EXPECT_EQ(kDeployments.Path("d", "x"), "/apis/apps/v1/namespaces/d/deployments/x");
  EXPECT_EQ(kLeases.Name(), "leases.coordination.k8s.io");
}

TEST(ClientTest, ListRequestEncodesOptions) {
  ListOptions options;
  options.label_selector = "app=web,tier in (a b)";
  options.limit = 50;
  options.continue_token = "abc=";
  Request list = Client::ListRequest(kPods, "default", options, false);
  EXPECT_EQ(list.Target(),
            "/api/v1/namespaces/default/pods?labelSelector=app%3Dweb%2Ctier%20in%20%28a%20b%29"
            "&limit=50&continue=abc%3D");
  options.resource_version = "42";
  options.timeout_seconds = 300;
  Request watch = Client::ListRequest(kPods, "", options, true);
  EXPECT_EQ(watch.Target(),
            "/api/v1/pods?labelSelector=app%3Dweb%2Ctier%20in%20%28a%20b%29&resourceVersion=42"
            "&watch=1&allowWatchBookmarks=true&timeoutSeconds=300");
}

TEST(ClientTest, DecodesStatusErrors) {
  auto not_found = Client::Decode(Response{
      404, "application/json",
      R"({"kind":"Status","apiVersion":"v1","status":"Failure","message":"pods \"x\" not found","reason":"NotFound","code":404})"});
  ASSERT_FALSE(not_found.ok());
  EXPECT_TRUE(IsNotFound(not_found.error()));
  EXPECT_EQ(not_found.error().message, "pods \"x\" not found");
  EXPECT_EQ(not_found.status().code(), Code::kNotFound);

  auto exists = Client::Decode(
      Response{409, "application/json", R"({"kind":"Status","reason":"AlreadyExists","code":409})"});
  EXPECT_TRUE(IsAlreadyExists(exists.error()));
  EXPECT_FALSE(IsConflict(exists.error()));
  EXPECT_EQ(exists.status().code(), Code::kAlreadyExists);

  auto conflict = Client::Decode(
      Response{409, "application/json", R"({"kind":"Status","reason":"Conflict","code":409})"});
  EXPECT_TRUE(IsConflict(conflict.error()));

  auto plain = Client::Decode(Response{500, "text/plain", "boom"});
  EXPECT_EQ(plain.error().code, 500);
  EXPECT_EQ(plain.error().reason, "InternalError");
  EXPECT_EQ(plain.error().message, "boom");

  auto transport = Client::Decode(Response{0, "", "connection refused"});
  EXPECT_TRUE(IsTransportError(transport.error()));
  EXPECT_EQ(transport.status().code(), Code::kUnavailable);

  auto ok = Client::Decode(Response{200, "application/json", R"({"kind":"Pod"})"});
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ((*ok)["kind"], "Pod");
}

TEST(ClientTest, DecodesOnlyTheStatusForStatusOnlyCalls) {
  // A 2xx body is not read at all (not even checked to be JSON).
  EXPECT_FALSE(Client::DecodeStatus(Response{201, "application/json", "not json"}).has_value());
  auto not_found = Client::DecodeStatus(Response{
      404, "application/json", R"({"kind":"Status","reason":"NotFound","message":"gone","code":404})"});
  ASSERT_TRUE(not_found.has_value());
  EXPECT_TRUE(IsNotFound(*not_found));
  EXPECT_EQ(not_found->message, "gone");
  auto plain = Client::DecodeStatus(Response{503, "text/plain", "later"});
  ASSERT_TRUE(plain.has_value());
  EXPECT_EQ(plain->reason, "ServiceUnavailable");
  EXPECT_EQ(plain->message, "later");
  auto transport = Client::DecodeStatus(Response{0, "", ""});
  ASSERT_TRUE(transport.has_value());
  EXPECT_TRUE(IsTransportError(*transport));
  EXPECT_EQ(transport->message, "no response");
}

TEST(ClientTest, ObjectKeys) {
  EXPECT_EQ(ObjectKey(json{{"metadata", {{"name", "a"}, {"namespace", "ns"}}}}), "ns/a");
  EXPECT_EQ(ObjectKey(json{{"metadata", {{"name", "n1"}}}}), "n1");
  EXPECT_EQ(SplitKey("ns/a"), (std::pair<std::string, std::string>{"ns", "a"}));
  EXPECT_EQ(SplitKey("n1"), (std::pair<std::string, std::string>{"", "n1"}));
}

TEST(LineSplitterTest, SplitsAcrossChunks) {
  LineSplitter splitter;
  std::vector<std::string> lines;
  auto emit = [&](std::string line) { lines.push_back(std::move(line)); };
  splitter.Feed("{\"a\":1}\n{\"b\"", emit);
  splitter.Feed(":2}\r\n\n", emit);
  splitter.Feed("{\"c\":3}", emit);
  EXPECT_EQ(lines, (std::vector<std::string>{"{\"a\":1}", "{\"b\":2}"}));
  splitter.Feed("\n", emit);
  EXPECT_EQ(lines.back(), "{\"c\":3}");
}

}  // namespace
}  // namespace mk8s::client
