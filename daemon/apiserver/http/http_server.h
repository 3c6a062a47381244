// The HTTPS transport: TLS (OpenSSL driven by hand over Asio sockets, HTTP/1.1 only, ALPN
// "http/1.1") with Beast's request parser, keep-alive, chunked streaming, a request body cap,
// optional client certificates checked against the CA. Beast/Asio stay inside http/*.cc.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "apiserver/http/http_types.h"
#include "common/status.h"

namespace mk8s::apiserver::http {

struct ServerOptions {
  std::string bind_address = "0.0.0.0";
  uint16_t port = 16443;               // 0 = pick a free port (see HttpServer::port())
  std::string cert_pem;                // serving certificate (chain)
  std::string key_pem;                 // its private key
  std::string client_ca_pem;           // CA for client certificates; empty = none accepted
  size_t max_body_bytes = 3 << 20;     // larger bodies get 413
  int threads = 2;                     // transport threads
  size_t max_stream_backlog_bytes = 32 << 20;  // a stream whose client lags more is closed
  // A TCP socket already bound and listening, served instead of binding bind_address:port (a
  // port reserved before the server could start). Start takes ownership, also when it fails.
  int listening_fd = -1;
};

class HttpServer {
 public:
  // Binds and starts serving on `options.threads` threads. `handler` must outlive the server.
  static Result<std::unique_ptr<HttpServer>> Start(const ServerOptions& options, Handler handler);
  virtual ~HttpServer() = default;
  virtual uint16_t port() const = 0;
  // Serves `chain_pem` (leaf first) and `key_pem` from the next handshake on; open connections
  // keep theirs. A bad pair (unparsable, key not the leaf's) changes nothing. Thread-safe.
  virtual Status ReplaceCertificate(const std::string& chain_pem, const std::string& key_pem) = 0;
  // Stops accepting, closes every connection and joins the threads. Idempotent.
  virtual void Stop() = 0;
};

}  // namespace mk8s::apiserver::http
