// HttpsTransport without Asio: one I/O thread runs an epoll loop (edge-triggered) over
// hand-driven TLS sockets (tls_client_socket.h). A request is one buffer (head written here +
// body) sent with SSL_write, the answer is read with SSL_read into one reusable buffer and parsed
// by HttpResponseParser. Each connection has one deadline, checked by the loop (no timer objects
// per operation); other threads hand work over through a queue and an eventfd.
#include "client/https_transport.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "client/http_response_parser.h"
#include "client/tls_client_socket.h"

namespace mk8s::client {
namespace {

using SteadyClock = std::chrono::steady_clock;
constexpr uint64_t kMaxResponseBytes = 512ull << 20;
constexpr SteadyClock::time_point kNever = SteadyClock::time_point::max();
constexpr size_t kReadBufferBytes = 64 * 1024;

bool HasLineBreak(std::string_view text) { return text.find_first_of("\r\n") != std::string_view::npos; }

bool EqualsLower(std::string_view text, std::string_view lower) {
  if (text.size() != lower.size()) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i] >= 'A' && text[i] <= 'Z' ? static_cast<char>(text[i] - 'A' + 'a') : text[i];
    if (c != lower[i]) return false;
  }
  return true;
}

}  // namespace

// Threads: Send/Stream/Cancel/the destructor may run on any thread and only Post(); everything
// else runs on the I/O thread (members marked so), which also runs every callback.
class HttpsTransport::Impl {
 public:
  explicit Impl(HttpsConfig config) : config_(std::move(config)) {}

  Status Init() {
    Result<tls::ServerAddress> server = tls::ParseServerUrl(config_.server);
    if (!server.ok()) return server.status();
    server_ = *server;
    host_header_ = server_.HostHeader();
    if (HasLineBreak(config_.bearer_token)) {
      return Status(Code::kInvalidArgument, "the bearer token contains a line break");
    }
    Result<SSL_CTX*> ctx = tls::NewClientContext(config_);
    if (!ctx.ok()) return ctx.status();
    ctx_ = *ctx;
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    event_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (epoll_fd_ < 0 || event_fd_ < 0) {
      return Status(Code::kInternal, std::string("epoll/eventfd: ") + std::strerror(errno));
    }
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.ptr = nullptr;  // the eventfd
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, event_fd_, &event);
    read_buffer_.resize(kReadBufferBytes);
    thread_ = std::thread([this] { Run(); });
    return Status::Ok();
  }

  ~Impl() {
    if (thread_.joinable()) {
      Post([this] { Shutdown(); });
      thread_.join();
    }
    {
      std::lock_guard lock(resolver_mu_);
      resolver_stop_ = true;
    }
    resolver_cv_.notify_all();
    if (resolver_.joinable()) resolver_.join();
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
    if (epoll_fd_ >= 0) close(epoll_fd_);
    if (event_fd_ >= 0) close(event_fd_);
  }

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

std::shared_ptr<StreamHandle> HttpsTransport::Impl::Stream(Request request, StreamCallbacks callbacks) {
  auto op = std::make_shared<StreamOp>(this, std::move(request), std::move(callbacks));
  Post([this, op] { StartStream(op); });
  return op;
}

void HttpsTransport::Impl::StartStream(const std::shared_ptr<StreamOp>& op) {
  if (stopping_) return op->End(Response{0, "", "the transport is shut down"});
  if (op->cancelled_) return op->End(Response{0, "", "cancelled"});
  ConnPtr conn = NewConn();
  conn->stream = op;
  op->conn_ = conn;
  Connect(conn);
}

void HttpsTransport::Impl::CancelStream(const std::shared_ptr<StreamOp>& op) {
  ConnPtr conn = op->conn_.lock();
  if (conn && conn->stream == op) return Failed(conn, "cancelled");
  op->End(Response{0, "", "cancelled"});
}

// --- requests

