// Tests of LogStreamer against a recording responder: whole files, errors, follow.
#include "kubelet/server/log_streamer.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <mutex>

#include "temp_dir.h"

namespace mk8s::kubelet {
namespace {

namespace http = apiserver::http;
constexpr auto kDeadline = std::chrono::seconds(20);

// Records what a request was answered with. Thread-safe.
class Recorder final : public http::Responder,
                       public http::ResponseStream,
                       public std::enable_shared_from_this<Recorder> {
 public:
  void Send(http::Response response) override {
    std::lock_guard lock(mu_);
    status_ = response.status;
    body_ = response.body;
    ended_ = true;
    cv_.notify_all();
  }
  std::shared_ptr<http::ResponseStream> StartStream(int status, std::string,
                                                    std::vector<http::Header>) override {
    std::lock_guard lock(mu_);
    status_ = status;
    return shared_from_this();
  }
  bool Write(std::string chunk) override {
    std::lock_guard lock(mu_);
    if (ended_) return false;
    body_ += chunk;
    cv_.notify_all();
    return true;
  }
  void Close() override {
    std::lock_guard lock(mu_);
    ended_ = true;
    cv_.notify_all();
  }
  void OnClosed(std::function<void()> callback) override {
    std::lock_guard lock(mu_);
    on_closed_ = std::move(callback);
  }
  // The client hangs up.
  void HangUp() {
    std::function<void()> callback;
    {
      std::lock_guard lock(mu_);
      ended_ = true;
      callback = on_closed_;
    }
    if (callback) callback();
  }

  // Waits until the body is `expected` (true) or the deadline passes (false).
  bool WaitForBody(const std::string& expected) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kDeadline, [&] { return body_ == expected; });
  }
  bool WaitForEnd() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kDeadline, [&] { return ended_; });
  }
  int status() {
    std::lock_guard lock(mu_);
    return status_;
  }
  std::string body() {
    std::lock_guard lock(mu_);
    return body_;
  }
  bool ended() {
    std::lock_guard lock(mu_);
    return ended_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int status_ = 0;
  std::string body_;
  bool ended_ = false;
  std::function<void()> on_closed_;
};

class LogStreamerTest : public ::testing::Test {
 protected:
  void Append(const std::string& relative, const std::string& text) {
    const std::string path = dir_.path() + "/" + relative;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path());
    std::ofstream(path, std::ios::app) << text;
  }
  std::shared_ptr<Recorder> Request(LogStreamer& streamer, const std::string& container,
                                    LogOptions options = {}) {
    auto recorder = std::make_shared<Recorder>();
    streamer.Submit(LogRequest{"default", "web", container, options}, recorder);
    return recorder;
  }
  test::TempDir dir_;
};

TEST_F(LogStreamerTest, ServesWholeFilesAndErrors) {
  Append("default_web_u1/app/0.log",
         "2026-01-02T03:04:05Z stdout F one\n2026-01-02T03:04:06Z stdout F two");
  LogStreamer streamer(dir_.path(), nullptr);
  auto whole = Request(streamer, "app");
  ASSERT_TRUE(whole->WaitForEnd());
  EXPECT_EQ(whole->status(), 200);
  EXPECT_EQ(whole->body(), "one\ntwo\n");  // a last line without '\n' is still shown

  LogOptions tail;
  tail.tail_lines = 1;
  auto last = Request(streamer, "app", tail);
  ASSERT_TRUE(last->WaitForEnd());
  EXPECT_EQ(last->body(), "two\n");

  auto missing = Request(streamer, "side");
  ASSERT_TRUE(missing->WaitForEnd());
  EXPECT_EQ(missing->status(), 404);
  EXPECT_EQ(missing->body(), "container \"side\" not found in pod \"web\"\n");

  auto bad = Request(streamer, "..");
  ASSERT_TRUE(bad->WaitForEnd());
  EXPECT_EQ(bad->status(), 400);
}

TEST_F(LogStreamerTest, UsesTheUidLookup) {
  Append("default_web_u1/app/0.log", "2026-01-02T03:04:05Z stdout F from u1\n");
  Append("default_web_u2/app/0.log", "2026-01-02T03:04:05Z stdout F from u2\n");
  LogStreamer streamer(dir_.path(), [](const std::string& ns, const std::string& name) {
    return ns == "default" && name == "web" ? std::optional<std::string>("u1") : std::nullopt;
  });
  auto recorder = Request(streamer, "app");
  ASSERT_TRUE(recorder->WaitForEnd());
  EXPECT_EQ(recorder->body(), "from u1\n");
}

TEST_F(LogStreamerTest, FollowStreamsNewLinesUntilTheNextRestart) {
  Append("default_web_u1/app/0.log", "2026-01-02T03:04:05Z stdout F one\n");
  LogStreamer streamer(dir_.path(), nullptr, std::chrono::milliseconds(10));
  LogOptions follow;
  follow.follow = true;
  auto recorder = Request(streamer, "app", follow);
  ASSERT_TRUE(recorder->WaitForBody("one\n"));
  // A partial (P) line, itself written in two pieces, then the line that finishes it.
  Append("default_web_u1/app/0.log", "2026-01-02T03:04:06Z stdout P t");
  Append("default_web_u1/app/0.log", "w\n2026-01-02T03:04:06Z stdout F o\n");
  ASSERT_TRUE(recorder->WaitForBody("one\ntwo\n")) << recorder->body();
  EXPECT_FALSE(recorder->ended());
  Append("default_web_u1/app/0.log", "2026-01-02T03:04:07Z stdout F last\n");
  Append("default_web_u1/app/1.log", "2026-01-02T03:04:08Z stdout F next run\n");
  ASSERT_TRUE(recorder->WaitForEnd());
  EXPECT_EQ(recorder->body(), "one\ntwo\nlast\n");
}

TEST_F(LogStreamerTest, FollowEndsWhenTheClientLeavesAndOnStop) {
  Append("default_web_u1/app/0.log", "2026-01-02T03:04:05Z stdout F one\n");
  LogStreamer streamer(dir_.path(), nullptr, std::chrono::milliseconds(10));
  LogOptions follow;
  follow.follow = true;
  auto leaving = Request(streamer, "app", follow);
  auto staying = Request(streamer, "app", follow);
  ASSERT_TRUE(leaving->WaitForBody("one\n"));
  ASSERT_TRUE(staying->WaitForBody("one\n"));
  leaving->HangUp();
  Append("default_web_u1/app/0.log", "2026-01-02T03:04:06Z stdout F two\n");
  ASSERT_TRUE(staying->WaitForBody("one\ntwo\n"));
  EXPECT_EQ(leaving->body(), "one\n");
  streamer.Stop();
  EXPECT_TRUE(staying->ended());
  auto late = Request(streamer, "app");
  EXPECT_EQ(late->status(), 503);
}

}  // namespace
}  // namespace mk8s::kubelet
