#include "apiserver/http/session.h"

#include <openssl/bio.h>
#include <spdlog/spdlog.h>
#include <openssl/err.h>
#include <sys/socket.h>

#include <algorithm>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/status.hpp>
#include <cerrno>
#include <cstring>

#include "apiserver/http/string_bio.h"
#include "apiserver/http/tls_server.h"
#include "apiserver/http/wire.h"

namespace mk8s::apiserver::http {
namespace {

namespace net = boost::asio;
namespace bhttp = boost::beast::http;

constexpr auto kHandshakeTimeout = std::chrono::seconds(30);
constexpr auto kIdleTimeout = std::chrono::minutes(5);
constexpr auto kCloseTimeout = std::chrono::seconds(5);
constexpr size_t kRawSize = 16 * 1024;       // ciphertext per receive
constexpr size_t kSmallBody = 16 * 1024;     // a reply up to this goes as one TLS write
constexpr size_t kKeepCapacity = 64 * 1024;  // buffers grown past this are given back
constexpr size_t kMaxDrain = 16 << 20;       // bytes read and dropped while closing

// The TLS read BIO: takes ciphertext from the session's CipherIn (data pointer); "retry" when empty.
BIO_METHOD* SourceBioMethod() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = NewBufferBioMethod("mk8s-source");
    BIO_meth_set_read(m, [](BIO* bio, char* out, int length) -> int {
      auto* in = static_cast<CipherIn*>(BIO_get_data(bio));
      BIO_clear_retry_flags(bio);
      if (in == nullptr || in->begin == in->end || length <= 0) {
        BIO_set_retry_read(bio);
        return -1;
      }
      const size_t n = std::min(static_cast<size_t>(length), in->end - in->begin);
      std::memcpy(out, in->data.get() + in->begin, n);
      in->begin += n;
      return static_cast<int>(n);
    });
    BIO_meth_set_write(m, [](BIO*, const char*, int) -> int { return -1; });
    return m;
  }();
  return method;
}

std::string_view Reason(int status) {
  const auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
  return std::string_view(reason.data(), reason.size());
}

// The response head: status line, Content-Type, the extra headers, Content-Length.
std::string BuildHead(const Response& response, bool keep_alive, size_t body_size) {
  std::string head;
  head.reserve(128);
  head += "HTTP/1.1 ";
  head += std::to_string(response.status);
  head += ' ';
  head += Reason(response.status);
  head += "\r\nContent-Type: ";
  head += response.content_type;
  head += "\r\n";
  for (const auto& header : response.headers) {
    head += header.name;
    head += ": ";
    head += header.value;
    head += "\r\n";
  }
  if (response.status >= 200 && response.status != 204 && response.status != 304) {
    head += "Content-Length: ";
    head += std::to_string(body_size);
    head += "\r\n";
  }
  if (!keep_alive) head += "Connection: close\r\n";
  head += "\r\n";
  return head;
}

void GiveBackIfLarge(std::string* buffer) {
  if (buffer->capacity() > kKeepCapacity) std::string().swap(*buffer);
}

}  // namespace

Session::Session(StrandSocket socket, SSL_CTX* tls, const ServerOptions& options,
                 const Handler& handler)
    : socket_(std::move(socket)), timer_(socket_.get_executor()), options_(options),
      handler_(handler) {
  boost::system::error_code ignored;
  auto endpoint = socket_.remote_endpoint(ignored);
  remote_ = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  raw_.data = std::make_unique<char[]>(kRawSize);
  ssl_ = SSL_new(tls);
  if (ssl_ == nullptr) return;
  SSL_set_mode(ssl_, SSL_MODE_RELEASE_BUFFERS);  // idle connections keep no record buffers
  BIO* in = BIO_new(SourceBioMethod());
  BIO* out = BIO_new(StringSinkBioMethod());
  if (in == nullptr || out == nullptr) {
    BIO_free(in);
    BIO_free(out);
    SSL_free(ssl_);
    ssl_ = nullptr;
    return;
  }
  BIO_set_data(in, &raw_);
  BIO_set_data(out, &out_);
  SSL_set_bio(ssl_, in, out);
  SSL_set_accept_state(ssl_);
}

Session::~Session() {
  if (ssl_ != nullptr) SSL_free(ssl_);
}

void Session::Run() {
  Post([self = shared_from_this()] {
    if (self->ssl_ == nullptr) return self->Close();
    self->Touch();
    self->ArmTimer(kHandshakeTimeout);
    self->Handshake();
  });
}

