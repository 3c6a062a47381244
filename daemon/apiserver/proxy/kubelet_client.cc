#include "apiserver/proxy/kubelet_client.h"

#include <spdlog/spdlog.h>

#include <boost/beast/http.hpp>
#include <deque>
#include <limits>
#include <mutex>
#include <thread>

#include "apiserver/api_error.h"
#include "apiserver/proxy/tls_dial.h"
#include "common/version.h"
#include "pki/tls_identity.h"

namespace mk8s::apiserver {
namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;

constexpr size_t kMaxErrorBody = 64 * 1024;
// A client with this much unsent output makes the proxy pause reading from the kubelet.
constexpr size_t kMaxBuffered = 1 << 20;

void SendStatus(http::Responder& responder, const ApiError& error) {
  responder.Send(http::Response{error.code, "application/json", {}, error.ToJson()});
}

std::string TrimNewlines(std::string text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
  return text;
}

// The kubelet's non-2xx answer as the API server reports it (upstream's response checker).
ApiError KubeletError(int code, std::string text, const std::string& address) {
  text = TrimNewlines(std::move(text));
  switch (code) {
    case 400:
      return ApiError::BadRequest(text);
    case 404:
      return ApiError{404, "NotFound", text};
    case 401:
    case 403:
      return ApiError::Internal("the kubelet at " + address +
                                " refused the API server's credentials: " + text);
    case 503:
      return ApiError::ServiceUnavailable(text);
    default:
      return code >= 500 ? ApiError::Internal(text) : ApiError{code, "BadRequest", text};
  }
}

// One proxied GET. Lives on its strand; owned by the pending asynchronous operations.
class ProxiedGet : public std::enable_shared_from_this<ProxiedGet> {
 public:
  ProxiedGet(net::any_io_executor strand, ssl::context& tls, const KubeletClientOptions& options,
             std::string host, uint16_t port, std::string target,
             std::shared_ptr<http::Responder> responder)
      : strand_(std::move(strand)),
        tls_(tls),
        options_(options),
        host_(std::move(host)),
        port_(port),
        target_(std::move(target)),
        responder_(std::move(responder)),
        pace_(strand_) {
    address_ = (host_.find(':') != std::string::npos ? "[" + host_ + "]" : host_) + ":" +
               std::to_string(port_);
  }
  ~ProxiedGet() {
    if (out_) out_->Close();
  }

  void Start() {
    proxy::DialTls(
        strand_, tls_, host_, port_, options_.dial_timeout,
        [self = shared_from_this()](std::string error, std::shared_ptr<proxy::TlsStream> stream) {
          if (!error.empty()) return self->Fail(error);
          self->stream_ = std::move(stream);
          self->SendRequest();
        });
  }

 private:
  std::string Url() const { return "https://" + address_ + target_; }

  void Fail(const std::string& cause) {
    spdlog::warn("kubelet proxy: Get {}: {}", Url(), cause);
    SendStatus(*responder_, ApiError::Internal("Get \"" + Url() + "\": " + cause));
    Close();
  }

  void SendRequest() {
    request_.method(bhttp::verb::get);
    request_.target(target_);
    request_.version(11);
    request_.set(bhttp::field::host, address_);
    request_.set(bhttp::field::user_agent, std::string("mk8s-apiserver/") + kVersion);
    request_.set(bhttp::field::connection, "close");
    beast::get_lowest_layer(*stream_).expires_after(options_.response_timeout);
    bhttp::async_write(*stream_, request_,
                       [self = shared_from_this()](beast::error_code error, size_t) {
                         if (error) return self->Fail("write: " + error.message());
                         self->ReadHeader();
                       });
  }

  void ReadHeader() {
    parser_.body_limit(std::numeric_limits<std::uint64_t>::max());  // follow streams are endless
    bhttp::async_read_header(*stream_, buffer_, parser_,
                             [self = shared_from_this()](beast::error_code error, size_t) {
                               if (error)
                                 return self->Fail("reading the response: " + error.message());
                               self->OnHeader();
                             });
  }

