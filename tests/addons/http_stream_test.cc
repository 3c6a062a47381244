// Streamed responses of addon routes (ABI 1.2) without an API server: a real HostContext and
// HttpRoutes on a real AddonThread, the addon's handlers as plain C functions calling the host's
// vtable (as a raw C addon would), and a fake chunked ResponseStream standing for the client.
#include <gtest/gtest.h>
#include <mk8s/addon.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "addonhost/addon_thread.h"
#include "addonhost/host_context.h"
#include "addonhost/http_routes.h"
#include "addonhost/http_stream.h"

namespace mk8s::addonhost {
namespace {

namespace http = apiserver::http;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;
constexpr auto kDeadline = std::chrono::seconds(10);

// The client's end of a chunked response. `unsent` plays the bytes the client has not read.
class FakeStream : public http::ResponseStream {
 public:
  bool Write(std::string chunk) override {
    std::lock_guard lock(mu_);
    if (ended_) return false;
    body_ += chunk;
    return true;
  }
  void Close() override { End(true); }
  size_t buffered_bytes() const override { return unsent.load(); }
  void OnClosed(std::function<void()> callback) override {
    std::unique_lock lock(mu_);
    if (!ended_) {
      on_closed_ = std::move(callback);
      return;
    }
    lock.unlock();
    callback();
  }
  void Disconnect() { End(false); }  // the client hangs up

  bool WaitEnded() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kDeadline, [&] { return ended_; });
  }
  std::string body() {
    std::lock_guard lock(mu_);
    return body_;
  }
  bool finished() {  // ended with the terminating chunk
    std::lock_guard lock(mu_);
    return finished_;
  }

  std::atomic<size_t> unsent{0};

 private:
  void End(bool finished) {
    std::function<void()> callback;
    {
      std::lock_guard lock(mu_);
      if (ended_) return;
      ended_ = true;
      finished_ = finished;
      callback = std::move(on_closed_);
    }
    cv_.notify_all();
    if (callback) std::thread(callback).detach();  // as a transport thread would run it
  }

  std::mutex mu_;
  std::condition_variable cv_;
  bool ended_ = false, finished_ = false;
  std::string body_;
  std::function<void()> on_closed_;
};

// Records how the request was answered: Send, or StartStream (then `stream`).
class Client : public http::Responder {
 public:
  void Send(http::Response response) override {
    std::lock_guard lock(mu_);
    sent_ = std::move(response);
    cv_.notify_all();
  }
  std::shared_ptr<http::ResponseStream> StartStream(int status, std::string content_type,
                                                    std::vector<http::Header>) override {
    std::lock_guard lock(mu_);
    stream_status = status;
    stream_type = content_type;
    stream = std::make_shared<FakeStream>();
    cv_.notify_all();
    return stream;
  }
  // Waits for an answer of either kind.
  void Wait() {
    std::unique_lock lock(mu_);
    EXPECT_TRUE(cv_.wait_for(lock, kDeadline, [&] { return sent_ || stream; }));
  }
  std::optional<http::Response> sent() {
    std::lock_guard lock(mu_);
    return sent_;
  }

  std::shared_ptr<FakeStream> stream;  // set once StartStream ran
  int stream_status = 0;
  std::string stream_type;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::optional<http::Response> sent_;
};

// The test addon's state: its host vtable and what its handlers leave behind.
struct TestAddon {
  const mk8s_host_api_v1* host = nullptr;
  std::atomic<mk8s_http_stream*> stream{nullptr};
  std::atomic<mk8s_status_t> handler_write{-1};
};

mk8s_borrowed_str Str(std::string_view s) { return {s.data(), s.size()}; }

// Writes "head-" into the body, begins a 206 text/plain stream, writes "x" and returns; the
// handle goes to the test (playing the addon's producer thread).
mk8s_status_t BeginAndReturn(void* user_data, const mk8s_http_request_v1*,
                             mk8s_http_response_v1* response, mk8s_message_out*) {
  auto* addon = static_cast<TestAddon*>(user_data);
  const mk8s_host_api_v1* host = addon->host;
  host->mk8s_host_http_write(host->ctx, response->body, Str("head-"));
  mk8s_http_stream* stream = nullptr;
  if (host->mk8s_host_http_stream_begin(host->ctx, response, &stream, nullptr) != MK8S_OK) {
    return MK8S_ERR_INTERNAL;
  }
  mk8s_http_stream* again = nullptr;
  if (host->mk8s_host_http_stream_begin(host->ctx, response, &again, nullptr) !=
      MK8S_ERR_INVALID_ARGUMENT) {
    return MK8S_ERR_INTERNAL;  // a response streams once
  }
  response->status = 206;
  std::strcpy(response->content_type.data, "text/plain");
  response->content_type.len = std::strlen("text/plain");
  addon->handler_write = host->mk8s_host_http_stream_write(host->ctx, stream, Str("x"), 0);
  addon->stream = stream;
  return MK8S_OK;
}

