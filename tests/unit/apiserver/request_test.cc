#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "apiserver/api_error.h"
#include "apiserver/http/wire.h"
#include "apiserver/request_info.h"
#include "apiserver/selectors.h"
#include "common/url_encoding.h"

namespace mk8s::apiserver {
namespace {

using nlohmann::json;

TEST(RequestInfoTest, NamespacedSubresource) {
  RequestInfo info = ParseRequestInfo("GET", "/api/v1/namespaces/default/pods/web/log", "");
  EXPECT_TRUE(info.is_resource_request);
  EXPECT_EQ(info.group, "");
  EXPECT_EQ(info.version, "v1");
  EXPECT_EQ(info.namespace_, "default");
  EXPECT_EQ(info.resource, "pods");
  EXPECT_EQ(info.name, "web");
  EXPECT_EQ(info.subresource, "log");
  EXPECT_EQ(info.verb, "get");
}

TEST(RequestInfoTest, WatchAndListAcrossNamespaces) {
  RequestInfo watch = ParseRequestInfo("GET", "/apis/apps/v1/deployments", "watch=True");
  EXPECT_EQ(watch.group, "apps");
  EXPECT_EQ(watch.verb, "watch");
  EXPECT_TRUE(watch.namespace_.empty());
  EXPECT_EQ(ParseRequestInfo("GET", "/apis/apps/v1/deployments", "watch=false").verb, "list");
  EXPECT_EQ(ParseRequestInfo("DELETE", "/api/v1/namespaces/x/pods", "").verb, "deletecollection");
}

TEST(RequestInfoTest, NamespaceObjectAndItsStatus) {
  RequestInfo ns = ParseRequestInfo("GET", "/api/v1/namespaces/kube-system", "");
  EXPECT_EQ(ns.resource, "namespaces");
  EXPECT_EQ(ns.name, "kube-system");
  EXPECT_TRUE(ns.namespace_.empty());
  RequestInfo status = ParseRequestInfo("PUT", "/api/v1/namespaces/x/status", "");
  EXPECT_EQ(status.resource, "namespaces");
  EXPECT_EQ(status.name, "x");
  EXPECT_EQ(status.subresource, "status");
  EXPECT_EQ(status.verb, "update");
}

TEST(RequestInfoTest, DiscoveryIsNotAResourceRequest) {
  EXPECT_FALSE(ParseRequestInfo("GET", "/api/v1", "").is_resource_request);
  EXPECT_FALSE(ParseRequestInfo("GET", "/apis/apps/v1", "").is_resource_request);
  EXPECT_FALSE(ParseRequestInfo("GET", "/version", "").is_resource_request);
}

TEST(QueryParamsTest, GoStyleBooleansAndDecoding) {
  QueryParams params("watch=True&labelSelector=app%3Dweb%2Ctier+in+(a)&x=maybe");
  EXPECT_TRUE(params.GetBool("watch", false));
  EXPECT_EQ(params.Get("labelSelector"), "app=web,tier in (a)");
  bool ok = true;
  params.GetBool("x", false, &ok);
  EXPECT_FALSE(ok);
}

TEST(UrlEncodingTest, PathsKeepPlusQueriesDecodeItAndMalformedEscapesStay) {
  EXPECT_EQ(common::PercentDecode("/api/v1/namespaces/a%2Bb/x+y", false), "/api/v1/namespaces/a+b/x+y");
  EXPECT_EQ(common::PercentDecode("x+y%20z", true), "x y z");
  EXPECT_EQ(common::PercentDecode("100%", true), "100%");
  EXPECT_EQ(common::PercentDecode("%zz%4", true), "%zz%4");
  EXPECT_EQ(common::PercentDecode("%4a%4A", false), "JJ");
  const auto params = common::ParseQuery("command=sh&&command=-c&command=echo+%22hi%22&tty&=v");
  ASSERT_EQ(params.size(), 5u);
  EXPECT_EQ(params[2].second, "echo \"hi\"");
  EXPECT_EQ(params[3], (std::pair<std::string, std::string>("tty", "")));
  EXPECT_EQ(params[4], (std::pair<std::string, std::string>("", "v")));
}

TEST(SelectorTest, LabelSelectorOperators) {
  auto selector = LabelSelector::Parse("app=web,tier!=db,env in (prod,staging),!legacy,release");
  ASSERT_TRUE(selector.ok()) << selector.status().ToString();
  EXPECT_TRUE(selector->Matches(json{{"app", "web"}, {"env", "prod"}, {"release", "1"}}));
  EXPECT_FALSE(selector->Matches(json{{"app", "web"}, {"env", "prod"}}));  // no release
  EXPECT_FALSE(selector->Matches(
      json{{"app", "web"}, {"env", "prod"}, {"release", "1"}, {"legacy", "y"}}));
  EXPECT_FALSE(selector->Matches(json{{"app", "web"}, {"env", "dev"}, {"release", "1"}}));
  EXPECT_FALSE(LabelSelector::Parse("app in (a").ok());
  EXPECT_FALSE(LabelSelector::Parse("bad key!=x").ok());
}

TEST(SelectorTest, FieldSelector) {
  auto selector = FieldSelector::Parse("metadata.name=web,status.phase!=Running");
  ASSERT_TRUE(selector.ok());
  EXPECT_TRUE(selector->Matches(json{{"metadata", {{"name", "web"}}}, {"status", {{"phase", "Pending"}}}}));
  EXPECT_FALSE(selector->Matches(json{{"metadata", {{"name", "web"}}}, {"status", {{"phase", "Running"}}}}));
  ASSERT_NE(selector->RequiredValue("metadata.name"), nullptr);
  EXPECT_EQ(*selector->RequiredValue("metadata.name"), "web");
  EXPECT_FALSE(FieldSelector::Parse("nonsense").ok());
}

TEST(ApiErrorTest, NotFoundStatusShape) {
  json status = json::parse(ApiError::NotFound("apps", "deployments", "webapp").ToJson());
  EXPECT_EQ(status["kind"], "Status");
  EXPECT_EQ(status["code"], 404);
  EXPECT_EQ(status["reason"], "NotFound");
  EXPECT_EQ(status["message"], "deployments.apps \"webapp\" not found");
  EXPECT_EQ(status["details"]["group"], "apps");
}

TEST(WireTest, RequestLineAndHeaders) {
  http::Request request = http::MakeRequest("GET", "/api/v1/namespaces/a%2Db/pods?limit=5&x=%41");
  EXPECT_EQ(request.path, "/api/v1/namespaces/a-b/pods");
  EXPECT_EQ(request.query, "limit=5&x=%41");  // the query stays raw
  EXPECT_EQ(http::MakeRequest("GET", "/api/v1/pods").path, "/api/v1/pods");
  EXPECT_EQ(common::PercentDecode("%4g%", false), "%4g%");  // malformed escapes stay
  http::AddHeader(&request, "Content-TYPE", "Application/JSON");
  http::AddHeader(&request, "X-\xc3\x89", "v");  // non-ASCII bytes are left alone
  EXPECT_EQ(request.HeaderValue("content-type"), "Application/JSON");
  EXPECT_EQ(request.headers.back().name, "x-\xc3\x89");
}

}  // namespace
}  // namespace mk8s::apiserver
