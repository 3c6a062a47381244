// Certificates replaced while serving (pki::TlsIdentitySlot behind http::HttpServer): new
// handshakes present the new identity, open connections keep working, bad pairs change nothing,
// and the client side (a TLS client presenting a renewed client certificate) works the same way.
// Also: a server started on a socket reserved before its certificate existed (a worker kubelet).
// Real TLS over loopback, with a plain OpenSSL client written here.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <sys/socket.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <thread>

#include "apiserver/http/http_server.h"
#include "pki/certificates.h"
#include "pki/tls_identity.h"

namespace mk8s::apiserver::http {
namespace {

struct SslCtxFree {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;

// One TLS connection to 127.0.0.1:port (no server verification: the test reads what it got).
class TlsConnection {
 public:
  TlsConnection(SSL_CTX* ctx, uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) return;
    ssl_ = SSL_new(ctx);
    SSL_set_fd(ssl_, fd_);
    connected_ = SSL_connect(ssl_) == 1;
  }
  ~TlsConnection() {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
  }
  bool connected() const { return connected_; }

  // The CN of the certificate the server presented.
  std::string ServerCommonName() const {
    X509* cert = SSL_get1_peer_certificate(ssl_);
    if (cert == nullptr) return "";
    char name[256] = {};
    X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, name, sizeof(name));
    X509_free(cert);
    return name;
  }

  // GET / on this connection; the response body ("" on failure).
  std::string Get() {
    const std::string request = "GET / HTTP/1.1\r\nHost: test\r\n\r\n";
    if (SSL_write(ssl_, request.data(), static_cast<int>(request.size())) <= 0) return "";
    std::string response;
    char buffer[4096];
    while (response.find("\r\n\r\n") == std::string::npos ||
           response.size() < response.find("\r\n\r\n") + 4 + ContentLength(response)) {
      const int n = SSL_read(ssl_, buffer, sizeof(buffer));
      if (n <= 0) return "";
      response.append(buffer, static_cast<size_t>(n));
    }
    if (response.rfind("HTTP/1.1 200", 0) != 0) return "";
    return response.substr(response.find("\r\n\r\n") + 4);
  }

 private:
  static size_t ContentLength(const std::string& response) {
    const size_t at = response.find("Content-Length: ");
    return at == std::string::npos ? 0 : std::stoul(response.substr(at + 16));
  }
  int fd_ = -1;
  SSL* ssl_ = nullptr;
  bool connected_ = false;
};

class TlsIdentityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto ca = pki::CreateCa();
    ASSERT_TRUE(ca.ok()) << ca.status().message();
    ca_ = *ca;
    first_ = Serving("first");
    second_ = Serving("second");
  }

  pki::KeyPair Serving(const std::string& name) {
    pki::ServingCertOptions options;
    options.common_name = name;
    options.ip_addresses = {"127.0.0.1"};
    auto pair = pki::IssueServingCert(ca_, options);
    EXPECT_TRUE(pair.ok()) << pair.status().message();
    return pair.ok() ? *pair : pki::KeyPair{};
  }

  // A server answering every request with the verified client certificate's CN (or "-"); with
  // `listening_fd`, on that socket.
  std::unique_ptr<HttpServer> StartServer(int listening_fd = -1) {
    ServerOptions options;
    options.bind_address = "127.0.0.1";
    options.port = 0;
    options.listening_fd = listening_fd;
    options.cert_pem = first_.cert_pem + ca_.cert_pem;
    options.key_pem = first_.key_pem;
    options.client_ca_pem = ca_.cert_pem;
    options.threads = 1;
    auto server = HttpServer::Start(options, [](Request request,
                                                std::shared_ptr<Responder> responder) {
      const std::string who = request.peer.verified ? request.peer.common_name : "-";
      responder->Send(Response{200, "text/plain", {}, who});
    });
    EXPECT_TRUE(server.ok()) << server.status().message();
    return server.ok() ? std::move(*server) : nullptr;
  }

  static SslCtxPtr ClientContext() { return SslCtxPtr(SSL_CTX_new(TLS_client_method())); }

  pki::KeyPair ca_;
  pki::KeyPair first_;
  pki::KeyPair second_;
};

TEST_F(TlsIdentityTest, NewHandshakesGetTheReplacementAndOpenConnectionsKeepWorking) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  SslCtxPtr client = ClientContext();
  TlsConnection before(client.get(), server->port());
  ASSERT_TRUE(before.connected());
  EXPECT_EQ(before.ServerCommonName(), "first");
  EXPECT_EQ(before.Get(), "-");

  ASSERT_TRUE(server->ReplaceCertificate(second_.cert_pem + ca_.cert_pem, second_.key_pem).ok());
  TlsConnection after(client.get(), server->port());
  ASSERT_TRUE(after.connected());
  EXPECT_EQ(after.ServerCommonName(), "second");
  EXPECT_EQ(after.Get(), "-");
  EXPECT_EQ(before.Get(), "-") << "the connection opened before the replacement still serves";
  server->Stop();
}

