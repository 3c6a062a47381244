// Boost.Beast HTTPS server. Threads: `threads` transport threads run one io_context; each
// connection lives on its own strand, so a connection's state is only touched on its strand.
// Handlers may answer from any thread; answers are posted onto the connection's strand.
// Streamed responses (watches) leave Asio/Beast once their head is due: TlsResponseStream writes
// them straight to the socket (tls_response_stream.h), with Session as its StreamSocket.
#include "apiserver/http/http_server.h"

#include <pthread.h>

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "apiserver/http/tls_response_stream.h"
#include "apiserver/http/tls_server.h"
#include "apiserver/http/wire.h"
#include "pki/tls_identity.h"

namespace mk8s::apiserver::http {
namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;

constexpr auto kHandshakeTimeout = std::chrono::seconds(30);
constexpr auto kIdleTimeout = std::chrono::minutes(5);

class Session;
using Chunk = std::shared_ptr<const std::string>;  // immutable, possibly shared by many streams

// The client side of an upgraded connection; the state lives in Session (on its strand).
class UpgradeImpl final : public UpgradedConnection {
 public:
  UpgradeImpl(std::shared_ptr<Session> session, size_t max_backlog)
      : session_(std::move(session)), max_backlog_(max_backlog) {}
  void Start(std::function<void(std::string_view)> on_data,
             std::function<void()> on_closed) override;
  bool Write(std::string bytes) override;
  size_t buffered_bytes() const override { return backlog_bytes.load(); }
  void Close() override;
  void MarkEnded() { ended_ = true; }
  std::atomic<size_t> backlog_bytes{0};

