#include "client/tls_client_socket.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <functional>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

namespace mk8s::client::tls {
namespace {

// A BIO over the socket fd kept in the BIO's data: recv/send with MSG_NOSIGNAL, retry flags on
// EAGAIN. Created once; thread-safe.
BIO_METHOD* SocketBioMethod() {
  static BIO_METHOD* const method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "mk8s-client-socket");
    BIO_meth_set_create(m, [](BIO* bio) -> int {
      BIO_set_init(bio, 1);
      return 1;
    });
    BIO_meth_set_ctrl(m, [](BIO*, int command, long, void*) -> long {
      return command == BIO_CTRL_FLUSH ? 1 : 0;
    });
    BIO_meth_set_read(m, [](BIO* bio, char* data, int length) -> int {
      const int fd = static_cast<int>(reinterpret_cast<intptr_t>(BIO_get_data(bio)));
      BIO_clear_retry_flags(bio);
      const ssize_t n = ::recv(fd, data, static_cast<size_t>(length), 0);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        BIO_set_retry_read(bio);
      }
      return static_cast<int>(n);
    });
    BIO_meth_set_write(m, [](BIO* bio, const char* data, int length) -> int {
      const int fd = static_cast<int>(reinterpret_cast<intptr_t>(BIO_get_data(bio)));
      BIO_clear_retry_flags(bio);
      const ssize_t n = ::send(fd, data, static_cast<size_t>(length), MSG_NOSIGNAL);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        BIO_set_retry_write(bio);
      }
      return static_cast<int>(n);
    });
    return m;
  }();
  return method;
}

std::string OpenSslError() {
  std::string out;
  while (unsigned long code = ERR_get_error()) {
    char text[256];
    ERR_error_string_n(code, text, sizeof text);
    if (!out.empty()) out += "; ";
    out += text;
  }
  return out.empty() ? "unknown TLS error" : out;
}

// Adds every certificate of a PEM text: to the trust store, or as the client chain.
Status LoadPemCertificates(const std::string& pem, const std::function<bool(X509*)>& use) {
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  int count = 0;
  while (X509* cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    const bool ok = use(cert);
    X509_free(cert);
    if (!ok) {
      BIO_free(bio);
      return Status(Code::kInvalidArgument, OpenSslError());
    }
    ++count;
  }
  BIO_free(bio);
  ERR_clear_error();  // the end of the PEM text reads as an error
  if (count == 0) return Status(Code::kInvalidArgument, "no PEM certificate found");
  return Status::Ok();
}

}  // namespace

std::string ServerAddress::HostHeader() const {
  if (host.find(':') != std::string::npos) return "[" + host + "]:" + port;
  return host + ":" + port;
}

Result<ServerAddress> ParseServerUrl(const std::string& url) {
  if (url.rfind("https://", 0) != 0) {
    return Status(Code::kInvalidArgument, "the API server URL must start with https://: " + url);
  }
  std::string rest = url.substr(8);
  if (size_t slash = rest.find('/'); slash != std::string::npos) rest = rest.substr(0, slash);
  ServerAddress out;
  if (!rest.empty() && rest[0] == '[') {  // [v6]:port
    const size_t close = rest.find(']');
    if (close == std::string::npos) return Status(Code::kInvalidArgument, "bad server URL: " + url);
    out.host = rest.substr(1, close - 1);
    out.port = close + 2 <= rest.size() ? rest.substr(close + 2) : "";
  } else if (size_t colon = rest.rfind(':'); colon != std::string::npos) {
    out.host = rest.substr(0, colon);
    out.port = rest.substr(colon + 1);
  } else {
    out.host = rest;
  }
  if (out.port.empty()) out.port = "443";
  if (out.host.empty()) return Status(Code::kInvalidArgument, "bad server URL: " + url);
  in6_addr v6;
  in_addr v4;
  out.ip_literal = inet_pton(AF_INET, out.host.c_str(), &v4) == 1 ||
                   inet_pton(AF_INET6, out.host.c_str(), &v6) == 1;
  return out;
}