  void OnHeader() {
    status_ = parser_.get().result_int();
    if (status_ == 200) {
      beast::get_lowest_layer(*stream_).expires_never();
      const auto type = parser_.get()[bhttp::field::content_type];
      out_ = responder_->StartStream(200, type.empty() ? "text/plain" : std::string(type));
      std::weak_ptr<ProxiedGet> weak = shared_from_this();
      out_->OnClosed([weak, strand = strand_] {
        net::post(strand, [weak] {
          if (auto self = weak.lock()) self->Close();
        });
      });
    }
    ReadBody();
  }

  void ReadBody() {
    if (closed_) return;
    if (parser_.is_done()) return Finish();
    if (out_ && out_->buffered_bytes() > kMaxBuffered) {
      pace_.expires_after(std::chrono::milliseconds(20));
      pace_.async_wait([self = shared_from_this()](beast::error_code) { self->ReadBody(); });
      return;
    }
    parser_.get().body().data = chunk_;
    parser_.get().body().size = sizeof(chunk_);
    bhttp::async_read_some(
        *stream_, buffer_, parser_,
        [self = shared_from_this()](beast::error_code error, size_t) { self->OnBody(error); });
  }

  void OnBody(beast::error_code error) {
    if (error == bhttp::error::need_buffer) error = {};
    const size_t got = sizeof(chunk_) - parser_.get().body().size;
    if (got > 0) {
      if (out_) {
        if (!out_->Write(std::string(chunk_, got))) return Close();
      } else if (error_body_.size() < kMaxErrorBody) {
        error_body_.append(chunk_, std::min(got, kMaxErrorBody - error_body_.size()));
      }
    }
    if (error) {
      if (!out_ && status_ != 200) return Finish();  // show what arrived of the error
      return Close();
    }
    ReadBody();
  }

  void Finish() {
    if (!out_) SendStatus(*responder_, KubeletError(status_, std::move(error_body_), address_));
    Close();
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    pace_.cancel();
    if (out_) out_->Close();
    if (stream_) {
      boost::system::error_code ignored;
      beast::get_lowest_layer(*stream_).socket().close(ignored);
    }
  }

  net::any_io_executor strand_;
  ssl::context& tls_;
  const KubeletClientOptions& options_;
  const std::string host_;
  const uint16_t port_;
  const std::string target_;
  std::string address_;
  std::shared_ptr<http::Responder> responder_;
  std::shared_ptr<proxy::TlsStream> stream_;
  bhttp::request<bhttp::empty_body> request_;
  bhttp::response_parser<bhttp::buffer_body> parser_;
  beast::flat_buffer buffer_;
  net::steady_timer pace_;
  std::shared_ptr<http::ResponseStream> out_;
  std::string error_body_;
  int status_ = 0;
  bool closed_ = false;
  char chunk_[64 * 1024];
};

// One proxied upgrade (exec, attach, port-forward). Lives on its strand; owned by the pending
// asynchronous operations and by the client connection's callbacks until either side closes.
class ProxiedUpgrade : public std::enable_shared_from_this<ProxiedUpgrade> {
 public:
  ProxiedUpgrade(net::any_io_executor strand, ssl::context& tls,
                 const KubeletClientOptions& options, std::string host, uint16_t port,
                 std::string method, std::string target, std::vector<http::Header> headers,
                 std::shared_ptr<http::Responder> responder)
      : strand_(std::move(strand)),
        tls_(tls),
        options_(options),
        host_(std::move(host)),
        port_(port),
        method_(std::move(method)),
        target_(std::move(target)),
        headers_(std::move(headers)),
        responder_(std::move(responder)),
        pace_(strand_) {
    address_ = (host_.find(':') != std::string::npos ? "[" + host_ + "]" : host_) + ":" +
               std::to_string(port_);
  }

  void Start() {
    proxy::DialTls(
        strand_, tls_, host_, port_, options_.dial_timeout,
        [self = shared_from_this()](std::string error, std::shared_ptr<proxy::TlsStream> stream) {
          if (!error.empty()) return self->Fail(error);
          self->stream_ = std::move(stream);
          // Small interactive frames (SPDY SYN_STREAMs, keystrokes): no Nagle delay.
          boost::system::error_code ignored;
          beast::get_lowest_layer(*self->stream_)
              .socket()
              .set_option(net::ip::tcp::no_delay(true), ignored);
          self->SendRequest();
        });
  }