 private:
  std::shared_ptr<Session> session_;
  const size_t max_backlog_;
  std::atomic<bool> ended_{false};
};

class Session : public StreamSocket, public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, ssl::context& tls, const ServerOptions& options,
          const Handler& handler)
      : stream_(std::move(socket), tls), options_(options), handler_(handler) {
    boost::system::error_code ignored;
    auto endpoint = beast::get_lowest_layer(stream_).socket().remote_endpoint(ignored);
    remote_ = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
  }

  void Run() {
    beast::get_lowest_layer(stream_).expires_after(kHandshakeTimeout);
    stream_.async_handshake(ssl::stream_base::server,
                            [self = shared_from_this()](beast::error_code ec) {
                              if (ec) return;  // scanners, wrong protocol, bad certificates
                              self->peer_ = ReadPeer(self->stream_.native_handle());
                              self->ReadRequest();
                            });
  }

  // Runs `work` on this connection's strand.
  template <typename Work>
  void Post(Work&& work) {
    net::post(stream_.get_executor(), std::forward<Work>(work));
  }

  // --- called on the strand ---
  void Reply(Response response) {
    auto message = std::make_shared<bhttp::response<bhttp::string_body>>();
    message->version(11);
    message->result(static_cast<unsigned>(response.status));
    message->set(bhttp::field::content_type, response.content_type);
    for (const auto& header : response.headers) message->set(header.name, header.value);
    message->body() = std::move(response.body);
    message->keep_alive(keep_alive_);
    message->prepare_payload();
    bhttp::async_write(stream_, *message,
                       [self = shared_from_this(), message](beast::error_code ec, size_t) {
                         if (ec) return;
                         if (self->drain_before_close_) return self->Drain(0);
                         if (!self->keep_alive_) return self->Shutdown();
                         self->ReadRequest();
                       });
  }

  // Hands the connection to `stream` with the response head (the connection closes after it).
  void BeginStream(const std::shared_ptr<TlsResponseStream>& stream, int status,
                   const std::string& content_type, const std::vector<Header>& headers) {
    beast::get_lowest_layer(stream_).expires_never();
    shut_down_ = true;  // the stream sends close_notify and closes the socket itself
    std::string head = "HTTP/1.1 " + std::to_string(status) + " ";
    const auto reason = bhttp::obsolete_reason(static_cast<bhttp::status>(status));
    head.append(reason.data(), reason.size());
    head += "\r\nContent-Type: " + content_type +
            "\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n";
    for (const auto& header : headers) head += header.name + ": " + header.value + "\r\n";
    head += "\r\n";
    stream->Begin(std::move(head));
  }

  // --- StreamSocket (for TlsResponseStream) ---
  int native_fd() override { return beast::get_lowest_layer(stream_).socket().native_handle(); }
  SSL* native_ssl() override { return stream_.native_handle(); }
  void PostToStrand(std::function<void()> work) override { Post(std::move(work)); }
  void WaitReadable(std::function<void(bool)> done) override {
    beast::get_lowest_layer(stream_).socket().async_wait(
        tcp::socket::wait_read,
        [self = shared_from_this(), done = std::move(done)](beast::error_code ec) { done(!!ec); });
  }
  void WriteAll(const char* data, size_t size, std::function<void(bool)> done) override {
    net::async_write(beast::get_lowest_layer(stream_).socket(), net::buffer(data, size),
                     [self = shared_from_this(), done = std::move(done)](beast::error_code ec,
                                                                         size_t) { done(!!ec); });
  }
  void CloseSocket() override {
    boost::system::error_code ignored;
    beast::get_lowest_layer(stream_).socket().close(ignored);
  }

  // --- upgraded connections (strand) ---
  void BeginUpgrade(std::shared_ptr<UpgradeImpl> upgrade, std::vector<Header> headers) {
    upgrade_ = std::move(upgrade);
    beast::get_lowest_layer(stream_).expires_never();
    auto head = std::make_shared<bhttp::response<bhttp::empty_body>>();
    head->version(11);
    head->result(bhttp::status::switching_protocols);
    for (const auto& header : headers) head->set(header.name, header.value);
    auto serializer = std::make_shared<bhttp::response_serializer<bhttp::empty_body>>(*head);
    writing_ = true;
    bhttp::async_write_header(
        stream_, *serializer,
        [self = shared_from_this(), head, serializer](beast::error_code ec, size_t) {
          self->writing_ = false;
          if (ec) return self->EndUpgrade();
          self->upgraded_ = true;
          self->MaybeReadUpgraded();
          self->FlushUpgraded();
        });
  }

  void StartUpgraded(std::function<void(std::string_view)> on_data,
                     std::function<void()> on_closed) {
    if (upgrade_ended_) {
      if (on_closed) on_closed();
      return;
    }
    on_data_ = std::move(on_data);
    on_closed_ = std::move(on_closed);
    MaybeReadUpgraded();
  }

  void QueueUpgraded(Chunk bytes) {
    if (upgrade_ended_) return;
    chunks_.push_back(std::move(bytes));
    FlushUpgraded();
  }

  void CloseUpgraded() {
    upgrade_close_requested_ = true;
    FlushUpgraded();
  }

 private:
  void ReadRequest() {
    parser_.emplace();
    parser_->body_limit(options_.max_body_bytes);
    parser_->header_limit(64 * 1024);
    beast::get_lowest_layer(stream_).expires_after(kIdleTimeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        self->OnRequest(ec);
                      });
  }

  void OnRequest(beast::error_code ec) {
    if (ec == bhttp::error::body_limit) {
      keep_alive_ = false;
      drain_before_close_ = true;  // let the client finish sending so it reads the 413
      return Reply(Response{413, "application/json", {},
                            StatusJson(413, "RequestEntityTooLarge",
                                       "the request body is larger than " +
                                           std::to_string(options_.max_body_bytes) + " bytes")});
    }
    if (ec) {
      if (ec != bhttp::error::end_of_stream && ec != beast::error::timeout &&
          ec != net::error::operation_aborted && ec != net::ssl::error::stream_truncated &&
          ec != net::error::eof) {
        // Malformed HTTP: answer 400 once and close.
        keep_alive_ = false;
        return Reply(Response{400, "application/json", {},
                              StatusJson(400, "BadRequest", "malformed HTTP request")});
      }
      return Shutdown();
    }
    bhttp::request<bhttp::string_body> message = parser_->release();
    keep_alive_ = message.keep_alive();
    Request request = MakeRequest(std::string(message.method_string()),
                                  std::string(message.target()));
    request.headers.reserve(std::distance(message.begin(), message.end()));
    for (const auto& field : message) {
      // Boost 1.74's beast::string_view does not convert to std::string_view by itself.
      const auto name = field.name_string();
      const auto value = field.value();
      AddHeader(&request, std::string_view(name.data(), name.size()),
                std::string_view(value.data(), value.size()));
    }
    request.body = std::move(message.body());
    request.peer = peer_;
    request.remote_address = remote_;
    handler_(std::move(request), MakeResponder());
  }

  std::shared_ptr<Responder> MakeResponder();

  // Queued bytes of an upgraded connection written together: the buffers point into `chunks`, which the batch keeps alive
  // until the write completes.
  struct Batch {
    std::vector<Chunk> chunks;
    std::vector<net::const_buffer> buffers;
    size_t bytes = 0;
  };
  // Takes queued chunks (at least one; up to kMaxCoalesced bytes) off chunks_. Strand only.
  std::shared_ptr<Batch> TakeBatch() {
    constexpr size_t kMaxCoalesced = 256 * 1024;
    auto batch = std::make_shared<Batch>();
    do {
      batch->bytes += chunks_.front()->size();
      batch->buffers.push_back(net::buffer(*chunks_.front()));
      batch->chunks.push_back(std::move(chunks_.front()));
      chunks_.pop_front();
    } while (!chunks_.empty() && batch->bytes + chunks_.front()->size() <= kMaxCoalesced);
    return batch;
  }

  // Reads and discards what the client still sends (up to a bound), then closes.
  void Drain(size_t drained) {
    constexpr size_t kMaxDrain = 16 << 20;
    if (drained > kMaxDrain) return Shutdown();
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(5));
    stream_.async_read_some(net::buffer(hangup_probe_),
                            [self = shared_from_this(), drained](beast::error_code ec, size_t n) {
                              if (ec) return self->Shutdown();
                              self->Drain(drained + n);
                            });
  }

  void MaybeReadUpgraded() {
    if (!upgraded_ || !on_data_ || upgrade_reading_ || upgrade_ended_) return;
    upgrade_reading_ = true;
    if (buffer_.size() > 0) {  // bytes that came right behind the request
      const auto data = buffer_.data();
      std::string early(static_cast<const char*>(data.data()), data.size());
      buffer_.consume(buffer_.size());
      on_data_(early);
    }
    ReadUpgraded();
  }

  void ReadUpgraded() {
    if (upgrade_ended_) return;
    stream_.async_read_some(net::buffer(hangup_probe_),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              if (ec) return self->EndUpgrade();
                              if (self->on_data_) {
                                self->on_data_(std::string_view(self->hangup_probe_, n));
                              }
                              self->ReadUpgraded();
                            });
  }

  void FlushUpgraded() {
    if (writing_ || !upgraded_ || upgrade_ended_) return;
    if (chunks_.empty()) {
      if (upgrade_close_requested_) EndUpgrade();
      return;
    }
    auto batch = TakeBatch();
    writing_ = true;
    net::async_write(stream_, batch->buffers,
                     [self = shared_from_this(), batch](beast::error_code ec, size_t) {
                       self->writing_ = false;
                       if (self->upgrade_) self->upgrade_->backlog_bytes -= batch->bytes;
                       if (ec) return self->EndUpgrade();
                       self->FlushUpgraded();
                     });
  }

  void EndUpgrade() {
    if (upgrade_ended_) return;
    upgrade_ended_ = true;
    chunks_.clear();
    if (upgrade_) upgrade_->MarkEnded();
    upgrade_.reset();
    on_data_ = nullptr;
    std::function<void()> on_closed = std::move(on_closed_);
    on_closed_ = nullptr;
    if (on_closed) on_closed();
    Shutdown();
  }

  void Shutdown() {
    if (shut_down_) return;
    shut_down_ = true;
    beast::get_lowest_layer(stream_).expires_after(std::chrono::seconds(5));
    stream_.async_shutdown([self = shared_from_this()](beast::error_code) {
      boost::system::error_code ignored;
      beast::get_lowest_layer(self->stream_).socket().close(ignored);
    });
  }

  beast::ssl_stream<beast::tcp_stream> stream_;
  const ServerOptions& options_;
  const Handler& handler_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  PeerCertificate peer_;
  std::string remote_;
  bool keep_alive_ = true;
  bool drain_before_close_ = false;
  bool shut_down_ = false;
  // Upgraded connections' outgoing bytes (strand only).
  std::deque<Chunk> chunks_;
  bool writing_ = false;
  // Upgraded state (strand only).
  std::shared_ptr<UpgradeImpl> upgrade_;
  std::function<void(std::string_view)> on_data_;
  std::function<void()> on_closed_;
  bool upgraded_ = false;  // the 101 is written
  bool upgrade_reading_ = false;
  bool upgrade_close_requested_ = false;
  bool upgrade_ended_ = false;
  char hangup_probe_[16384];  // hang-up detection, draining, upgraded reads
};