TEST_F(TlsIdentityTest, BadPairsAreRefusedAndChangeNothing) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  // The second certificate with the first key, garbage, and nothing at all.
  Status mismatched = server->ReplaceCertificate(second_.cert_pem, first_.key_pem);
  EXPECT_FALSE(mismatched.ok());
  EXPECT_NE(mismatched.message().find("does not belong"), std::string::npos)
      << mismatched.message();
  EXPECT_FALSE(server->ReplaceCertificate("not a certificate", second_.key_pem).ok());
  EXPECT_FALSE(server->ReplaceCertificate(second_.cert_pem, "not a key").ok());
  EXPECT_FALSE(server->ReplaceCertificate("", "").ok());
  SslCtxPtr client = ClientContext();
  TlsConnection connection(client.get(), server->port());
  ASSERT_TRUE(connection.connected());
  EXPECT_EQ(connection.ServerCommonName(), "first");
  server->Stop();
}

TEST_F(TlsIdentityTest, ClientSideSlotPresentsTheRenewedClientCertificate) {
  auto server = StartServer();
  ASSERT_NE(server, nullptr);
  pki::ClientCertOptions old_options;
  old_options.user = "client-before";
  pki::ClientCertOptions new_options;
  new_options.user = "client-after";
  auto old_cert = pki::IssueClientCert(ca_, old_options);
  auto new_cert = pki::IssueClientCert(ca_, new_options);
  ASSERT_TRUE(old_cert.ok() && new_cert.ok());

  auto slot = pki::TlsIdentitySlot::Create(old_cert->cert_pem, old_cert->key_pem);
  ASSERT_TRUE(slot.ok()) << slot.status().message();
  SslCtxPtr client = ClientContext();
  ASSERT_TRUE((*slot)->Install(client.get()).ok());
  TlsConnection first(client.get(), server->port());
  ASSERT_TRUE(first.connected());
  EXPECT_EQ(first.Get(), "client-before");

  ASSERT_TRUE((*slot)->Replace(new_cert->cert_pem, new_cert->key_pem).ok());
  EXPECT_EQ((*slot)->CurrentChainPem(), new_cert->cert_pem);
  TlsConnection second(client.get(), server->port());
  ASSERT_TRUE(second.connected());
  EXPECT_EQ(second.Get(), "client-after");
  server->Stop();
}

// A listening socket on 127.0.0.1 and a free port (a kubelet reserving its port before it has a
// serving certificate); -1 on failure.
int ListeningSocket(uint16_t* port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int on = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      ::listen(fd, 16) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(fd);
    return -1;
  }
  *port = ntohs(address.sin_port);
  return fd;
}

// Whether 127.0.0.1:port can be bound (with SO_REUSEADDR, as servers do) and listened on.
bool PortIsFree(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int on = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
                    ::listen(fd, 1) == 0;
  ::close(fd);
  return free;
}

TEST_F(TlsIdentityTest, ServesASocketReservedBeforeTheCertificateExisted) {
  uint16_t port = 0;
  const int fd = ListeningSocket(&port);
  ASSERT_GE(fd, 0);
  EXPECT_FALSE(PortIsFree(port)) << "a reserved port is nobody else's";
  // A client that connects while the socket only waits in the backlog is served once the
  // server starts on it.
  SslCtxPtr client = ClientContext();
  std::string early_answer;
  std::thread early([&] {
    TlsConnection connection(client.get(), port);
    if (connection.connected()) early_answer = connection.Get();
  });
  auto server = StartServer(fd);
  ASSERT_NE(server, nullptr);
  EXPECT_EQ(server->port(), port);
  early.join();
  EXPECT_EQ(early_answer, "-");
  TlsConnection later(client.get(), port);
  ASSERT_TRUE(later.connected());
  EXPECT_EQ(later.ServerCommonName(), "first");
  server->Stop();
  server.reset();
  EXPECT_TRUE(PortIsFree(port)) << "the server closed the socket it took";
}

TEST_F(TlsIdentityTest, AReservedSocketIsClosedWhenTheServerCannotStart) {
  uint16_t port = 0;
  const int fd = ListeningSocket(&port);
  ASSERT_GE(fd, 0);
  ServerOptions options;
  options.cert_pem = "not a certificate";
  options.key_pem = first_.key_pem;
  options.listening_fd = fd;
  auto server = HttpServer::Start(options, [](Request, std::shared_ptr<Responder>) {});
  EXPECT_FALSE(server.ok());
  EXPECT_TRUE(PortIsFree(port)) << "Start owns the socket, also when it fails";
}

}  // namespace
}  // namespace mk8s::apiserver::http
