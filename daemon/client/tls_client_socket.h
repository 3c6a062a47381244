// TlsClientSocket: one non-blocking TCP connection with an OpenSSL client session on it, driven
// by hand (no Asio): the owner's event loop calls the steps again whenever the socket reports
// readiness. TLS reads and writes go straight to the socket through a BIO of our own (recv/send
// with MSG_NOSIGNAL, so a peer's reset never raises SIGPIPE); the server certificate and host
// name (DNS name or IP literal) are verified by OpenSSL during the handshake.
//
// Internal to the client library (used by https_transport.cc only). Not thread-safe: one
// thread (the transport's I/O thread) uses a socket.
#pragma once

#include <sys/socket.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include <openssl/ssl.h>

#include "client/https_transport.h"
#include "common/status.h"

namespace mk8s::client::tls {

// Where the API server is: host (without IPv6 brackets) and port, from "https://host[:port]".
struct ServerAddress {
  std::string host;
  std::string port;
  bool ip_literal = false;
  std::string HostHeader() const;  // "host:port", "[v6]:port"
};
Result<ServerAddress> ParseServerUrl(const std::string& url);

// One resolved socket address.
struct SocketAddress {
  sockaddr_storage storage{};
  socklen_t length = 0;
};
// The addresses of host:port: an IP literal without a lookup, else getaddrinfo (blocking: call it
// off the I/O thread).
Result<std::vector<SocketAddress>> Resolve(const ServerAddress& server);

// An SSL_CTX for `config` (TLS 1.2 floor, the CA or the system trust store, peer verification
// unless insecure_skip_verify, the client certificate and key). The caller owns it (SSL_CTX_free).
Result<SSL_CTX*> NewClientContext(const HttpsConfig& config);

class TlsClientSocket {
 public:
  enum class Io { kDone, kWant, kEof, kError };

  TlsClientSocket() = default;
  ~TlsClientSocket() { Close(); }
  TlsClientSocket(const TlsClientSocket&) = delete;
  TlsClientSocket& operator=(const TlsClientSocket&) = delete;

  int fd() const { return fd_; }
  const std::string& error() const { return error_; }

  // A new non-blocking socket connecting to `address` (kWant: wait for writability, then call
  // FinishConnect). The previous socket, if any, is closed first.
  Io StartConnect(const SocketAddress& address);
  Io FinishConnect();
  // Creates the TLS session (SNI and host verification for `server`) and drives the handshake;
  // call again on readiness while it answers kWant.
  Io Handshake(SSL_CTX* ctx, const ServerAddress& server, bool verify);
  // Writes data; *written says how much went (kWant: the rest later, with the same remainder).
  Io Write(std::string_view data, size_t* written);
  // Reads decrypted bytes: kDone with *got > 0, kWant (nothing now), kEof (orderly end).
  Io Read(char* buffer, size_t size, size_t* got);
  // Whether OpenSSL holds received bytes not yet returned by Read (read-ahead): then the socket
  // will not report them again.
  bool HasPending() const { return ssl_ != nullptr && SSL_has_pending(ssl_) == 1; }
  void Close();

 private:
  Io SslResult(int ret, const char* what);

  int fd_ = -1;
  SSL* ssl_ = nullptr;
  std::string error_;
};

}  // namespace mk8s::client::tls
