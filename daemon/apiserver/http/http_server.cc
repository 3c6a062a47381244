// The HTTPS server: accepts connections and runs them on `threads` transport threads (one
// io_context); each connection (Session, session.h) lives on its own strand, so a connection's
// state is only touched on its strand. Handlers may answer from any thread: an answer given on
// the connection's strand (a handler answering at once) is written right away, others are
// posted onto the strand. Streamed responses (watches) leave the session once their head is due:
// TlsResponseStream writes them straight to the socket (tls_response_stream.h), with Session as
// its StreamSocket.
#include "apiserver/http/http_server.h"

#include <pthread.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio.hpp>
#include <boost/asio/ssl/context.hpp>
#include <mutex>
#include <thread>
#include <utility>

#include "apiserver/http/session.h"
#include "apiserver/http/tls_response_stream.h"
#include "apiserver/http/tls_server.h"
#include "apiserver/http/wire.h"
#include "pki/tls_identity.h"

namespace mk8s::apiserver::http {
namespace {

namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;

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
    if (session_->OnStrand()) return session_->Reply(std::move(response));
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

}  // namespace

std::shared_ptr<Responder> MakeResponder(std::shared_ptr<Session> session, size_t max_backlog) {
  return std::make_shared<ResponderImpl>(std::move(session), max_backlog);
}

namespace {

class HttpServerImpl final : public HttpServer {
 public:
  HttpServerImpl(const ServerOptions& options, Handler handler)
      : options_(options), handler_(std::move(handler)), tls_(ssl::context::tls_server),
        acceptor_(io_), unadopted_fd_(options.listening_fd) {}
  ~HttpServerImpl() override {
    Stop();
    if (unadopted_fd_ >= 0) ::close(unadopted_fd_);  // Start failed before taking it
  }

  Status Start() {
    try {
      ConfigureServerTls(tls_, options_);
      auto identity = pki::TlsIdentitySlot::Create(options_.cert_pem, options_.key_pem);
      if (!identity.ok()) return identity.status();
      identity_ = std::move(*identity);
      if (Status installed = identity_->Install(tls_.native_handle()); !installed.ok()) {
        return installed;
      }

      if (unadopted_fd_ >= 0) {
        AdoptListeningSocket();
      } else {
        tcp::endpoint endpoint(net::ip::make_address(options_.bind_address), options_.port);
        acceptor_.open(endpoint.protocol());
        acceptor_.set_option(net::socket_base::reuse_address(true));
        acceptor_.bind(endpoint);
        acceptor_.listen(net::socket_base::max_listen_connections);
      }
      port_ = acceptor_.local_endpoint().port();
    } catch (const boost::system::system_error& error) {
      return Status(Code::kUnavailable, "cannot serve HTTPS on " + options_.bind_address + ":" +
                                            std::to_string(options_.port) + ": " +
                                            error.code().message());
    }
    Accept();
    for (int i = 0; i < std::max(1, options_.threads); ++i) {
      threads_.emplace_back([this] {
        // An exception escaping a completion handler must not end the thread (and the daemon):
        // it is logged and the loop goes on.
        while (true) {
          try {
            io_.run();
            return;
          } catch (const std::exception& error) {
            spdlog::error("http: a transport handler failed: {}", error.what());
          }
        }
      });
      pthread_setname_np(threads_.back().native_handle(), ("http-" + std::to_string(i)).c_str());
    }
    return Status::Ok();
  }

  uint16_t port() const override { return port_; }

  // Serves options_.listening_fd, which the acceptor owns from here on (closed here when it
  // cannot take it). Throws boost::system::system_error as the bind path does.
  void AdoptListeningSocket() {
    const int fd = std::exchange(unadopted_fd_, -1);
    sockaddr_storage address{};
    socklen_t length = sizeof(address);
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
      const int error = errno;
      ::close(fd);
      throw boost::system::system_error(error, boost::system::system_category());
    }
    boost::system::error_code error;
    acceptor_.assign(address.ss_family == AF_INET6 ? tcp::v6() : tcp::v4(), fd, error);
    if (error) {
      ::close(fd);
      throw boost::system::system_error(error);
    }
    // As the bind path: a restart may bind the port while old connections sit in TIME_WAIT.
    acceptor_.set_option(net::socket_base::reuse_address(true));
  }

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
    acceptor_.async_accept(net::make_strand(io_),
                           [this](boost::system::error_code ec, StrandSocket socket) {
                             if (ec == net::error::operation_aborted) return;
                             if (!ec) {
                               boost::system::error_code ignored;
                               socket.set_option(tcp::no_delay(true), ignored);
                               std::make_shared<Session>(std::move(socket), tls_.native_handle(),
                                                         options_, handler_)
                                   ->Run();
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
  int unadopted_fd_;  // options_.listening_fd until the acceptor owns it; then -1
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
