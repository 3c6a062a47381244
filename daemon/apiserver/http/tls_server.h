// TLS for the HTTPS transport: the server context (TLS 1.2+, serving certificate, optional client
// certificates against the cluster CA, ALPN "http/1.1" only) and the peer identity read from a
// verified client certificate. Internal to http/ (includes Asio's SSL headers).
#pragma once

#include <openssl/ssl.h>

#include <boost/asio/ssl/context.hpp>

#include "apiserver/http/http_server.h"

namespace mk8s::apiserver::http {

// Sets up `tls` from `options` (cert_pem, key_pem, client_ca_pem). A client certificate is asked
// for but not required (tokens are another way in); its verdict is read after the handshake.
// Throws boost::system::system_error on bad PEM.
void ConfigureServerTls(boost::asio::ssl::context& tls, const ServerOptions& options);

// The verified client certificate's CN (user) and O (groups), if any. Call after the handshake.
PeerCertificate ReadPeer(SSL* ssl);

}  // namespace mk8s::apiserver::http
