#include "streaming.h"

#include <chrono>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

namespace example {
namespace {

using mk8s::sdk::HttpRequest;
using mk8s::sdk::HttpResponse;
using mk8s::sdk::HttpStream;

// The integer parameter `name` of an encoded query ("n=3&size=10"): `fallback` when absent,
// false when it is not a decimal integer within [min, max].
bool QueryInt(std::string_view query, std::string_view name, int64_t fallback, int64_t min,
              int64_t max, int64_t* out) {
  *out = fallback;
  while (!query.empty()) {
    const size_t amp = query.find('&');
    const std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    const size_t eq = pair.find('=');
    if (pair.substr(0, eq) != name) continue;
    const std::string value(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
    char* end = nullptr;
    const long long parsed = std::strtoll(value.c_str(), &end, 10);
    if (value.empty() || *end != '\0' || parsed < min || parsed > max) return false;
    *out = parsed;
  }
  return true;
}

// A metav1.Status, so that kubectl shows the message. `text` has no '"' or '\\'.
HttpResponse BadRequest(std::string_view text) {
  return HttpResponse{400, "application/json",
                      fmt::format(R"({{"kind":"Status","apiVersion":"v1","status":"Failure",)"
                                  R"("reason":"BadRequest","code":400,"message":"{}"}})",
                                  text)};
}

}  // namespace

void StreamingRoutes::Start() {
  {
    std::lock_guard lock(mu_);
    stopping_ = false;
  }
  stream_ = host_.ServeHttp("/stream", [this](const HttpRequest& r) { return Blob(r); });
  follow_ = host_.ServeHttp("/follow", [this](const HttpRequest& r) { return Follow(r); });
  streams_ = host_.ServeHttp("/streams", [this](const HttpRequest&) {
    return HttpResponse{
        200, "application/json",
        fmt::format(R"({{"open":{},"completed":{},"closed":{},"timed_out":{}}})", open_.load(),
                    completed_.load(), closed_.load(), timed_out_.load())};
  });
}

void StreamingRoutes::Stop() noexcept {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_.notify_all();
  stream_ = {};  // the host dropped the routes before OnStop
  follow_ = {};
  streams_ = {};
  std::list<Producer> producers;
  {
    std::lock_guard lock(mu_);
    producers.swap(producers_);  // the nodes (and the producers' references) stay where they are
  }
  for (Producer& producer : producers) {
    if (producer.thread.joinable()) producer.thread.join();
  }
}

void StreamingRoutes::Spawn(std::function<void()> body) {
  std::lock_guard lock(mu_);
  for (auto it = producers_.begin(); it != producers_.end();) {
    if (it->done.load()) {
      it->thread.join();
      it = producers_.erase(it);
    } else {
      ++it;
    }
  }
  if (stopping_) return;  // the stream ends with `body`'s captures
  Producer& producer = producers_.emplace_back();
  ++open_;
  producer.thread = std::thread([this, &producer, body = std::move(body)] {
    body();
    --open_;
    producer.done.store(true);
  });
}

bool StreamingRoutes::Pause(int64_t ms) {
  std::unique_lock lock(mu_);
  return !wake_.wait_for(lock, std::chrono::milliseconds(ms), [this] { return stopping_; });
}

void StreamingRoutes::Finished(mk8s_status_t status) {
  if (status == MK8S_OK) {
    ++completed_;
  } else if (status == MK8S_ERR_CLOSED) {
    ++closed_;
    host_.Info("a stream was closed under its producer (the client left or the addon stops)");
  } else if (status == MK8S_ERR_TIMEOUT) {
    ++timed_out_;
    host_.Warn("a stream's client read too slowly; giving up on it");
  } else {
    host_.Warn("a stream failed with status {}", status);
  }
}

HttpResponse StreamingRoutes::Blob(const HttpRequest& request) {
  int64_t n = 0, size = 0;
  if (!QueryInt(request.query, "n", 1, 1, 1 << 20, &n) ||
      !QueryInt(request.query, "size", 65536, 1, MK8S_HTTP_STREAM_MAX_WRITE, &size)) {
    return BadRequest("n must be 1..1048576 and size 1..1048576");
  }
  // std::function needs a copyable capture: the stream is shared with the producer only.
  auto stream = std::make_shared<HttpStream>(request.BeginStream(200, "application/octet-stream"));
  Spawn([this, stream, n, size] {
    std::string chunk(static_cast<size_t>(size), 'a');
    mk8s_status_t status = MK8S_OK;
    for (int64_t k = 0; k < n && status == MK8S_OK; ++k) {
      for (int64_t j = 0; j < size; ++j) chunk[j] = static_cast<char>('a' + (k + j) % 26);
      status = stream->Write(chunk);
    }
    stream->End();
    Finished(status);
  });
  return {};
}

HttpResponse StreamingRoutes::Follow(const HttpRequest& request) {
  int64_t lines = 0, interval_ms = 0;
  if (!QueryInt(request.query, "lines", 0, 0, 1000000, &lines) ||
      !QueryInt(request.query, "interval_ms", 200, 1, 60000, &interval_ms)) {
    return BadRequest(
        "lines must be 0..1000000 (0: until the client leaves), interval_ms 1..60000");
  }
  auto stream = std::make_shared<HttpStream>(request.BeginStream(200, "text/plain; charset=utf-8"));
  Spawn([this, stream, lines, interval_ms] {
    mk8s_status_t status = MK8S_OK;
    for (int64_t k = 1; lines == 0 || k <= lines; ++k) {
      status = stream->Write(fmt::format("line {}\n", k));
      if (status != MK8S_OK) break;
      if ((lines == 0 || k < lines) && !Pause(interval_ms)) {
        // The addon is stopping: the host ended the stream already, so this says CLOSED.
        status = stream->Write({});
        break;
      }
    }
    stream->End();
    Finished(status);
  });
  return {};
}

}  // namespace example