 private:
  void Fail(const std::string& cause) {
    const std::string url = "https://" + address_ + target_;
    spdlog::warn("kubelet proxy: upgrade {}: {}", url, cause);
    SendStatus(*responder_, ApiError::Internal("error dialing backend: " + cause));
    Close();
  }

  void SendRequest() {
    request_.method_string(method_);
    request_.target(target_);
    request_.version(11);
    request_.set(bhttp::field::host, address_);
    request_.set(bhttp::field::user_agent, std::string("mk8s-apiserver/") + kVersion);
    for (const auto& header : headers_) {
      const std::string& n = header.name;
      if (n == "upgrade" || n == "connection" || n == "x-stream-protocol-version" ||
          n.rfind("sec-websocket-", 0) == 0) {
        request_.insert(n, header.value);
      }
    }
    beast::get_lowest_layer(*stream_).expires_after(options_.response_timeout);
    bhttp::async_write(
        *stream_, request_, [self = shared_from_this()](beast::error_code error, size_t) {
          if (error) return self->Fail("write: " + error.message());
          self->parser_.body_limit(kMaxErrorBody);
          bhttp::async_read(*self->stream_, self->buffer_, self->parser_,
                            [self](beast::error_code error, size_t) { self->OnResponse(error); });
        });
  }

  void OnResponse(beast::error_code error) {
    if (error && !parser_.is_header_done()) return Fail("reading the response: " + error.message());
    const auto& response = parser_.get();
    if (response.result_int() != 101) {
      SendStatus(*responder_, KubeletError(response.result_int(), response.body(), address_));
      return Close();
    }
    beast::get_lowest_layer(*stream_).expires_never();
    std::vector<http::Header> reply;
    for (const auto& field : response) {
      std::string name(field.name_string());
      for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      if (name == "content-length" || name == "date") continue;
      reply.push_back(http::Header{name, std::string(field.value())});
    }
    client_ = responder_->Upgrade(std::move(reply));
    if (client_ == nullptr) return Close();
    if (buffer_.size() > 0) {  // bytes the kubelet sent right behind its 101
      const auto data = buffer_.data();
      client_->Write(std::string(static_cast<const char*>(data.data()), data.size()));
      buffer_.consume(buffer_.size());
    }
    std::weak_ptr<ProxiedUpgrade> weak = shared_from_this();
    client_->Start(
        [weak, strand = strand_](std::string_view bytes) {
          net::post(strand, [weak, bytes = std::string(bytes)]() mutable {
            if (auto self = weak.lock()) self->ToKubelet(std::move(bytes));
          });
        },
        [self = shared_from_this(), strand = strand_] {
          net::post(strand, [self] { self->Close(); });
        });
    ReadKubelet();
  }

  void ToKubelet(std::string bytes) {
    if (closed_) return;
    outbox_.push_back(std::move(bytes));
    if (!writing_) WriteKubelet();
  }

  void WriteKubelet() {
    if (closed_ || outbox_.empty()) return;
    writing_ = true;
    auto chunk = std::make_shared<std::string>(std::move(outbox_.front()));
    outbox_.pop_front();
    net::async_write(*stream_, net::buffer(*chunk),
                     [self = shared_from_this(), chunk](beast::error_code error, size_t) {
                       self->writing_ = false;
                       if (error) return self->Close();
                       self->WriteKubelet();
                     });
  }

  void ReadKubelet() {
    if (closed_) return;
    if (client_->buffered_bytes() > kMaxBuffered) {
      pace_.expires_after(std::chrono::milliseconds(5));
      pace_.async_wait([self = shared_from_this()](beast::error_code) { self->ReadKubelet(); });
      return;
    }
    stream_->async_read_some(net::buffer(chunk_),
                             [self = shared_from_this()](beast::error_code error, size_t n) {
                               if (n > 0 && !self->client_->Write(std::string(self->chunk_, n)))
                                 return self->Close();
                               if (error) return self->Close();
                               self->ReadKubelet();
                             });
  }