void HttpsTransport::Impl::StartSend(std::shared_ptr<SendOp> op) {
  if (stopping_) return Complete(op, Response{0, "", "the transport is shut down"});
  while (!idle_.empty()) {
    ConnPtr conn = std::move(idle_.back());
    idle_.pop_back();
    if (conn->phase != Conn::Phase::kIdle) continue;
    conn->send = std::move(op);
    conn->reused = true;
    return Begin(conn);
  }
  ConnPtr conn = NewConn();
  conn->send = std::move(op);
  Connect(conn);
}

std::string HttpsTransport::Impl::BuildRequest(const Request& request) const {
  bool has_accept = false, has_agent = false;
  for (const auto& [name, value] : request.headers) {
    has_accept = has_accept || EqualsLower(name, "accept");
    has_agent = has_agent || EqualsLower(name, "user-agent");
  }
  std::string out;
  out.reserve(256 + request.path.size() + request.query.size() + request.body.size());
  out += request.method;
  out += ' ';
  out += request.path;
  if (!request.query.empty()) {
    out += '?';
    out += request.query;
  }
  out += " HTTP/1.1\r\nHost: ";
  out += host_header_;
  if (!has_agent) out += "\r\nUser-Agent: mk8s-client";
  if (!has_accept) out += "\r\nAccept: application/json";
  if (!config_.bearer_token.empty()) {
    out += "\r\nAuthorization: Bearer ";
    out += config_.bearer_token;
  }
  if (!request.content_type.empty()) {
    out += "\r\nContent-Type: ";
    out += request.content_type;
  }
  for (const auto& [name, value] : request.headers) {
    out += "\r\n";
    out += name;
    out += ": ";
    out += value;
  }
  if (!request.body.empty() || (request.method != "GET" && request.method != "HEAD")) {
    out += "\r\nContent-Length: ";
    out += std::to_string(request.body.size());
  }
  out += "\r\n\r\n";
  out += request.body;
  return out;
}

// --- connections

HttpsTransport::Impl::ConnPtr HttpsTransport::Impl::NewConn() {
  auto conn = std::make_shared<Conn>();
  conns_.emplace(conn.get(), conn);
  return conn;
}

void HttpsTransport::Impl::Connect(const ConnPtr& conn) {
  SetDeadline(*conn, RequestDeadline());
  if (server_.ip_literal) {
    Result<std::vector<tls::SocketAddress>> addresses = tls::Resolve(server_);
    if (!addresses.ok()) return Abort(conn, addresses.status().message());
    conn->addresses = std::move(*addresses);
    return TryNextAddress(conn, "");
  }
  conn->phase = Conn::Phase::kResolving;
  resolving_.push_back(conn);
  std::lock_guard lock(resolver_mu_);
  if (!resolver_.joinable()) {
    resolver_ = std::thread([this] {
      std::unique_lock lock(resolver_mu_);
      for (;;) {
        resolver_cv_.wait(lock, [this] { return resolver_stop_ || resolver_wanted_; });
        if (resolver_stop_) return;
        resolver_wanted_ = false;
        lock.unlock();
        auto addresses = std::make_shared<Result<std::vector<tls::SocketAddress>>>(tls::Resolve(server_));
        Post([this, addresses] { Resolved(std::move(*addresses)); });
        lock.lock();
      }
    });
  }
  resolver_wanted_ = true;
  resolver_cv_.notify_one();
}

void HttpsTransport::Impl::Resolved(Result<std::vector<tls::SocketAddress>> addresses) {
  std::vector<ConnPtr> waiting = std::move(resolving_);
  resolving_.clear();
  for (const ConnPtr& conn : waiting) {
    if (conn->phase != Conn::Phase::kResolving) continue;
    if (!addresses.ok()) {
      Abort(conn, addresses.status().message());
      continue;
    }
    conn->addresses = *addresses;
    TryNextAddress(conn, "");
  }
}

void HttpsTransport::Impl::TryNextAddress(const ConnPtr& conn, std::string last_error) {
  while (conn->next_address < conn->addresses.size()) {
    const auto io = conn->socket.StartConnect(conn->addresses[conn->next_address++]);
    if (io == tls::TlsClientSocket::Io::kError) {
      last_error = conn->socket.error();
      continue;
    }
    epoll_event event{};
    event.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    event.data.ptr = conn.get();
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, conn->socket.fd(), &event);
    conn->phase = Conn::Phase::kConnecting;
    if (io == tls::TlsClientSocket::Io::kDone) Drive(conn);
    return;
  }
  Abort(conn, "cannot connect to " + config_.server + ": " + last_error);
}

