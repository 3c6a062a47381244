// Internal to the client library: HttpsTransport::Impl, shared by https_transport.cc (setup,
// the I/O loop, deadlines, shutdown) and https_exchange.cc (connections, requests, watches).
//
// HttpsTransport without Asio: one I/O thread runs an epoll loop (edge-triggered) over
// hand-driven TLS sockets (tls_client_socket.h). A request is one buffer (head written here +
// body) sent with SSL_write, the answer is read with SSL_read into one reusable buffer and parsed
// by HttpResponseParser. Each connection has one deadline, checked by the loop (no timer objects
// per operation); other threads hand work over through a queue and an eventfd.
#pragma once

#include <openssl/ssl.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "client/http_response_parser.h"
#include "client/https_transport.h"
#include "client/tls_client_socket.h"

namespace mk8s::client {
namespace https_internal {

using SteadyClock = std::chrono::steady_clock;
inline constexpr uint64_t kMaxResponseBytes = 512ull << 20;
inline constexpr SteadyClock::time_point kNever = SteadyClock::time_point::max();
inline constexpr size_t kReadBufferBytes = 64 * 1024;

inline bool HasLineBreak(std::string_view text) {
  return text.find_first_of("\r\n") != std::string_view::npos;
}

inline bool EqualsLower(std::string_view text, std::string_view lower) {
  if (text.size() != lower.size()) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c =
        text[i] >= 'A' && text[i] <= 'Z' ? static_cast<char>(text[i] - 'A' + 'a') : text[i];
    if (c != lower[i]) return false;
  }
  return true;
}

}  // namespace https_internal

using namespace https_internal;  // NOLINT(google-build-using-namespace): this library's own

// Threads: Send/Stream/Cancel/the destructor may run on any thread and only Post(); everything
// else runs on the I/O thread (members marked so), which also runs every callback.
class HttpsTransport::Impl {
 public:
  explicit Impl(HttpsConfig config) : config_(std::move(config)) {}
  Status Init();
  ~Impl();

  const HttpsConfig& config() const { return config_; }

  // Runs `task` on the I/O thread (in order). From the I/O thread itself no wake-up is needed:
  // the loop drains the queue before it waits. Once the loop has ended, tasks run inline.
  void Post(std::function<void()> task) {
    std::unique_lock lock(posted_mu_);
    if (loop_exited_) {
      lock.unlock();
      task();
      return;
    }
    posted_.push_back(std::move(task));
    if (std::this_thread::get_id() == io_thread_id_ || wake_pending_) return;
    wake_pending_ = true;
    lock.unlock();
    const uint64_t one = 1;
    (void)!write(event_fd_, &one, sizeof one);
  }

  struct SendOp {
    Request request;
    ResponseCallback done;
    bool retried = false;
  };

  void Send(Request request, ResponseCallback done) {
    auto op = std::make_shared<SendOp>(SendOp{std::move(request), std::move(done)});
    Post([this, op = std::move(op)]() mutable { StartSend(std::move(op)); });
  }

  class StreamOp;
  std::shared_ptr<StreamHandle> Stream(Request request, StreamCallbacks callbacks);

 private:
  struct Conn {
    enum class Phase { kResolving, kConnecting, kHandshaking, kWriting, kReading, kIdle, kClosed };
    tls::TlsClientSocket socket;
    Phase phase = Phase::kResolving;
    std::vector<tls::SocketAddress> addresses;
    size_t next_address = 0;
    std::string out;  // the request being written
    size_t out_offset = 0;
    HttpResponseParser parser;
    SteadyClock::time_point deadline = kNever;
    std::shared_ptr<SendOp> send;      // the request on this connection, or
    std::shared_ptr<StreamOp> stream;  // the watch that owns it (never pooled)
    bool reused = false;               // taken from the idle pool
    bool stream_head_seen = false;
  };
  using ConnPtr = std::shared_ptr<Conn>;

  // --- the loop (I/O thread)
  void Run();
  void RunPosted();
  void Shutdown();
  void CheckDeadlines(SteadyClock::time_point now);
  void SetDeadline(Conn& conn, SteadyClock::time_point deadline) {
    conn.deadline = deadline;
    next_deadline_ = std::min(next_deadline_, deadline);
  }
  SteadyClock::time_point RequestDeadline() const {
    return SteadyClock::now() + config_.request_timeout;
  }