void UpgradeImpl::Start(std::function<void(std::string_view)> on_data,
                        std::function<void()> on_closed) {
  session_->Post([session = session_, on_data = std::move(on_data),
                  on_closed = std::move(on_closed)]() mutable {
    session->StartUpgraded(std::move(on_data), std::move(on_closed));
  });
}

bool UpgradeImpl::Write(std::string bytes) {
  if (ended_) return false;
  if (bytes.empty()) return true;
  if (backlog_bytes.load() + bytes.size() > max_backlog_) {
    spdlog::warn("closing an upgraded connection whose client is {} bytes behind",
                 backlog_bytes.load());
    Close();
    return false;
  }
  backlog_bytes += bytes.size();
  session_->Post([session = session_,
                  bytes = std::make_shared<const std::string>(std::move(bytes))]() mutable {
    session->QueueUpgraded(std::move(bytes));
  });
  return true;
}

void UpgradeImpl::Close() {
  session_->Post([session = session_] { session->CloseUpgraded(); });
}

// Completes one request; an unanswered request gets a 500 rather than a hung connection.
class ResponderImpl final : public Responder {
 public:
  ResponderImpl(std::shared_ptr<Session> session, size_t max_backlog)
      : session_(std::move(session)), max_backlog_(max_backlog) {}
  ~ResponderImpl() override {
    if (!answered_.exchange(true)) {
      session_->Post([session = session_] {
        session->Reply(Response{500, "application/json", {},
                                StatusJson(500, "InternalError", "the request was not answered")});
      });
    }
  }