void HttpsTransport::Impl::Drive(const ConnPtr& conn) {
  using Io = tls::TlsClientSocket::Io;
  switch (conn->phase) {
    case Conn::Phase::kConnecting: {
      const Io io = conn->socket.FinishConnect();
      if (io == Io::kWant) return;
      if (io != Io::kDone) return TryNextAddress(conn, conn->socket.error());
      conn->phase = Conn::Phase::kHandshaking;
      [[fallthrough]];
    }
    case Conn::Phase::kHandshaking: {
      const Io io = conn->socket.Handshake(ctx_, server_, !config_.insecure_skip_verify);
      if (io == Io::kWant) return;
      if (io != Io::kDone) {
        return Abort(conn, "TLS handshake with " + config_.server + " failed: " +
                               (io == Io::kEof ? "the connection was closed" : conn->socket.error()));
      }
      if (stopping_) return Abort(conn, "the transport is shut down");
      if (conn->stream && conn->stream->cancelled_) return Abort(conn, "cancelled");
      return Begin(conn);
    }
    case Conn::Phase::kWriting: return DoWrite(conn);
    case Conn::Phase::kReading: return DoRead(conn);
    case Conn::Phase::kIdle: {
      // A pooled connection has nothing to say: data, an end or an error means it is unusable
      // (the server closed it). TLS 1.3 session tickets are consumed here as no data.
      size_t got = 0;
      const Io io = conn->socket.Read(read_buffer_.data(), read_buffer_.size(), &got);
      if (io != Io::kWant) CloseConn(conn);
      return;
    }
    case Conn::Phase::kResolving:
    case Conn::Phase::kClosed: return;
  }
}

void HttpsTransport::Impl::Begin(const ConnPtr& conn) {
  const Request& request = conn->send ? conn->send->request : conn->stream->request_;
  if (HasLineBreak(request.method) || HasLineBreak(request.path) || HasLineBreak(request.query) ||
      HasLineBreak(request.content_type) ||
      std::any_of(request.headers.begin(), request.headers.end(), [](const auto& header) {
        return HasLineBreak(header.first) || HasLineBreak(header.second);
      })) {
    return Abort(conn, "invalid request: a line break in the request line or a header");
  }
  conn->out = BuildRequest(request);
  conn->out_offset = 0;
  conn->parser.Reset(conn->send ? kMaxResponseBytes : UINT64_MAX, request.method == "HEAD");
  conn->stream_head_seen = false;
  conn->phase = Conn::Phase::kWriting;
  SetDeadline(*conn, RequestDeadline());
  DoWrite(conn);
}

void HttpsTransport::Impl::DoWrite(const ConnPtr& conn) {
  using Io = tls::TlsClientSocket::Io;
  while (conn->out_offset < conn->out.size()) {
    size_t written = 0;
    const Io io = conn->socket.Write(std::string_view(conn->out).substr(conn->out_offset), &written);
    conn->out_offset += written;
    if (io == Io::kDone) break;
    if (io == Io::kWant) {
      if (written == 0) return;  // the socket is full: the next writable edge resumes
      continue;
    }
    return Failed(conn, conn->socket.error());
  }
  if (conn->out.capacity() > kReadBufferBytes) std::string().swap(conn->out);
  else conn->out.clear();
  conn->out_offset = 0;
  conn->phase = Conn::Phase::kReading;
  // The answer cannot be there yet unless OpenSSL already holds bytes: the socket's next
  // readable edge starts the read (saves a recv that would find nothing).
  if (conn->socket.HasPending()) DoRead(conn);
}