Result<std::vector<SocketAddress>> Resolve(const ServerAddress& server) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = server.ip_literal ? AI_NUMERICHOST | AI_NUMERICSERV : AI_ADDRCONFIG;
  addrinfo* list = nullptr;
  const int rc = getaddrinfo(server.host.c_str(), server.port.c_str(), &hints, &list);
  if (rc != 0) {
    return Status(Code::kUnavailable, "cannot resolve " + server.host + ": " + gai_strerror(rc));
  }
  std::vector<SocketAddress> out;
  for (addrinfo* entry = list; entry != nullptr; entry = entry->ai_next) {
    if (entry->ai_addrlen > sizeof(sockaddr_storage)) continue;
    SocketAddress address;
    std::memcpy(&address.storage, entry->ai_addr, entry->ai_addrlen);
    address.length = entry->ai_addrlen;
    out.push_back(address);
  }
  freeaddrinfo(list);
  if (out.empty()) return Status(Code::kUnavailable, "cannot resolve " + server.host);
  return out;
}

Result<SSL_CTX*> NewClientContext(const HttpsConfig& config) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr) return Status(Code::kInternal, "cannot create a TLS context: " + OpenSslError());
  auto fail = [&](const std::string& message) -> Result<SSL_CTX*> {
    SSL_CTX_free(ctx);
    return Status(Code::kInvalidArgument, message);
  };
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  // Whole records (and what follows) in one recv instead of a header read and a body read.
  SSL_CTX_set_read_ahead(ctx, 1);
  if (config.insecure_skip_verify) {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);
  } else {
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
    if (config.ca_pem.empty()) {
      if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
        return fail("cannot use the system trust store: " + OpenSslError());
      }
    } else {
      X509_STORE* store = SSL_CTX_get_cert_store(ctx);
      Status loaded = LoadPemCertificates(
          config.ca_pem, [&](X509* cert) { return X509_STORE_add_cert(store, cert) == 1; });
      if (!loaded.ok()) return fail("cannot use the CA certificate: " + loaded.message());
    }
  }
  if (!config.client_cert_pem.empty()) {
    bool first = true;
    Status loaded = LoadPemCertificates(config.client_cert_pem, [&](X509* cert) {
      if (first) {
        first = false;
        return SSL_CTX_use_certificate(ctx, cert) == 1;
      }
      return SSL_CTX_add1_chain_cert(ctx, cert) == 1;
    });
    if (!loaded.ok()) return fail("cannot use the client certificate: " + loaded.message());
    BIO* bio = BIO_new_mem_buf(config.client_key_pem.data(),
                               static_cast<int>(config.client_key_pem.size()));
    EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
    BIO_free(bio);
    const bool ok = key != nullptr && SSL_CTX_use_PrivateKey(ctx, key) == 1 &&
                    SSL_CTX_check_private_key(ctx) == 1;
    EVP_PKEY_free(key);
    if (!ok) return fail("cannot use the client certificate's key: " + OpenSslError());
  }
  return ctx;
}

TlsClientSocket::Io TlsClientSocket::StartConnect(const SocketAddress& address) {
  Close();
  error_.clear();
  fd_ = ::socket(address.storage.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd_ < 0) {
    error_ = std::string("socket: ") + std::strerror(errno);
    return Io::kError;
  }
  const int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address.storage), address.length) == 0) {
    return Io::kDone;
  }
  if (errno == EINPROGRESS || errno == EINTR) return Io::kWant;
  error_ = std::strerror(errno);
  return Io::kError;
}

