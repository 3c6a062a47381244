// HttpsTransport: the client transport to a remote API server (worker nodes, components run with
// --server=https://...). HTTP/1.1 over TLS with keep-alive connection reuse; client certificate
// and/or bearer token; the server certificate is verified against the given CA and host name.
//
// Threads: one I/O thread per transport (an epoll loop over non-blocking TLS sockets) runs every
// socket operation and every callback (so callbacks must be cheap, as Transport says). Requests
// reuse idle connections (at most `max_idle_connections` kept); a request that fails on a reused
// connection before any byte of the answer arrived is sent once more on a fresh one. Each watch
// has a connection of its own. `request_timeout` bounds connecting plus one request's exchange
// (for a watch: until the response head). Response bodies are capped at 512 MiB.
// Lifetime: the destructor aborts open requests and watches (their callbacks see status 0) and
// joins the I/O thread. OpenSSL stays in https_transport.cc and tls_client_socket.cc.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "client/transport.h"
#include "common/status.h"

namespace mk8s::client {

struct HttpsConfig {
  std::string server;          // "https://host:port"
  std::string ca_pem;          // the cluster CA; empty = the system trust store
  std::string client_cert_pem; // optional client certificate (with its key)
  std::string client_key_pem;
  std::string bearer_token;    // optional "Authorization: Bearer" token
  bool insecure_skip_verify = false;
  std::chrono::seconds request_timeout{60};  // non-streaming requests
  int max_idle_connections = 4;
};

// Reads the current context of a kubeconfig file (inline *-data fields, file paths, token).
Result<HttpsConfig> LoadKubeconfig(const std::string& path);

class HttpsTransport : public Transport {
 public:
  static Result<std::shared_ptr<HttpsTransport>> Create(HttpsConfig config);
  ~HttpsTransport() override;

  void Send(Request request, ResponseCallback done) override;
  std::shared_ptr<StreamHandle> Stream(Request request, StreamCallbacks callbacks) override;
  std::string Describe() const override;

  class Impl;

 private:
  explicit HttpsTransport(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mk8s::client
