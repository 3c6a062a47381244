// INTERNAL to daemon/apiserver/proxy (includes Boost.Beast; never include it from a public
// header): a TLS connection to a kubelet with a deadline. Shared by the log proxy and, later,
// exec/attach/port-forward.
#pragma once

#include <utility>  // before Asio: Boost 1.74 needs std::exchange declared

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace mk8s::apiserver::proxy {

using TlsStream = boost::beast::ssl_stream<boost::beast::tcp_stream>;

// Called once, on `executor`: `error` is empty on success (then `stream` is connected and the
// handshake is done, with the stream's timer cleared), else a Go-style description such as
// "dial tcp 10.0.0.5:10250: connect: connection refused".
using DialCallback = std::function<void(std::string error, std::shared_ptr<TlsStream> stream)>;

// Connects to host:port (an IP or a name), then performs the TLS handshake with `tls` (whose
// client certificate and CA it uses), verifying that the server certificate names `host`.
// The whole dial, handshake included, must finish within `deadline`.
void DialTls(boost::asio::any_io_executor executor, boost::asio::ssl::context& tls,
             const std::string& host, uint16_t port, std::chrono::milliseconds deadline,
             DialCallback done);

}  // namespace mk8s::apiserver::proxy