TlsClientSocket::Io TlsClientSocket::FinishConnect() {
  int error = 0;
  socklen_t length = sizeof error;
  if (::getsockopt(fd_, SOL_SOCKET, SO_ERROR, &error, &length) != 0) error = errno;
  if (error == 0) {
    // Still in progress (a spurious wake-up) if the peer is not known yet.
    sockaddr_storage peer;
    socklen_t peer_length = sizeof peer;
    if (::getpeername(fd_, reinterpret_cast<sockaddr*>(&peer), &peer_length) != 0) {
      return errno == ENOTCONN ? Io::kWant : Io::kError;
    }
    return Io::kDone;
  }
  if (error == EINPROGRESS || error == EALREADY) return Io::kWant;
  error_ = std::strerror(error);
  return Io::kError;
}

TlsClientSocket::Io TlsClientSocket::Handshake(SSL_CTX* ctx, const ServerAddress& server,
                                               bool verify) {
  if (ssl_ == nullptr) {
    ssl_ = SSL_new(ctx);
    if (ssl_ == nullptr) {
      error_ = OpenSslError();
      return Io::kError;
    }
    BIO* bio = BIO_new(SocketBioMethod());
    BIO_set_data(bio, reinterpret_cast<void*>(static_cast<intptr_t>(fd_)));
    SSL_set_bio(ssl_, bio, bio);
    if (!server.ip_literal) SSL_set_tlsext_host_name(ssl_, server.host.c_str());
    if (verify) {
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl_);
      const int set = server.ip_literal ? X509_VERIFY_PARAM_set1_ip_asc(param, server.host.c_str())
                                        : X509_VERIFY_PARAM_set1_host(param, server.host.c_str(), 0);
      if (set != 1) {
        error_ = "cannot verify the host name " + server.host;
        return Io::kError;
      }
    }
    SSL_set_connect_state(ssl_);
  }
  ERR_clear_error();
  return SslResult(SSL_do_handshake(ssl_), "TLS handshake");
}

TlsClientSocket::Io TlsClientSocket::SslResult(int ret, const char* what) {
  const int code = SSL_get_error(ssl_, ret);
  switch (code) {
    case SSL_ERROR_NONE: return Io::kDone;
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE: return Io::kWant;
    case SSL_ERROR_ZERO_RETURN: return Io::kEof;
    case SSL_ERROR_SYSCALL:
      if (ERR_peek_error() == 0) {
        if (errno == 0 || ret == 0) return Io::kEof;  // closed without close_notify
        error_ = std::string(what) + ": " + std::strerror(errno);
        return Io::kError;
      }
      [[fallthrough]];
    default: {
      const long verify = SSL_get_verify_result(ssl_);
      error_ = std::string(what) + ": " + OpenSslError();
      if (verify != X509_V_OK) {
        error_ += " (certificate: " + std::string(X509_verify_cert_error_string(verify)) + ")";
      }
      return Io::kError;
    }
  }
}

TlsClientSocket::Io TlsClientSocket::Write(std::string_view data, size_t* written) {
  *written = 0;
  if (data.empty()) return Io::kDone;
  ERR_clear_error();
  errno = 0;
  const int ret = SSL_write(ssl_, data.data(), static_cast<int>(std::min<size_t>(data.size(), 1 << 30)));
  if (ret > 0) {
    *written = static_cast<size_t>(ret);
    return *written == data.size() ? Io::kDone : Io::kWant;
  }
  Io io = SslResult(ret, "TLS write");
  if (io == Io::kEof) {
    error_ = "the connection was closed";
    return Io::kError;
  }
  return io;
}

TlsClientSocket::Io TlsClientSocket::Read(char* buffer, size_t size, size_t* got) {
  *got = 0;
  ERR_clear_error();
  errno = 0;
  const int ret = SSL_read(ssl_, buffer, static_cast<int>(size));
  if (ret > 0) {
    *got = static_cast<size_t>(ret);
    return Io::kDone;
  }
  return SslResult(ret, "TLS read");
}

void TlsClientSocket::Close() {
  if (ssl_ != nullptr) {
    SSL_free(ssl_);  // frees the BIO; no close_notify: the owner is done with the connection
    ssl_ = nullptr;
  }
  if (fd_ >= 0) {
    ::close(fd_);
    fd_ = -1;
  }
}

}  // namespace mk8s::client::tls