  void Close() {
    if (closed_) return;
    closed_ = true;
    pace_.cancel();
    if (client_) client_->Close();
    if (stream_) {
      boost::system::error_code ignored;
      beast::get_lowest_layer(*stream_).socket().close(ignored);
    }
  }

  net::any_io_executor strand_;
  ssl::context& tls_;
  const KubeletClientOptions& options_;
  const std::string host_;
  const uint16_t port_;
  const std::string method_;
  const std::string target_;
  const std::vector<http::Header> headers_;
  std::string address_;
  std::shared_ptr<http::Responder> responder_;
  std::shared_ptr<proxy::TlsStream> stream_;
  std::shared_ptr<http::UpgradedConnection> client_;
  bhttp::request<bhttp::empty_body> request_;
  bhttp::response_parser<bhttp::string_body> parser_;
  beast::flat_buffer buffer_;
  net::steady_timer pace_;
  std::deque<std::string> outbox_;
  bool writing_ = false;
  bool closed_ = false;
  char chunk_[64 * 1024];
};

class KubeletClientImpl final : public KubeletClient {
 public:
  explicit KubeletClientImpl(const KubeletClientOptions& options)
      : options_(options), tls_(ssl::context::tls_client), work_(net::make_work_guard(io_)) {}
  ~KubeletClientImpl() override { Stop(); }

  Status Init() {
    try {
      tls_.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 |
                       ssl::context::no_sslv3 | ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1);
      tls_.add_certificate_authority(net::buffer(options_.ca_pem));
    } catch (const boost::system::system_error& error) {
      return Status(Code::kInvalidArgument,
                    std::string("the kubelets' CA certificate: ") + error.what());
    }
    auto identity = pki::TlsIdentitySlot::Create(options_.client_cert_pem, options_.client_key_pem);
    if (identity.ok()) identity_ = std::move(*identity);
    Status installed = identity.ok() ? identity_->Install(tls_.native_handle()) : identity.status();
    if (!installed.ok()) {
      return Status(Code::kInvalidArgument,
                    "the API server's kubelet client certificate: " + installed.message());
    }
    thread_ = std::thread([this] { io_.run(); });
    return Status::Ok();
  }

  void StreamGet(const std::string& host, uint16_t port, const std::string& target,
                 std::shared_ptr<http::Responder> responder) override {
    auto strand = net::make_strand(io_);
    auto call = std::make_shared<ProxiedGet>(strand, tls_, options_, host, port, target,
                                             std::move(responder));
    net::post(strand, [call] { call->Start(); });
  }

  void ProxyUpgrade(const std::string& host, uint16_t port, const std::string& method,
                    const std::string& target, const std::vector<http::Header>& headers,
                    std::shared_ptr<http::Responder> responder) override {
    auto strand = net::make_strand(io_);
    auto call = std::make_shared<ProxiedUpgrade>(strand, tls_, options_, host, port, method, target,
                                                 headers, std::move(responder));
    net::post(strand, [call] { call->Start(); });
  }

  Status ReplaceClientCertificate(const std::string& cert_pem,
                                  const std::string& key_pem) override {
    return identity_->Replace(cert_pem, key_pem);
  }

  void Stop() override {
    std::lock_guard lock(stop_mu_);
    if (stopped_) return;
    stopped_ = true;
    work_.reset();
    io_.stop();  // pending calls are destroyed with the io_context: their responses end
    if (thread_.joinable()) thread_.join();
  }

 private:
  const KubeletClientOptions options_;
  std::unique_ptr<pki::TlsIdentitySlot> identity_;  // installed in tls_, so declared before it
  ssl::context tls_;  // outlives io_: calls still pending when io_ is destroyed use it
  net::io_context io_;
  net::executor_work_guard<net::io_context::executor_type> work_;
  std::thread thread_;
  std::mutex stop_mu_;
  bool stopped_ = false;  // GUARDED_BY(stop_mu_)
};

}  // namespace

Result<std::unique_ptr<KubeletClient>> KubeletClient::Create(const KubeletClientOptions& options) {
  auto client = std::make_unique<KubeletClientImpl>(options);
  if (Status status = client->Init(); !status.ok()) return status;
  return std::unique_ptr<KubeletClient>(std::move(client));
}

}  // namespace mk8s::apiserver
