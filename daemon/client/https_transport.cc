// The only translation unit with Boost.Beast/Asio in the client library.
#include "client/https_transport.h"

#include <openssl/ssl.h>

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <deque>
#include <list>
#include <optional>
#include <thread>

namespace mk8s::client {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;

namespace {

constexpr uint64_t kMaxResponseBytes = 512ull << 20;

struct Connection {
  Connection(net::io_context& io, ssl::context& ctx) : stream(io, ctx) {}
  beast::ssl_stream<beast::tcp_stream> stream;
  beast::flat_buffer buffer;
  void Close() {
    beast::error_code ignored;
    beast::get_lowest_layer(stream).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(stream).socket().close(ignored);
  }
};
using ConnectionPtr = std::shared_ptr<Connection>;

bool IsIpAddress(const std::string& host) {
  beast::error_code ec;
  net::ip::make_address(host, ec);
  return !ec;
}

}  // namespace

// All members are used on the I/O thread only, except the constants set before it starts.
class HttpsTransport::Impl {
 public:
  explicit Impl(HttpsConfig config) : config_(std::move(config)), ssl_(ssl::context::tls_client) {}

  Status Init() {
    std::string rest = config_.server;
    if (rest.rfind("https://", 0) != 0) {
      return Status(Code::kInvalidArgument, "the API server URL must start with https://: " + rest);
    }
    rest = rest.substr(8);
    if (size_t slash = rest.find('/'); slash != std::string::npos) rest = rest.substr(0, slash);
    if (!rest.empty() && rest[0] == '[') {  // [v6]:port
      size_t close = rest.find(']');
      if (close == std::string::npos) return Status(Code::kInvalidArgument, "bad server URL");
      host_ = rest.substr(1, close - 1);
      port_ = close + 2 <= rest.size() ? rest.substr(close + 2) : "443";
    } else if (size_t colon = rest.rfind(':'); colon != std::string::npos) {
      host_ = rest.substr(0, colon);
      port_ = rest.substr(colon + 1);
    } else {
      host_ = rest;
      port_ = "443";
    }
    if (port_.empty()) port_ = "443";
    beast::error_code ec;
    ssl_.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                     ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
    if (config_.insecure_skip_verify) {
      ssl_.set_verify_mode(ssl::verify_none);
    } else {
      ssl_.set_verify_mode(ssl::verify_peer);
      if (config_.ca_pem.empty()) ssl_.set_default_verify_paths(ec);
      else ssl_.add_certificate_authority(net::buffer(config_.ca_pem), ec);
      if (ec) return Status(Code::kInvalidArgument, "cannot use the CA certificate: " + ec.message());
    }
    if (!config_.client_cert_pem.empty()) {
      ssl_.use_certificate_chain(net::buffer(config_.client_cert_pem), ec);
      if (!ec) ssl_.use_private_key(net::buffer(config_.client_key_pem), ssl::context::pem, ec);
      if (ec) return Status(Code::kInvalidArgument, "cannot use the client certificate: " + ec.message());
    }
    thread_ = std::thread([this] { io_.run(); });
    return Status::Ok();
  }

  ~Impl() {
    net::post(io_, [this] {
      stopping_ = true;
      for (auto& weak : live_) {
        if (auto connection = weak.lock()) connection->Close();
      }
      live_.clear();
      idle_.clear();
    });
    work_.reset();
    if (thread_.joinable()) thread_.join();
  }

  const HttpsConfig& config() const { return config_; }

  // --- requests
  struct SendOp {
    Request request;
    ResponseCallback done;
    bool retried = false;
    bhttp::request<bhttp::string_body> message;
    bhttp::response<bhttp::string_body> response;
    std::optional<bhttp::response_parser<bhttp::string_body>> parser;
  };

  void Send(Request request, ResponseCallback done) {
    auto op = std::make_shared<SendOp>();
    op->request = std::move(request);
    op->done = std::move(done);
    net::post(io_, [this, op] { StartSend(op); });
  }

