#include "apiserver/proxy/tls_dial.h"

#include <openssl/ssl.h>

#include <boost/asio/ssl/host_name_verification.hpp>

namespace mk8s::apiserver::proxy {
namespace {

namespace beast = boost::beast;
namespace net = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = net::ip::tcp;

bool IsIpLiteral(const std::string& host) {
  boost::system::error_code error;
  net::ip::make_address(host, error);
  return !error;
}

struct Dial : std::enable_shared_from_this<Dial> {
  Dial(net::any_io_executor executor, ssl::context& tls, std::string host_in, uint16_t port_in,
       std::chrono::milliseconds deadline_in, DialCallback done_in)
      : resolver(executor),
        stream(std::make_shared<TlsStream>(executor, tls)),
        host(std::move(host_in)),
        port(port_in),
        deadline(deadline_in),
        done(std::move(done_in)) {}

  std::string Address() const {
    return (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" +
           std::to_string(port);
  }

  void Fail(const std::string& what, const boost::system::error_code& error) {
    std::string reason = error == beast::error::timeout ? "i/o timeout" : error.message();
    // Lower-case like Go's messages ("connection refused").
    if (!reason.empty())
      reason[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(reason[0])));
    done("dial tcp " + Address() + ": " + what + ": " + reason, nullptr);
  }

  void Start() {
    beast::get_lowest_layer(*stream).expires_after(deadline);
    if (IsIpLiteral(host)) {
      tcp::endpoint endpoint(net::ip::make_address(host), port);
      return Connect(tcp::resolver::results_type::create(endpoint, host, std::to_string(port)));
    }
    resolver.async_resolve(host, std::to_string(port),
                           [self = shared_from_this()](boost::system::error_code error,
                                                       tcp::resolver::results_type results) {
                             if (error) return self->Fail("lookup " + self->host, error);
                             self->Connect(std::move(results));
                           });
  }

  void Connect(tcp::resolver::results_type results) {
    beast::get_lowest_layer(*stream).async_connect(
        results,
        [self = shared_from_this()](boost::system::error_code error, const tcp::endpoint&) {
          if (error) return self->Fail("connect", error);
          self->Handshake();
        });
  }

  void Handshake() {
    SSL* native = stream->native_handle();
    if (!IsIpLiteral(host)) SSL_set_tlsext_host_name(native, host.c_str());
    stream->set_verify_mode(ssl::verify_peer);
    stream->set_verify_callback(ssl::host_name_verification(host));
    stream->async_handshake(ssl::stream_base::client,
                            [self = shared_from_this()](boost::system::error_code error) {
                              if (error) return self->Fail("tls handshake", error);
                              beast::get_lowest_layer(*self->stream).expires_never();
                              self->done("", self->stream);
                            });
  }

  tcp::resolver resolver;
  std::shared_ptr<TlsStream> stream;
  const std::string host;
  const uint16_t port;
  const std::chrono::milliseconds deadline;
  DialCallback done;
};

}  // namespace

void DialTls(net::any_io_executor executor, ssl::context& tls, const std::string& host,
             uint16_t port, std::chrono::milliseconds deadline, DialCallback done) {
  std::make_shared<Dial>(std::move(executor), tls, host, port, deadline, std::move(done))->Start();
}

}  // namespace mk8s::apiserver::proxy
