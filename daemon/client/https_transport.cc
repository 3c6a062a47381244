// HttpsTransport: setup, the I/O loop, deadlines and shutdown (see https_transport_impl.h).
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "client/https_transport_impl.h"

namespace mk8s::client {

Status HttpsTransport::Impl::Init() {
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

HttpsTransport::Impl::~Impl() {
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