  // --- streams
  class StreamOp : public StreamHandle, public std::enable_shared_from_this<StreamOp> {
   public:
    StreamOp(Impl* impl, Request request, StreamCallbacks callbacks)
        : impl_(impl), request_(std::move(request)), callbacks_(std::move(callbacks)) {}
    void Cancel() override {
      // impl_ outlives every op that can still be cancelled only while the transport lives;
      // a stale handle's Cancel after destruction is the caller's bug.
      net::post(impl_->io_, [self = shared_from_this()] {
        self->cancelled_ = true;
        if (self->connection_) self->connection_->Close();
        else self->End(Response{0, "", "cancelled"});
      });
    }
    void Start() {
      impl_->Connect([self = shared_from_this()](ConnectionPtr connection, std::string error) {
        if (!connection) return self->End(Response{0, "", error});
        if (self->cancelled_) {
          connection->Close();
          return self->End(Response{0, "", "cancelled"});
        }
        self->connection_ = connection;
        self->message_ = impl_Build(self->impl_, self->request_);
        beast::get_lowest_layer(connection->stream).expires_after(self->impl_->config_.request_timeout);
        bhttp::async_write(connection->stream, self->message_,
                           [self](beast::error_code ec, size_t) {
                             if (ec) return self->Fail(ec);
                             self->ReadHeader();
                           });
      });
    }

   private:
    static bhttp::request<bhttp::string_body> impl_Build(Impl* impl, const Request& request) {
      return impl->Build(request);
    }
    void ReadHeader() {
      parser_.emplace();
      parser_->body_limit(boost::none);
      bhttp::async_read_header(connection_->stream, connection_->buffer, *parser_,
                               [self = shared_from_this()](beast::error_code ec, size_t) {
                                 if (ec) return self->Fail(ec);
                                 beast::get_lowest_layer(self->connection_->stream).expires_never();
                                 self->status_ = static_cast<int>(self->parser_->get().result_int());
                                 self->ReadSome();
                               });
    }
    void ReadSome() {
      if (parser_->is_done()) return Finish();
      bhttp::async_read_some(connection_->stream, connection_->buffer, *parser_,
                             [self = shared_from_this()](beast::error_code ec, size_t) {
                               if (ec) return self->Fail(ec);
                               self->Deliver();
                               self->ReadSome();
                             });
    }
    void Deliver() {
      if (status_ < 200 || status_ >= 300) return;  // error bodies are collected whole
      std::string& body = parser_->get().body();
      if (body.empty() || ended_) return;
      std::string data;
      data.swap(body);
      splitter_.Feed(data, [&](std::string line) {
        if (!cancelled_ && !ended_ && callbacks_.on_line) callbacks_.on_line(std::move(line));
      });
    }
    void Finish() {
      Deliver();
      Response response{status_, std::string(parser_->get()[bhttp::field::content_type]), ""};
      if (status_ < 200 || status_ >= 300) response.body = std::move(parser_->get().body());
      connection_->Close();
      End(std::move(response));
    }
    void Fail(beast::error_code ec) {
      if (connection_) connection_->Close();
      End(Response{0, "", cancelled_ ? "cancelled" : "watch connection failed: " + ec.message()});
    }
    void End(Response response) {
      if (ended_) return;
      ended_ = true;
      if (callbacks_.on_end) callbacks_.on_end(std::move(response));
      callbacks_ = StreamCallbacks{};
    }

    Impl* impl_;
    Request request_;
    StreamCallbacks callbacks_;
    ConnectionPtr connection_;
    bhttp::request<bhttp::string_body> message_;
    std::optional<bhttp::response_parser<bhttp::string_body>> parser_;
    LineSplitter splitter_;
    int status_ = 0;
    bool cancelled_ = false;
    bool ended_ = false;
  };

  std::shared_ptr<StreamHandle> Stream(Request request, StreamCallbacks callbacks) {
    auto op = std::make_shared<StreamOp>(this, std::move(request), std::move(callbacks));
    net::post(io_, [op] { op->Start(); });
    return op;
  }

 private:
  using ConnectCallback = std::function<void(ConnectionPtr, std::string error)>;

  bhttp::request<bhttp::string_body> Build(const Request& request) {
    bhttp::request<bhttp::string_body> message;
    message.method_string(request.method);
    message.target(request.Target());
    message.version(11);
    message.set(bhttp::field::host, host_ + ":" + port_);
    message.set(bhttp::field::user_agent, "mk8s-client");
    message.set(bhttp::field::accept, "application/json");
    if (!config_.bearer_token.empty()) {
      message.set(bhttp::field::authorization, "Bearer " + config_.bearer_token);
    }
    if (!request.content_type.empty()) message.set(bhttp::field::content_type, request.content_type);
    for (const auto& [name, value] : request.headers) message.set(name, value);
    message.keep_alive(true);
    message.body() = request.body;
    message.prepare_payload();
    return message;
  }

