// HttpsTransport::Impl: connections (resolve, connect, TLS handshake), requests on pooled
// keep-alive connections, and watches. Everything here runs on the I/O thread.
#include <sys/epoll.h>

#include <algorithm>

#include "client/https_transport_impl.h"

namespace mk8s::client {

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

}  // namespace mk8s::client