// Begins a stream, then fails.
mk8s_status_t BeginAndFail(void* user_data, const mk8s_http_request_v1*,
                           mk8s_http_response_v1* response, mk8s_message_out* message) {
  auto* addon = static_cast<TestAddon*>(user_data);
  mk8s_http_stream* stream = nullptr;
  addon->host->mk8s_host_http_stream_begin(addon->host->ctx, response, &stream, nullptr);
  addon->stream = stream;
  std::strcpy(message->data, "the blob vanished");
  message->len = std::strlen(message->data);
  return MK8S_ERR_NOT_FOUND;
}

// Before it returns, writes more than the bound: that cannot wait, so it times out at once.
mk8s_status_t WriteTooMuchFirst(void* user_data, const mk8s_http_request_v1*,
                                mk8s_http_response_v1* response, mk8s_message_out*) {
  auto* addon = static_cast<TestAddon*>(user_data);
  const mk8s_host_api_v1* host = addon->host;
  mk8s_http_stream* stream = nullptr;
  host->mk8s_host_http_stream_begin(host->ctx, response, &stream, nullptr);
  const std::string half(MK8S_HTTP_STREAM_MAX_BUFFERED / 2 + 1, 'h');
  host->mk8s_host_http_stream_write(host->ctx, stream, Str(half), 1000);
  const auto start = Clock::now();
  addon->handler_write = host->mk8s_host_http_stream_write(host->ctx, stream, Str(half), 60000);
  if (Clock::now() - start > std::chrono::seconds(5)) addon->handler_write = -2;
  host->mk8s_host_http_stream_end(host->ctx, stream);
  return MK8S_OK;
}

class HttpStreamTest : public ::testing::Test {
 protected:
  void SetUp() override {
    thread_ = std::make_shared<AddonThread>("stream-test");
    routes_ = std::make_shared<HttpRoutes>();
    host_ = std::make_unique<HostContext>(HostSettings{}, nullptr, thread_, "demo");
    host_->SetIdentity("demo", ::testing::TempDir());
    host_->SetHttpRoutes(routes_);
    addon_.host = host_->api();
  }
  void TearDown() override {
    host_.reset();
    thread_.reset();
  }

  void Serve(const char* prefix, mk8s_on_http_fn handler) {
    mk8s_http_route_v1 route{};
    route.abi_version = MK8S_ABI_VERSION;
    route.struct_size = sizeof(route);
    route.prefix = prefix;
    route.on_request = handler;
    route.user_data = &addon_;
    ASSERT_EQ(api()->mk8s_host_serve_http(api()->ctx, &route, nullptr), MK8S_OK);
  }
  std::shared_ptr<Client> Get(const std::string& path) {
    http::Request request;
    request.method = "GET";
    request.path = "/addons/demo" + path;
    auto client = std::make_shared<Client>();
    routes_->Serve(request, "alice", client);
    client->Wait();
    return client;
  }
  const mk8s_host_api_v1* api() { return host_->api(); }
  mk8s_status_t Write(std::string_view bytes, int64_t timeout_ms) {
    return api()->mk8s_host_http_stream_write(api()->ctx, addon_.stream, Str(bytes), timeout_ms);
  }
  void End() { api()->mk8s_host_http_stream_end(api()->ctx, addon_.stream.exchange(nullptr)); }

  std::shared_ptr<AddonThread> thread_;
  std::shared_ptr<HttpRoutes> routes_;
  std::unique_ptr<HostContext> host_;
  TestAddon addon_;
};