  void Send(Response response) override {
    if (answered_.exchange(true)) return;
    session_->Post([session = session_, response = std::move(response)]() mutable {
      session->Reply(std::move(response));
    });
  }

  std::shared_ptr<ResponseStream> StartStream(int status, std::string content_type,
                                              std::vector<Header> headers) override {
    auto stream = std::make_shared<TlsResponseStream>(session_, max_backlog_);
    if (answered_.exchange(true)) {
      stream->Abandon();
      return stream;
    }
    session_->Post([session = session_, stream, status, content_type = std::move(content_type),
                    headers = std::move(headers)] {
      session->BeginStream(stream, status, content_type, headers);
    });
    return stream;
  }

  std::shared_ptr<UpgradedConnection> Upgrade(std::vector<Header> headers) override {
    if (answered_.exchange(true)) return nullptr;
    auto upgrade = std::make_shared<UpgradeImpl>(session_, max_backlog_);
    session_->Post([session = session_, upgrade, headers = std::move(headers)]() mutable {
      session->BeginUpgrade(std::move(upgrade), std::move(headers));
    });
    return upgrade;
  }

 private:
  std::shared_ptr<Session> session_;
  const size_t max_backlog_;
  std::atomic<bool> answered_{false};
};

std::shared_ptr<Responder> Session::MakeResponder() {
  return std::make_shared<ResponderImpl>(shared_from_this(), options_.max_stream_backlog_bytes);
}