// --- TLS and socket plumbing ---

void Session::ReceiveThen(void (Session::*then)()) {
  raw_.begin = raw_.end = 0;
  socket_.async_read_some(net::buffer(raw_.data.get(), kRawSize),
                          [self = shared_from_this(), then](boost::system::error_code ec,
                                                            size_t n) {
                            if (self->phase_ == Phase::kClosed) return;
                            if (ec) return self->Close();  // EOF, reset, or the timer closed it
                            self->raw_.end = n;
                            ((*self).*then)();
                          });
}

bool Session::Encrypt(std::string_view plain) {
  while (!plain.empty()) {
    const int size = static_cast<int>(std::min<size_t>(plain.size(), 1 << 30));
    ERR_clear_error();
    const int n = SSL_write(ssl_, plain.data(), size);
    if (n <= 0) {
      Close();
      return false;
    }
    plain.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool Session::SendOut() {
  if (writing_) return false;
  if (phase_ == Phase::kClosed) return false;
  while (out_sent_ < out_.size()) {
    const ssize_t n = ::send(socket_.native_handle(), out_.data() + out_sent_,
                             out_.size() - out_sent_, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      out_sent_ += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      // The socket is full: Asio sends the rest when it drains (it retries send() itself, so no
      // readiness edge is missed). New records go to a fresh out_ meanwhile.
      const size_t from = out_sent_;
      inflight_.swap(out_);
      out_.clear();
      out_sent_ = 0;
      writing_ = true;
      net::async_write(socket_, net::buffer(inflight_.data() + from, inflight_.size() - from),
                       [self = shared_from_this()](boost::system::error_code ec, size_t) {
                         self->writing_ = false;
                         self->inflight_.clear();
                         GiveBackIfLarge(&self->inflight_);
                         if (self->phase_ == Phase::kClosed) return;
                         if (ec) return self->Close();
                         self->OnWritten();
                       });
      return false;
    }
    Close();  // the peer reset or the socket failed
    return false;
  }
  out_.clear();
  out_sent_ = 0;
  GiveBackIfLarge(&out_);
  return true;
}

void Session::OnWritten() {
  if (!SendOut()) return;
  if (after_write_) {
    auto next = std::move(after_write_);
    after_write_ = nullptr;
    return next();
  }
  switch (phase_) {
    case Phase::kWriting: return PumpReply();
    case Phase::kUpgrading: return OnUpgradeSent();
    case Phase::kUpgraded:
      if (upgrade_) upgrade_->backlog_bytes -= batch_bytes_;
      batch_bytes_ = 0;
      return FlushUpgraded();
    case Phase::kClosing: return DrainUntilClosed();
    default: return;
  }
}

void Session::ArmTimer(std::chrono::steady_clock::duration after) {
  timer_.expires_after(after);
  timer_.async_wait([self = shared_from_this()](boost::system::error_code ec) {
    if (!ec) self->OnTimer();
  });
}

void Session::OnTimer() {
  std::chrono::steady_clock::duration limit;
  switch (phase_) {
    case Phase::kHandshake: limit = kHandshakeTimeout; break;
    case Phase::kReading:
    case Phase::kWriting: limit = kIdleTimeout; break;
    case Phase::kClosing: limit = kCloseTimeout; break;
    case Phase::kHandling: return ArmTimer(kIdleTimeout);  // the handler answers in its time
    default: return;  // streams and upgraded connections have no timeout
  }
  const auto idle = std::chrono::steady_clock::now() - last_activity_;
  if (idle >= limit) return Close();
  ArmTimer(limit - idle);
}

void Session::Close() {
  if (phase_ == Phase::kClosed) return;
  phase_ = Phase::kClosed;
  boost::system::error_code ignored;
  timer_.cancel();
  socket_.close(ignored);
  if (upgrade_ && !upgrade_ended_) EndUpgrade();
}

void Session::Shutdown() {
  if (phase_ == Phase::kClosing || phase_ == Phase::kClosed) return;
  phase_ = Phase::kClosing;
  Touch();
  ArmTimer(kCloseTimeout);
  ERR_clear_error();
  SSL_shutdown(ssl_);  // close_notify into out_
  if (SendOut()) DrainUntilClosed();
}

// After close_notify: half-close, then read and drop what the client still sends (a 413's body)
// until it closes, so it can read the answer before the connection goes.
void Session::DrainUntilClosed() {
  if (phase_ != Phase::kClosing) return;
  if (!write_shut_) {
    write_shut_ = true;
    ::shutdown(socket_.native_handle(), SHUT_WR);
  }
  socket_.async_read_some(net::buffer(raw_.data.get(), kRawSize),
                          [self = shared_from_this()](boost::system::error_code ec, size_t n) {
                            if (self->phase_ != Phase::kClosing) return;
                            if (ec) return self->Close();
                            self->drained_ += n;
                            if (self->drained_ > kMaxDrain) return self->Close();
                            self->Touch();
                            self->DrainUntilClosed();
                          });
}

// --- requests ---

void Session::Handshake() {
  ERR_clear_error();
  const int rc = SSL_do_handshake(ssl_);
  const int error = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(ssl_, rc);
  if (!SendOut() && phase_ == Phase::kClosed) return;
  if (rc == 1) {
    peer_ = ReadPeer(ssl_);
    PrepareRequest();
    return ReadLoop();
  }
  if (error == SSL_ERROR_WANT_READ) return ReceiveThen(&Session::Handshake);
  Close();  // scanners, wrong protocol, bad certificates
}

void Session::PrepareRequest() {
  phase_ = Phase::kReading;
  Touch();
  parser_.emplace();
  parser_->body_limit(options_.max_body_bytes);
  parser_->header_limit(64 * 1024);
  parser_->eager(true);
  continue_checked_ = false;
  if (in_.size() == 0 && in_.capacity() > kKeepCapacity) in_.shrink_to_fit();
}

bool Session::AnswerExpectContinue() {
  // A client that sent "Expect: 100-continue" (curl does for bodies over 1 MB) waits for this
  // interim answer before the body (curl: 1 s, then it sends anyway). A body over the limit never
  // gets here: its Content-Length already failed the parser (413, without the 100).
  const auto& head = parser_->get();
  const auto expect = head[bhttp::field::expect];
  if (head.version() < 11 || !boost::beast::iequals(expect, "100-continue")) return true;
  if (!Encrypt("HTTP/1.1 100 Continue\r\n\r\n")) return false;
  return SendOut() || phase_ != Phase::kClosed;  // a full socket finishes it in the background
}

void Session::ReadLoop() {
  for (int served = 0; served < kMaxInline; ++served) {
    if (!ReadRequest()) return;
    Dispatch();
    if (!reply_written_) return;  // the answer comes later (Reply, or OnWritten for a big one)
    reply_written_ = false;
    if (!keep_alive_) return Shutdown();
    PrepareRequest();
  }
  // A client keeping this thread busy with back-to-back requests lets other connections in.
  Post([self = shared_from_this()] {
    if (self->phase_ == Phase::kReading) self->ReadLoop();
  });
}

bool Session::ReadRequest() {
  for (;;) {
    if (in_.size() > 0) {
      boost::system::error_code ec;
      const size_t used = parser_->put(in_.data(), ec);
      in_.consume(used);
      if (!ec && parser_->is_done()) return true;
      if (ec && ec != bhttp::error::need_more) {
        OnParseError(ec);
        return false;
      }
      if (!continue_checked_ && parser_->is_header_done()) {
        continue_checked_ = true;
        if (!AnswerExpectContinue()) return false;
      }
      if (!ec && used > 0) continue;
    }
    ERR_clear_error();
    auto space = in_.prepare(kReadChunk);
    const int n = SSL_read(ssl_, space.data(), static_cast<int>(space.size()));
    if (n > 0) {
      in_.commit(static_cast<size_t>(n));
      continue;
    }
    const int error = SSL_get_error(ssl_, n);
    if (!SendOut() && phase_ == Phase::kClosed) return false;  // SSL_read may answer (alerts)
    if (error == SSL_ERROR_WANT_READ) {
      ReceiveThen(&Session::ReadLoop);
      return false;
    }
    Close();  // the client closed (close_notify or EOF) or TLS failed
    return false;
  }
}

void Session::OnParseError(const boost::system::error_code& ec) {
  keep_alive_ = false;
  phase_ = Phase::kHandling;
  if (ec == bhttp::error::body_limit) {
    // Answer 413, then drain what the client still sends so that it reads the answer.
    return Reply(Response{413, "application/json", {},
                          StatusJson(413, "RequestEntityTooLarge",
                                     "the request body is larger than " +
                                         std::to_string(options_.max_body_bytes) + " bytes")});
  }
  Reply(Response{400, "application/json", {},
                 StatusJson(400, "BadRequest", "malformed HTTP request")});
}

void Session::Dispatch() {
  phase_ = Phase::kHandling;
  bhttp::request<bhttp::string_body> message = parser_->release();
  parser_.reset();
  keep_alive_ = message.keep_alive();
  const auto method = message.method_string();
  const auto target = message.target();
  Request request = MakeRequest(std::string(method.data(), method.size()),
                                std::string(target.data(), target.size()));
  request.headers.reserve(std::distance(message.begin(), message.end()));
  for (const auto& field : message) {
    const auto name = field.name_string();
    const auto value = field.value();
    AddHeader(&request, std::string_view(name.data(), name.size()),
              std::string_view(value.data(), value.size()));
  }
  request.body = std::move(message.body());
  request.peer = peer_;
  request.remote_address = remote_;
  in_handler_ = true;
  reply_written_ = false;
  // A handler's bug costs its request, not the daemon: the responder it drops while the
  // exception unwinds answers 500 ("the request was not answered").
  const std::string method_text = request.method, target_text = request.target;
  try {
    handler_(std::move(request), MakeResponder(shared_from_this(), options_.max_stream_backlog_bytes));
  } catch (const std::exception& error) {
    spdlog::error("http: {} {} failed: {}", method_text, target_text.substr(0, 256), error.what());
  }
  in_handler_ = false;
}

void Session::Reply(Response response) {
  if (phase_ != Phase::kHandling) return;
  phase_ = Phase::kWriting;
  Touch();
  reply_head_ = BuildHead(response, keep_alive_, response.body.size());
  reply_body_ = std::move(response.body);
  body_offset_ = 0;
  PumpReply();
}

void Session::PumpReply() {
  for (;;) {
    if (!SendOut()) return;  // OnWritten resumes here (or the connection failed)
    if (!reply_head_.empty()) {
      if (reply_body_.size() - body_offset_ <= kSmallBody) {
        reply_head_.append(reply_body_, body_offset_);
        body_offset_ = reply_body_.size();
      }
      if (!Encrypt(reply_head_)) return;
      reply_head_.clear();
      continue;
    }
    if (body_offset_ < reply_body_.size()) {
      const size_t n = std::min(kPiece, reply_body_.size() - body_offset_);
      if (!Encrypt(std::string_view(reply_body_).substr(body_offset_, n))) return;
      body_offset_ += n;
      continue;
    }
    break;
  }
  reply_body_.clear();
  GiveBackIfLarge(&reply_body_);
  GiveBackIfLarge(&reply_head_);
  body_offset_ = 0;
  if (in_handler_) {
    reply_written_ = true;  // ReadLoop goes on
    return;
  }
  AfterReply();
}

void Session::AfterReply() {
  if (!keep_alive_) return Shutdown();
  PrepareRequest();
  ReadLoop();
}

// --- streams ---

void Session::BeginStream(const std::shared_ptr<TlsResponseStream>& stream, int status,
                          const std::string& content_type, const std::vector<Header>& headers) {
  if (writing_) {  // the handshake's last records are still going out: after them
    after_write_ = [self = shared_from_this(), stream, status, content_type, headers] {
      self->BeginStream(stream, status, content_type, headers);
    };
    return;
  }
  phase_ = Phase::kStreaming;  // the stream sends close_notify and closes the socket itself
  timer_.cancel();
  std::string head = "HTTP/1.1 " + std::to_string(status) + " ";
  head += Reason(status);
  head += "\r\nContent-Type: " + content_type +
          "\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n";
  for (const auto& header : headers) head += header.name + ": " + header.value + "\r\n";
  head += "\r\n";
  stream->Begin(std::move(head));
}

void Session::WaitReadable(std::function<void(bool)> done) {
  socket_.async_wait(StrandSocket::wait_read,
                     [self = shared_from_this(), done = std::move(done)](
                         boost::system::error_code ec) { done(!!ec); });
}

void Session::WriteAll(const char* data, size_t size, std::function<void(bool)> done) {
  net::async_write(socket_, net::buffer(data, size),
                   [self = shared_from_this(), done = std::move(done)](
                       boost::system::error_code ec, size_t) { done(!!ec); });
}

void Session::CloseSocket() {
  phase_ = Phase::kClosed;
  boost::system::error_code ignored;
  timer_.cancel();
  socket_.close(ignored);
}

}  // namespace mk8s::apiserver::http