TEST_F(HttpStreamTest, TheHeadGoesOutWhenTheHandlerReturnsAndTheBodyAsTheAddonWrites) {
  Serve("/blob", &BeginAndReturn);
  std::shared_ptr<Client> client = Get("/blob");
  ASSERT_NE(client->stream, nullptr);
  EXPECT_FALSE(client->sent().has_value());
  EXPECT_EQ(client->stream_status, 206);
  EXPECT_EQ(client->stream_type, "text/plain");
  EXPECT_EQ(addon_.handler_write.load(), MK8S_OK);
  // The addon's own thread goes on writing, then ends the body.
  std::thread producer([&] {
    for (const char* part : {"1", "2", "3"}) EXPECT_EQ(Write(part, 1000), MK8S_OK);
    End();
  });
  producer.join();
  ASSERT_TRUE(client->stream->WaitEnded());
  EXPECT_TRUE(client->stream->finished());
  EXPECT_EQ(client->stream->body(), "head-x123");
}

TEST_F(HttpStreamTest, AWriteWaitsForRoomAndTimesOutWithNothingQueued) {
  Serve("/blob", &BeginAndReturn);
  std::shared_ptr<Client> client = Get("/blob");
  ASSERT_NE(client->stream, nullptr);
  const std::string too_big(MK8S_HTTP_STREAM_MAX_WRITE + 1, 'b');
  EXPECT_EQ(Write(too_big, 0), MK8S_ERR_INVALID_ARGUMENT);

  client->stream->unsent = MK8S_HTTP_STREAM_MAX_BUFFERED;  // the client stopped reading
  EXPECT_EQ(Write("", 0), MK8S_OK);                        // still open
  EXPECT_EQ(Write("y", 0), MK8S_ERR_TIMEOUT);
  const auto start = Clock::now();
  EXPECT_EQ(Write("y", 150), MK8S_ERR_TIMEOUT);
  EXPECT_GE(Clock::now() - start, milliseconds(150));

  // It reads again while a writer waits without a limit: the write goes through.
  std::atomic<mk8s_status_t> waited{-1};
  std::thread writer([&] { waited = Write("z", -1); });
  client->stream->unsent = 0;
  writer.join();
  EXPECT_EQ(waited.load(), MK8S_OK);
  End();
  ASSERT_TRUE(client->stream->WaitEnded());
  EXPECT_EQ(client->stream->body(), "head-xz");  // nothing of the timed-out writes
}

TEST_F(HttpStreamTest, WhenTheClientLeavesAWaitingWriteAndEveryLaterOneAnswerClosed) {
  Serve("/blob", &BeginAndReturn);
  std::shared_ptr<Client> client = Get("/blob");
  ASSERT_NE(client->stream, nullptr);
  client->stream->unsent = MK8S_HTTP_STREAM_MAX_BUFFERED;
  std::atomic<mk8s_status_t> waited{-1};
  std::thread writer([&] { waited = Write("z", -1); });
  client->stream->Disconnect();
  writer.join();  // a write without a time limit returns once the client is gone
  EXPECT_EQ(waited.load(), MK8S_ERR_CLOSED);
  EXPECT_EQ(Write("more", 0), MK8S_ERR_CLOSED);
  EXPECT_EQ(Write("", 0), MK8S_ERR_CLOSED);
  End();  // the handle is still the addon's to free
}

TEST_F(HttpStreamTest, StoppingTheAddonEndsItsStreamsAndWakesItsWriters) {
  Serve("/blob", &BeginAndReturn);
  std::shared_ptr<Client> client = Get("/blob");
  ASSERT_NE(client->stream, nullptr);
  client->stream->unsent = MK8S_HTTP_STREAM_MAX_BUFFERED;
  std::atomic<mk8s_status_t> waited{-1};
  std::thread writer([&] { waited = Write("z", -1); });
  host_->StopServingHttp(milliseconds(5000));  // what LoadedAddon does before mk8s_on_stop
  writer.join();
  EXPECT_EQ(waited.load(), MK8S_ERR_CLOSED);
  ASSERT_TRUE(client->stream->WaitEnded());
  EXPECT_TRUE(client->stream->finished());  // the client sees the end of the body
  EXPECT_EQ(client->stream->body(), "head-x");
  EXPECT_EQ(routes_->size("demo"), 0u);
  End();
}

TEST_F(HttpStreamTest, AHandlerThatFailsAfterBeginningGets500AndItsStreamIsClosed) {
  Serve("/blob", &BeginAndFail);
  std::shared_ptr<Client> client = Get("/blob");
  ASSERT_TRUE(client->sent().has_value());
  EXPECT_EQ(client->stream, nullptr);
  EXPECT_EQ(client->sent()->status, 500);
  EXPECT_NE(client->sent()->body.find("the blob vanished"), std::string::npos);
  ASSERT_NE(addon_.stream.load(), nullptr);
  EXPECT_EQ(Write("late", 1000), MK8S_ERR_CLOSED);
  End();
}