class HttpServerImpl final : public HttpServer {
 public:
  HttpServerImpl(const ServerOptions& options, Handler handler)
      : options_(options), handler_(std::move(handler)), tls_(ssl::context::tls_server),
        acceptor_(io_) {}
  ~HttpServerImpl() override { Stop(); }

  Status Start() {
    try {
      ConfigureServerTls(tls_, options_);
      auto identity = pki::TlsIdentitySlot::Create(options_.cert_pem, options_.key_pem);
      if (!identity.ok()) return identity.status();
      identity_ = std::move(*identity);
      if (Status installed = identity_->Install(tls_.native_handle()); !installed.ok()) {
        return installed;
      }

      tcp::endpoint endpoint(net::ip::make_address(options_.bind_address), options_.port);
      acceptor_.open(endpoint.protocol());
      acceptor_.set_option(net::socket_base::reuse_address(true));
      acceptor_.bind(endpoint);
      acceptor_.listen(net::socket_base::max_listen_connections);
      port_ = acceptor_.local_endpoint().port();
    } catch (const boost::system::system_error& error) {
      return Status(Code::kUnavailable, "cannot serve HTTPS on " + options_.bind_address + ":" +
                                            std::to_string(options_.port) + ": " +
                                            error.code().message());
    }
    Accept();
    for (int i = 0; i < std::max(1, options_.threads); ++i) {
      threads_.emplace_back([this] { io_.run(); });
      pthread_setname_np(threads_.back().native_handle(), ("http-" + std::to_string(i)).c_str());
    }
    return Status::Ok();
  }

  uint16_t port() const override { return port_; }

  Status ReplaceCertificate(const std::string& chain_pem, const std::string& key_pem) override {
    return identity_->Replace(chain_pem, key_pem);
  }

  void Stop() override {
    std::lock_guard lock(stop_mu_);
    if (stopped_) return;
    stopped_ = true;
    net::post(io_, [this] {
      boost::system::error_code ignored;
      acceptor_.close(ignored);
    });
    io_.stop();
    for (auto& thread : threads_) thread.join();
    threads_.clear();
  }

 private:
  void Accept() {
    acceptor_.async_accept(net::make_strand(io_), [this](beast::error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted) return;
      if (!ec) {
        socket.set_option(tcp::no_delay(true));
        std::make_shared<Session>(std::move(socket), tls_, options_, handler_)->Run();
      }
      Accept();
    });
  }

  const ServerOptions options_;
  const Handler handler_;
  net::io_context io_;
  std::unique_ptr<pki::TlsIdentitySlot> identity_;  // installed in tls_, so declared before it
  ssl::context tls_;
  tcp::acceptor acceptor_;
  uint16_t port_ = 0;
  std::vector<std::thread> threads_;
  std::mutex stop_mu_;
  bool stopped_ = false;  // GUARDED_BY(stop_mu_)
};

}  // namespace

Result<std::unique_ptr<HttpServer>> HttpServer::Start(const ServerOptions& options,
                                                      Handler handler) {
  auto server = std::make_unique<HttpServerImpl>(options, std::move(handler));
  if (Status status = server->Start(); !status.ok()) return status;
  return std::unique_ptr<HttpServer>(std::move(server));
}

std::string_view Request::HeaderValue(std::string_view lower_name) const {
  for (const auto& header : headers) {
    if (header.name == lower_name) return header.value;
  }
  return {};
}

}  // namespace mk8s::apiserver::http