  // A fresh TLS connection (I/O thread).
  void Connect(ConnectCallback done) {
    if (stopping_) return done(nullptr, "the transport is shut down");
    auto connection = std::make_shared<Connection>(io_, ssl_);
    live_.push_back(connection);
    if (live_.size() > 64) live_.remove_if([](const auto& weak) { return weak.expired(); });
    if (!IsIpAddress(host_)) {
      SSL_set_tlsext_host_name(connection->stream.native_handle(), host_.c_str());
    }
    if (!config_.insecure_skip_verify) {
      connection->stream.set_verify_callback(ssl::host_name_verification(host_));
    }
    resolver_.async_resolve(
        host_, port_,
        [this, connection, done](beast::error_code ec, tcp::resolver::results_type results) {
          if (ec) return done(nullptr, "cannot resolve " + host_ + ": " + ec.message());
          beast::get_lowest_layer(connection->stream).expires_after(config_.request_timeout);
          beast::get_lowest_layer(connection->stream).async_connect(
              results, [this, connection, done](beast::error_code ec, const tcp::endpoint&) {
                if (ec) return done(nullptr, "cannot connect to " + config_.server + ": " + ec.message());
                connection->stream.async_handshake(
                    ssl::stream_base::client, [this, connection, done](beast::error_code ec) {
                      if (ec) {
                        return done(nullptr, "TLS handshake with " + config_.server +
                                                 " failed: " + ec.message());
                      }
                      if (stopping_) {
                        connection->Close();
                        return done(nullptr, "the transport is shut down");
                      }
                      done(connection, "");
                    });
              });
        });
  }

  void StartSend(const std::shared_ptr<SendOp>& op) {
    if (stopping_) return Complete(op, Response{0, "", "the transport is shut down"});
    if (!idle_.empty()) {
      ConnectionPtr connection = std::move(idle_.back());
      idle_.pop_back();
      return Exchange(op, connection, /*reused=*/true);
    }
    Connect([this, op](ConnectionPtr connection, std::string error) {
      if (!connection) return Complete(op, Response{0, "", error});
      Exchange(op, connection, /*reused=*/false);
    });
  }

  void Exchange(const std::shared_ptr<SendOp>& op, ConnectionPtr connection, bool reused) {
    op->message = Build(op->request);
    op->parser.emplace();
    op->parser->body_limit(kMaxResponseBytes);
    beast::get_lowest_layer(connection->stream).expires_after(config_.request_timeout);
    bhttp::async_write(
        connection->stream, op->message,
        [this, op, connection, reused](beast::error_code ec, size_t) {
          if (ec) return Retry(op, connection, reused, ec);
          bhttp::async_read(
              connection->stream, connection->buffer, *op->parser,
              [this, op, connection, reused](beast::error_code ec, size_t) {
                if (ec) return Retry(op, connection, reused, ec);
                auto& message = op->parser->get();
                Response response{static_cast<int>(message.result_int()),
                                  std::string(message[bhttp::field::content_type]),
                                  std::move(message.body())};
                if (message.keep_alive() && !stopping_ &&
                    static_cast<int>(idle_.size()) < config_.max_idle_connections) {
                  beast::get_lowest_layer(connection->stream).expires_never();
                  idle_.push_back(connection);
                } else {
                  connection->Close();
                }
                Complete(op, std::move(response));
              });
        });
  }

  // A reused keep-alive connection may have been closed by the server while idle: try once more
  // on a fresh connection. Otherwise report the failure.
  void Retry(const std::shared_ptr<SendOp>& op, const ConnectionPtr& connection, bool reused,
             beast::error_code ec) {
    connection->Close();
    if (reused && !op->retried && !stopping_) {
      op->retried = true;
      return StartSend(op);
    }
    Complete(op, Response{0, "", "request to " + config_.server + " failed: " + ec.message()});
  }

  void Complete(const std::shared_ptr<SendOp>& op, Response response) {
    ResponseCallback done = std::move(op->done);
    if (done) done(std::move(response));
  }

  HttpsConfig config_;
  std::string host_;
  std::string port_;
  net::io_context io_;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work_{
      net::make_work_guard(io_)};
  ssl::context ssl_;
  tcp::resolver resolver_{io_};
  std::vector<ConnectionPtr> idle_;             // I/O thread only
  std::list<std::weak_ptr<Connection>> live_;   // I/O thread only: closed at shutdown
  bool stopping_ = false;                       // I/O thread only
  std::thread thread_;
};

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