TEST_F(HttpStreamTest, TheHandlerCannotWaitForRoomBeforeItReturns) {
  Serve("/blob", &WriteTooMuchFirst);
  std::shared_ptr<Client> client = Get("/blob");
  ASSERT_NE(client->stream, nullptr);
  EXPECT_EQ(addon_.handler_write.load(), MK8S_ERR_TIMEOUT);  // at once, not after 60 s
  ASSERT_TRUE(client->stream->WaitEnded());
  EXPECT_EQ(client->stream->body().size(), MK8S_HTTP_STREAM_MAX_BUFFERED / 2 + 1);
}

TEST_F(HttpStreamTest, BeginIsOnlyForAHandlerDuringItsCall) {
  HttpCall call;
  mk8s_http_response_v1 response{};
  response.abi_version = MK8S_ABI_VERSION;
  response.struct_size = sizeof(response);
  response.body = reinterpret_cast<mk8s_http_writer*>(&call);
  mk8s_http_stream* stream = nullptr;
  char text[256] = {0};
  mk8s_message_out error{text, sizeof(text), 0};
  // From a thread that is not the addon's.
  EXPECT_EQ(api()->mk8s_host_http_stream_begin(api()->ctx, &response, &stream, &error),
            MK8S_ERR_INVALID_ARGUMENT);
  EXPECT_NE(std::string(text).find("during its call"), std::string::npos) << text;
  EXPECT_EQ(stream, nullptr);
  EXPECT_EQ(api()->mk8s_host_http_stream_write(api()->ctx, nullptr, Str("x"), 0),
            MK8S_ERR_INVALID_ARGUMENT);
  api()->mk8s_host_http_stream_end(api()->ctx, nullptr);  // a no-op
}

TEST_F(HttpStreamTest, AHandleTheAddonNeverEndedIsFreedWithTheContext) {
  Serve("/blob", &BeginAndReturn);
  std::shared_ptr<Client> client = Get("/blob");
  ASSERT_NE(client->stream, nullptr);
  host_->Close();  // after unload: the stream ends, the handle is the host's again
  EXPECT_TRUE(client->stream->WaitEnded());
  EXPECT_EQ(Write("x", 0), MK8S_ERR_CLOSED);
  host_.reset();  // frees the leftover handle (ASan/valgrind would see a leak otherwise)
  addon_.stream = nullptr;
}

// The C++ wrapper detects a host older than ABI 1.2 by its struct_size and says so.
TEST_F(HttpStreamTest, TheWrapperRefusesToStreamOnAHostOlderThan12) {
  mk8s_host_api_v1 old_host = *api();
  old_host.struct_size = MK8S_HOST_API_V1_1_MIN_SIZE;
  sdk::HttpRoute::Bound bound{&old_host, [](const sdk::HttpRequest& request) {
                                sdk::HttpStream stream = request.BeginStream(200, "text/plain");
                                return sdk::HttpResponse{};
                              }};
  mk8s_http_route_v1 route{};
  route.abi_version = MK8S_ABI_VERSION;
  route.struct_size = sizeof(route);
  route.prefix = "/old";
  route.on_request = &sdk::HttpRoute::Trampoline;
  route.user_data = &bound;
  ASSERT_EQ(api()->mk8s_host_serve_http(api()->ctx, &route, nullptr), MK8S_OK);
  std::shared_ptr<Client> client = Get("/old");
  ASSERT_TRUE(client->sent().has_value());
  EXPECT_EQ(client->sent()->status, 500);
  EXPECT_NE(client->sent()->body.find("predates addon ABI 1.2"), std::string::npos)
      << client->sent()->body;

  // The same handler on this host streams (the wrapper ends the stream when it goes out of
  // scope, so the body is empty and complete).
  bound.host = api();
  client = Get("/old");
  ASSERT_NE(client->stream, nullptr);
  EXPECT_EQ(client->stream_type, "text/plain");
  ASSERT_TRUE(client->stream->WaitEnded());
  EXPECT_TRUE(client->stream->finished());
}

}  // namespace
}  // namespace mk8s::addonhost