void HttpsTransport::Impl::DoRead(const ConnPtr& conn) {
  using Io = tls::TlsClientSocket::Io;
  for (;;) {
    size_t got = 0;
    const Io io = conn->socket.Read(read_buffer_.data(), read_buffer_.size(), &got);
    if (io == Io::kDone) {
      if (!Consume(conn, std::string_view(read_buffer_.data(), got))) return;
      continue;
    }
    if (io == Io::kWant) return;
    if (io == Io::kEof) {
      conn->parser.FeedEof();
      if (conn->parser.done()) return Finished(conn, /*clean=*/false);
      return Failed(conn, conn->parser.error());
    }
    return Failed(conn, conn->socket.error());
  }
}

// Returns whether the connection goes on reading this exchange.
bool HttpsTransport::Impl::Consume(const ConnPtr& conn, std::string_view data) {
  const size_t used = conn->parser.Feed(data);
  if (conn->parser.failed()) {
    Failed(conn, "bad response: " + conn->parser.error(), /*retryable=*/false);
    return false;
  }
  if (conn->stream) {
    HttpResponseParser& parser = conn->parser;
    if (!conn->stream_head_seen && parser.head_done()) {
      conn->stream_head_seen = true;
      conn->deadline = kNever;  // a watch may stay quiet for as long as it likes
    }
    if (conn->stream_head_seen && parser.status() >= 200 && parser.status() < 300) {
      std::shared_ptr<StreamOp> op = conn->stream;  // on_line may cancel (which only flags)
      op->Deliver(parser.body());
    }
  }
  if (conn->parser.done()) {
    Finished(conn, /*clean=*/used == data.size());
    return false;
  }
  return true;
}

void HttpsTransport::Impl::Finished(const ConnPtr& conn, bool clean) {
  HttpResponseParser& parser = conn->parser;
  if (std::shared_ptr<StreamOp> op = std::move(conn->stream)) {
    Response response{parser.status(), parser.content_type(), ""};
    if (parser.status() >= 200 && parser.status() < 300) op->Deliver(parser.body());
    else response.body = std::move(parser.body());
    CloseConn(conn);
    return op->End(std::move(response));
  }
  std::shared_ptr<SendOp> op = std::move(conn->send);
  Response response{parser.status(), parser.content_type(), std::move(parser.body())};
  if (clean && parser.keep_alive() && !stopping_ &&
      static_cast<int>(idle_.size()) < config_.max_idle_connections) {
    conn->phase = Conn::Phase::kIdle;
    conn->deadline = kNever;
    idle_.push_back(conn);
  } else {
    CloseConn(conn);
  }
  if (op) Complete(op, std::move(response));
}

void HttpsTransport::Impl::Failed(const ConnPtr& conn, const std::string& error, bool retryable) {
  if (std::shared_ptr<SendOp> op = std::move(conn->send)) {
    const bool retry = retryable && conn->reused && !op->retried && !conn->parser.started() &&
                       !stopping_;
    CloseConn(conn);
    if (retry) {
      op->retried = true;
      return StartSend(std::move(op));
    }
    return Complete(op, Response{0, "", "request to " + config_.server + " failed: " + error});
  }
  if (std::shared_ptr<StreamOp> op = std::move(conn->stream)) {
    CloseConn(conn);
    return op->End(Response{0, "", op->cancelled_ ? "cancelled" : "watch connection failed: " + error});
  }
  CloseConn(conn);
}

void HttpsTransport::Impl::Abort(const ConnPtr& conn, const std::string& message) {
  std::shared_ptr<SendOp> send = std::move(conn->send);
  std::shared_ptr<StreamOp> stream = std::move(conn->stream);
  CloseConn(conn);
  if (send) Complete(send, Response{0, "", message});
  if (stream) stream->End(Response{0, "", stream->cancelled_ ? "cancelled" : message});
}

void HttpsTransport::Impl::CloseConn(const ConnPtr& conn) {
  if (conn->phase == Conn::Phase::kIdle) std::erase(idle_, conn);
  conn->phase = Conn::Phase::kClosed;
  conn->deadline = kNever;
  conn->socket.Close();  // closing the fd also removes it from the epoll set
  auto it = conns_.find(conn.get());
  if (it != conns_.end()) {
    graveyard_.push_back(std::move(it->second));
    conns_.erase(it);
  }
}