  // --- connections (I/O thread)
  ConnPtr NewConn();
  void Connect(const ConnPtr& conn);
  void Resolved(Result<std::vector<tls::SocketAddress>> addresses);
  void TryNextAddress(const ConnPtr& conn, std::string last_error);
  void Drive(const ConnPtr& conn);
  void Begin(const ConnPtr& conn);
  void DoWrite(const ConnPtr& conn);
  void DoRead(const ConnPtr& conn);
  bool Consume(const ConnPtr& conn, std::string_view data);
  void Finished(const ConnPtr& conn, bool clean);
  // The exchange on `conn` failed after it was connected; a request on a reused connection that
  // got no byte back is sent once more on a fresh one (the server closed the idle connection).
  void Failed(const ConnPtr& conn, const std::string& error, bool retryable = true);
  // The connection could not be set up: its request or watch ends with `message`.
  void Abort(const ConnPtr& conn, const std::string& message);
  void CloseConn(const ConnPtr& conn);
  std::string BuildRequest(const Request& request) const;

  // --- requests and watches (I/O thread)
  void StartSend(std::shared_ptr<SendOp> op);
  void StartStream(const std::shared_ptr<StreamOp>& op);
  void CancelStream(const std::shared_ptr<StreamOp>& op);
  static void Complete(const std::shared_ptr<SendOp>& op, Response response) {
    ResponseCallback done = std::move(op->done);
    if (done) done(std::move(response));
  }

  HttpsConfig config_;
  tls::ServerAddress server_;
  std::string host_header_;
  SSL_CTX* ctx_ = nullptr;
  int epoll_fd_ = -1;
  int event_fd_ = -1;
  std::thread thread_;
  std::thread::id io_thread_id_;

  std::mutex posted_mu_;
  std::vector<std::function<void()>> posted_;  // guarded by posted_mu_
  bool wake_pending_ = false;                  // guarded by posted_mu_: the eventfd was written
  bool loop_exited_ = false;                   // guarded by posted_mu_

  // I/O thread only:
  std::unordered_map<Conn*, ConnPtr> conns_;  // every open or opening connection
  std::vector<ConnPtr> idle_;                 // pooled keep-alive connections (most recent last)
  std::vector<ConnPtr> graveyard_;            // closed during this loop turn, freed after it
  std::vector<ConnPtr> resolving_;            // waiting for the resolver
  std::string read_buffer_;
  SteadyClock::time_point next_deadline_ = kNever;  // no connection's deadline is earlier
  bool stopping_ = false;

  // The resolver thread (started on the first name lookup; IP literals need none).
  std::thread resolver_;
  std::mutex resolver_mu_;
  std::condition_variable resolver_cv_;
  bool resolver_wanted_ = false;  // guarded by resolver_mu_
  bool resolver_stop_ = false;    // guarded by resolver_mu_
};

// --- watches

class HttpsTransport::Impl::StreamOp : public StreamHandle,
                                      public std::enable_shared_from_this<StreamOp> {
 public:
  StreamOp(Impl* impl, Request request, StreamCallbacks callbacks)
      : impl_(impl), request_(std::move(request)), callbacks_(std::move(callbacks)) {}

  // Any thread. The flag stops line delivery at once (also from inside on_line); the connection
  // is closed on the I/O thread. A stale handle's Cancel after the transport's destruction is the
  // caller's bug.
  void Cancel() override {
    if (cancelled_.exchange(true)) return;
    impl_->Post([self = shared_from_this()] { self->impl_->CancelStream(self); });
  }

 private:
  friend class Impl;

  void Deliver(std::string& data) {
    if (data.empty()) return;
    splitter_.Feed(data, [this](std::string line) {
      if (!cancelled_.load(std::memory_order_relaxed) && !ended_ && callbacks_.on_line) {
        callbacks_.on_line(std::move(line));
      }
    });
    data.clear();
  }
  void End(Response response) {
    if (ended_) return;
    ended_ = true;
    conn_.reset();
    if (callbacks_.on_end) callbacks_.on_end(std::move(response));
    callbacks_ = StreamCallbacks{};
  }

  Impl* impl_;
  Request request_;
  StreamCallbacks callbacks_;   // I/O thread
  std::weak_ptr<Conn> conn_;    // I/O thread
  LineSplitter splitter_;       // I/O thread
  std::atomic<bool> cancelled_{false};
  bool ended_ = false;          // I/O thread
};

}  // namespace mk8s::client
