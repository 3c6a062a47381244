// The addons' HTTP routes without an API server: matching, the handler's answer, errors, and
// routes dropped before a queued request runs. Handlers are plain C functions here, as a raw C
// addon would give; they run on a real AddonThread.
#include "addonhost/http_routes.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <future>
#include <mutex>
#include <optional>
#include <string>

#include "addonhost/addon_thread.h"
#include "addonhost/http_stream.h"

namespace mk8s::addonhost {
namespace {

namespace http = apiserver::http;

// Captures the one answer; Wait blocks until it arrives (with a deadline).
class CapturingResponder : public http::Responder {
 public:
  void Send(http::Response response) override {
    std::lock_guard lock(mu_);
    response_ = std::move(response);
    ++sends_;
    cv_.notify_all();
  }
  std::shared_ptr<http::ResponseStream> StartStream(int, std::string,
                                                    std::vector<http::Header>) override {
    return nullptr;
  }
  http::Response Wait() {
    std::unique_lock lock(mu_);
    EXPECT_TRUE(
        cv_.wait_for(lock, std::chrono::seconds(10), [&] { return response_.has_value(); }));
    return response_.value_or(http::Response{0, "", {}, ""});
  }
  int sends() {
    std::lock_guard lock(mu_);
    return sends_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<http::Response> response_;
  int sends_ = 0;
};

// Echoes "<tag> <method> <path>?<query> as <user>"; its user_data is the tag.
mk8s_status_t Echo(void* user_data, const mk8s_http_request_v1* request,
                   mk8s_http_response_v1* response, mk8s_message_out*) {
  const auto view = [](mk8s_borrowed_str s) { return std::string(s.ptr, s.len); };
  const std::string text = std::string(static_cast<const char*>(user_data)) + " " +
                           view(request->method) + " " + view(request->path) + "?" +
                           view(request->query) + " as " + view(request->user);
  response->status = 201;
  std::strncpy(response->content_type.data, "text/plain", response->content_type.capacity - 1);
  response->content_type.len = std::strlen(response->content_type.data);
  WriteBody(response->body, text);  // what the host's mk8s_host_http_write does
  return MK8S_OK;
}

mk8s_status_t Fails(void*, const mk8s_http_request_v1*, mk8s_http_response_v1*,
                    mk8s_message_out* message) {
  const char* why = "no database";
  std::strncpy(message->data, why, message->capacity - 1);
  message->len = std::strlen(why);
  return MK8S_ERR_UNAVAILABLE;
}

http::Response Get(const std::shared_ptr<HttpRoutes>& routes, const std::string& path,
                   const std::string& query = "") {
  http::Request request;
  request.method = "GET";
  request.path = path;
  request.query = query;
  auto responder = std::make_shared<CapturingResponder>();
  routes->Serve(request, "alice", responder);
  return responder->Wait();
}

TEST(HttpRoutes, PrefixesAreCheckedWhenAdded) {
  for (const char* good : {"/", "/hello", "/a/b-c/d_e.f"}) EXPECT_TRUE(ValidRoutePrefix(good));
  for (const char* bad :
       {"", "hello", "/hello/", "//x", "/a//b", "/a/../b", "/.", "/a b", "/a?b", "/a%2F"}) {
    EXPECT_FALSE(ValidRoutePrefix(bad)) << bad;
  }
  auto routes = std::make_shared<HttpRoutes>();
  auto thread = std::make_shared<AddonThread>("test");
  static char tag[] = "x";
  EXPECT_EQ(routes->Add("a", thread, "/x/", &Echo, tag).code(), Code::kInvalidArgument);
  EXPECT_EQ(routes->Add("a", thread, "/x", nullptr, tag).code(), Code::kInvalidArgument);
  EXPECT_TRUE(routes->Add("a", thread, "/x", &Echo, tag).ok());
  EXPECT_EQ(routes->Add("a", thread, "/x", &Echo, tag).code(), Code::kInvalidArgument);
  EXPECT_TRUE(routes->Add("b", thread, "/x", &Echo, tag).ok());  // another addon's namespace
}

TEST(HttpRoutes, TheLongestPrefixOfTheAddonAnswers) {
  auto routes = std::make_shared<HttpRoutes>();
  auto thread = std::make_shared<AddonThread>("test");
  static char root[] = "root", hello[] = "hello", deep[] = "deep";
  ASSERT_TRUE(routes->Add("demo", thread, "/", &Echo, root).ok());
  ASSERT_TRUE(routes->Add("demo", thread, "/hello", &Echo, hello).ok());
  ASSERT_TRUE(routes->Add("demo", thread, "/hello/deep", &Echo, deep).ok());

  http::Response r = Get(routes, "/addons/demo/hello", "a=1");
  EXPECT_EQ(r.status, 201);
  EXPECT_EQ(r.content_type, "text/plain");
  EXPECT_EQ(r.body, "hello GET /hello?a=1 as alice");
  EXPECT_EQ(Get(routes, "/addons/demo/hello/x").body, "hello GET /hello/x? as alice");
  EXPECT_EQ(Get(routes, "/addons/demo/hello/deep/er").body, "deep GET /hello/deep/er? as alice");
  EXPECT_EQ(Get(routes, "/addons/demo/hellox").body, "root GET /hellox? as alice");
  EXPECT_EQ(Get(routes, "/addons/demo").body, "root GET /? as alice");
  EXPECT_EQ(Get(routes, "/addons/other/hello").status, 404);
}

TEST(HttpRoutes, AFailingHandlerIs500AndADroppedRouteIs503Or404) {
  auto routes = std::make_shared<HttpRoutes>();
  auto thread = std::make_shared<AddonThread>("test");
  ASSERT_TRUE(routes->Add("demo", thread, "/fail", &Fails, nullptr).ok());
  http::Response failed = Get(routes, "/addons/demo/fail");
  EXPECT_EQ(failed.status, 500);
  EXPECT_NE(failed.body.find("no database"), std::string::npos) << failed.body;

  // A request queued behind a slow task, whose route is dropped before it runs: 503, never a
  // call into the (possibly stopping) addon.
  static char tag[] = "t";
  ASSERT_TRUE(routes->Add("demo", thread, "/slow", &Echo, tag).ok());
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  thread->Post([released] { released.wait(); });
  http::Request request;
  request.method = "GET";
  request.path = "/addons/demo/slow";
  auto responder = std::make_shared<CapturingResponder>();
  routes->Serve(request, "alice", responder);
  routes->RemoveAll("demo");
  release.set_value();
  EXPECT_EQ(responder->Wait().status, 503);
  EXPECT_EQ(responder->sends(), 1);
  EXPECT_EQ(Get(routes, "/addons/demo/slow").status, 404);
}

}  // namespace
}  // namespace mk8s::addonhost