// --- the loop

void HttpsTransport::Impl::RunPosted() {
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard lock(posted_mu_);
    tasks.swap(posted_);
  }
  for (auto& task : tasks) task();
}

void HttpsTransport::Impl::Run() {
  {
    std::lock_guard lock(posted_mu_);
    io_thread_id_ = std::this_thread::get_id();
  }
  epoll_event events[64];
  for (;;) {
    RunPosted();
    int timeout_ms = -1;
    {
      std::lock_guard lock(posted_mu_);
      if (!posted_.empty()) {
        timeout_ms = 0;
      } else if (stopping_ && conns_.empty()) {
        loop_exited_ = true;
        break;
      }
    }
    if (timeout_ms != 0 && next_deadline_ != kNever) {
      const auto wait = std::chrono::ceil<std::chrono::milliseconds>(next_deadline_ - SteadyClock::now());
      timeout_ms = static_cast<int>(std::clamp<int64_t>(wait.count(), 0, INT_MAX));
    }
    const int count = epoll_wait(epoll_fd_, events, 64, timeout_ms);
    for (int i = 0; i < count; ++i) {
      if (events[i].data.ptr == nullptr) {
        uint64_t value = 0;
        (void)!read(event_fd_, &value, sizeof value);
        std::lock_guard lock(posted_mu_);
        wake_pending_ = false;
        continue;
      }
      auto* raw = static_cast<Conn*>(events[i].data.ptr);
      auto it = conns_.find(raw);
      if (it == conns_.end()) continue;  // closed earlier in this turn
      ConnPtr conn = it->second;
      Drive(conn);
    }
    if (next_deadline_ <= SteadyClock::now()) CheckDeadlines(SteadyClock::now());
    graveyard_.clear();
  }
  RunPosted();  // tasks posted before loop_exited_ was set
}

void HttpsTransport::Impl::CheckDeadlines(SteadyClock::time_point now) {
  std::vector<ConnPtr> expired;
  next_deadline_ = kNever;
  for (const auto& [raw, conn] : conns_) {
    if (conn->deadline <= now) expired.push_back(conn);
    else next_deadline_ = std::min(next_deadline_, conn->deadline);
  }
  const std::string timeout = "timed out after " + std::to_string(config_.request_timeout.count()) + " s";
  for (const ConnPtr& conn : expired) {
    if (conn->phase == Conn::Phase::kClosed) continue;
    if (conn->phase == Conn::Phase::kWriting || conn->phase == Conn::Phase::kReading) {
      Failed(conn, timeout, /*retryable=*/false);
    } else {
      Abort(conn, "cannot connect to " + config_.server + ": " + timeout);
    }
  }
}

void HttpsTransport::Impl::Shutdown() {
  stopping_ = true;
  std::vector<ConnPtr> open;
  open.reserve(conns_.size());
  for (const auto& [raw, conn] : conns_) open.push_back(conn);
  for (const ConnPtr& conn : open) {
    if (conn->phase != Conn::Phase::kClosed) Abort(conn, "the transport is shut down");
  }
  idle_.clear();
  resolving_.clear();
}

// --- the public face

Result<std::shared_ptr<HttpsTransport>> HttpsTransport::Create(HttpsConfig config) {
  auto impl = std::make_unique<Impl>(std::move(config));
  if (Status status = impl->Init(); !status.ok()) return status;
  return std::shared_ptr<HttpsTransport>(new HttpsTransport(std::move(impl)));
}

HttpsTransport::HttpsTransport(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
HttpsTransport::~HttpsTransport() = default;

void HttpsTransport::Send(Request request, ResponseCallback done) {
  impl_->Send(std::move(request), std::move(done));
}

std::shared_ptr<StreamHandle> HttpsTransport::Stream(Request request, StreamCallbacks callbacks) {
  return impl_->Stream(std::move(request), std::move(callbacks));
}

std::string HttpsTransport::Describe() const { return impl_->config().server; }

}  // namespace mk8s::client
