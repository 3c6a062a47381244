#include "tls_setup.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace mk8s::bench {
namespace {

// Loads every certificate in the chain and the key into `ctx`; false on a parse error.
bool UseIdentity(SSL_CTX* ctx, const TlsConfig& config) {
  BIO* certs = BIO_new_mem_buf(config.cert_pem.data(), static_cast<int>(config.cert_pem.size()));
  X509* leaf = PEM_read_bio_X509(certs, nullptr, nullptr, nullptr);
  bool ok = leaf != nullptr && SSL_CTX_use_certificate(ctx, leaf) == 1;
  X509_free(leaf);
  while (ok) {
    X509* extra = PEM_read_bio_X509(certs, nullptr, nullptr, nullptr);
    if (extra == nullptr) break;
    ok = SSL_CTX_add_extra_chain_cert(ctx, extra) == 1;  // takes ownership on success
    if (!ok) X509_free(extra);
  }
  BIO_free(certs);
  BIO* key_bio = BIO_new_mem_buf(config.key_pem.data(), static_cast<int>(config.key_pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(key_bio, nullptr, nullptr, nullptr);
  BIO_free(key_bio);
  ok = ok && key != nullptr && SSL_CTX_use_PrivateKey(ctx, key) == 1;
  EVP_PKEY_free(key);
  ERR_clear_error();  // the end of the PEM chain
  return ok;
}

bool TrustCa(SSL_CTX* ctx, const std::string& ca_pem) {
  BIO* bio = BIO_new_mem_buf(ca_pem.data(), static_cast<int>(ca_pem.size()));
  X509_STORE* store = SSL_CTX_get_cert_store(ctx);
  int added = 0;
  while (X509* ca = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr)) {
    added += X509_STORE_add_cert(store, ca) == 1;
    X509_free(ca);
  }
  BIO_free(bio);
  ERR_clear_error();  // the end of the PEM text
  return added > 0;
}

}  // namespace

SSL_CTX* NewClientContext(const TlsConfig& config, std::string* error) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  if (ctx == nullptr || !TrustCa(ctx, config.ca_pem) || !UseIdentity(ctx, config)) {
    if (ctx != nullptr) SSL_CTX_free(ctx);
    *error = "TLS setup: bad CA, client certificate or key";
    return nullptr;
  }
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  SSL_CTX_set_read_ahead(ctx, 1);
  return ctx;
}

int ConnectLoopback(int port, std::chrono::milliseconds timeout, std::string* error) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *error = std::string("socket: ") + std::strerror(errno);
    return -1;
  }
  const auto ms = timeout.count();
  timeval limit{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof(limit));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof(limit));
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
    *error = std::string("connect: ") + std::strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

std::string LastTlsError() {
  const int saved_errno = errno;
  const unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return saved_errno != 0 ? std::strerror(saved_errno) : "connection closed";
  char text[256];
  ERR_error_string_n(code, text, sizeof(text));
  return text;
}

}  // namespace mk8s::bench
