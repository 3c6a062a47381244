// HttpsTransport against a scripted TLS server on loopback (one blocking thread per test, its
// behaviour per connection given by the test): keep-alive reuse and the request head, retry when
// the server dropped a reused connection, request timeouts, chunked watches, Cancel, abort on
// destruction, certificate and host-name verification, client certificates, IPv6 literals.
#include "client/https_transport.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include <atomic>
#include <csignal>
#include <chrono>
#include <fstream>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pki/certificates.h"

namespace mk8s::client {
namespace {

using namespace std::chrono_literals;

struct Pki {
  pki::KeyPair ca;
  pki::KeyPair serving;  // SANs: 127.0.0.1, ::1, localhost
  pki::KeyPair foreign;  // SANs: elsewhere.invalid only (a certificate for another host)
  pki::KeyPair client;
  static const Pki& Get() {
    static const Pki instance = [] {
      Pki p;
      p.ca = *pki::CreateCa();
      pki::ServingCertOptions serving;
      serving.ip_addresses = {"127.0.0.1", "::1"};
      serving.dns_names = {"localhost"};
      p.serving = *pki::IssueServingCert(p.ca, serving);
      pki::ServingCertOptions foreign;
      foreign.dns_names = {"elsewhere.invalid"};
      p.foreign = *pki::IssueServingCert(p.ca, foreign);
      pki::ClientCertOptions client;
      client.user = "tester";
      p.client = *pki::IssueClientCert(p.ca, client);
      return p;
    }();
    return instance;
  }
};

// One accepted TLS connection of the scripted server (blocking).
class ServerConn {
 public:
  ServerConn(SSL* ssl, int fd) : ssl_(ssl), fd_(fd) {}
  ~ServerConn() {
    SSL_free(ssl_);
    close(fd_);
  }
  // The next request (head and Content-Length body); "" when the client closed.
  std::string ReadRequest() {
    for (;;) {
      const size_t end = buffer_.find("\r\n\r\n");
      if (end != std::string::npos) {
        size_t length = 0;
        const size_t at = buffer_.find("Content-Length: ");
        if (at != std::string::npos && at < end) length = std::stoul(buffer_.substr(at + 16));
        if (buffer_.size() >= end + 4 + length) {
          std::string request = buffer_.substr(0, end + 4 + length);
          buffer_.erase(0, end + 4 + length);
          return request;
        }
      }
      char data[4096];
      const int n = SSL_read(ssl_, data, sizeof data);
      if (n <= 0) return "";
      buffer_.append(data, static_cast<size_t>(n));
    }
  }
  void Write(const std::string& data) { SSL_write(ssl_, data.data(), static_cast<int>(data.size())); }
  // Blocks until the client closes the connection.
  void WaitForClose() {
    char data[4096];
    while (SSL_read(ssl_, data, sizeof data) > 0) {
    }
  }

 private:
  SSL* ssl_;
  int fd_;
  std::string buffer_;
};

std::string Reply(int status, const std::string& body, const std::string& extra = "") {
  return "HTTP/1.1 " + std::to_string(status) + " X\r\nContent-Type: application/json\r\n" + extra +
         "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// Accepts connections on loopback and runs `script(connection index, connection)` for each, one
// after the other, on its own thread.
class ScriptedServer {
 public:
  using Script = std::function<void(int index, ServerConn& conn)>;

  // `foreign_cert`: serve a certificate that names another host only (signed by the same CA).
  ScriptedServer(Script script, bool ipv6 = false, bool require_client_cert = false,
                 bool foreign_cert = false)
      : script_(std::move(script)) {
    // This server writes through OpenSSL's socket BIO (write(2)); several tests close the
    // client under test on purpose while it writes, which would raise SIGPIPE and kill the
    // test binary. (The transport itself sends with MSG_NOSIGNAL.)
    std::signal(SIGPIPE, SIG_IGN);
    const Pki& p = Pki::Get();
    const pki::KeyPair& identity = foreign_cert ? p.foreign : p.serving;
    ctx_ = SSL_CTX_new(TLS_server_method());
    BIO* cert = BIO_new_mem_buf(identity.cert_pem.data(), static_cast<int>(identity.cert_pem.size()));
    X509* x509 = PEM_read_bio_X509(cert, nullptr, nullptr, nullptr);
    BIO_free(cert);
    BIO* key = BIO_new_mem_buf(identity.key_pem.data(), static_cast<int>(identity.key_pem.size()));
    EVP_PKEY* pkey = PEM_read_bio_PrivateKey(key, nullptr, nullptr, nullptr);
    BIO_free(key);
    SSL_CTX_use_certificate(ctx_, x509);
    SSL_CTX_use_PrivateKey(ctx_, pkey);
    X509_free(x509);
    EVP_PKEY_free(pkey);
    if (require_client_cert) {
      BIO* ca = BIO_new_mem_buf(p.ca.cert_pem.data(), static_cast<int>(p.ca.cert_pem.size()));
      X509* ca_cert = PEM_read_bio_X509(ca, nullptr, nullptr, nullptr);
      BIO_free(ca);
      X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx_), ca_cert);
      X509_free(ca_cert);
      SSL_CTX_set_verify(ctx_, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nullptr);
    }
    listen_fd_ = socket(ipv6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    const int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ipv6) {
      sockaddr_in6 address{};
      address.sin6_family = AF_INET6;
      address.sin6_addr = in6addr_loopback;
      bound_ = bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
      socklen_t length = sizeof address;
      getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length);
      port_ = ntohs(address.sin6_port);
    } else {
      sockaddr_in address{};
      address.sin_family = AF_INET;
      address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      bound_ = bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
      socklen_t length = sizeof address;
      getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length);
      port_ = ntohs(address.sin_port);
    }
    bound_ = bound_ && listen(listen_fd_, 16) == 0;
    if (bound_) thread_ = std::thread([this] { Serve(); });
  }

  ~ScriptedServer() {
    shutdown(listen_fd_, SHUT_RDWR);
    close(listen_fd_);
    if (thread_.joinable()) thread_.join();
    SSL_CTX_free(ctx_);
  }

  bool bound() const { return bound_; }
  int port() const { return port_; }
  int connections() const { return connections_; }

 private:
  void Serve() {
    for (int index = 0;; ++index) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      ++connections_;
      SSL* ssl = SSL_new(ctx_);
      SSL_set_fd(ssl, fd);
      ServerConn conn(ssl, fd);
      if (SSL_accept(ssl) != 1) continue;
      script_(index, conn);
    }
  }

  Script script_;
  SSL_CTX* ctx_ = nullptr;
  int listen_fd_ = -1;
  int port_ = 0;
  bool bound_ = false;
  std::atomic<int> connections_{0};
  std::thread thread_;
};

HttpsConfig ConfigFor(const std::string& host, int port) {
  HttpsConfig config;
  config.server = "https://" + host + ":" + std::to_string(port);
  config.ca_pem = Pki::Get().ca.cert_pem;
  return config;
}

std::shared_ptr<HttpsTransport> MakeTransport(const HttpsConfig& config) {
  auto transport = HttpsTransport::Create(config);
  EXPECT_TRUE(transport.ok()) << transport.status().ToString();
  return transport.ok() ? *transport : nullptr;
}

// Sends and waits (bounded) for the answer.
Response SendAndWait(Transport& transport, Request request) {
  auto promise = std::make_shared<std::promise<Response>>();
  auto future = promise->get_future();
  transport.Send(std::move(request), [promise](Response r) { promise->set_value(std::move(r)); });
  if (future.wait_for(30s) != std::future_status::ready) return Response{-1, "", "no callback"};
  return future.get();
}

TEST(HttpsTransportTest, KeepAliveReusesTheConnectionAndWritesTheHead) {
  std::vector<std::string> requests;
  std::mutex mu;
  ScriptedServer server([&](int, ServerConn& conn) {
    for (std::string request; !(request = conn.ReadRequest()).empty();) {
      {
        std::lock_guard lock(mu);
        requests.push_back(request);
      }
      conn.Write(Reply(201, "{\"ok\":true}"));
    }
  });
  ASSERT_TRUE(server.bound());
  HttpsConfig config = ConfigFor("127.0.0.1", server.port());
  config.bearer_token = "secret-token";
  auto transport = MakeTransport(config);
  for (int i = 0; i < 3; ++i) {
    Request request;
    request.method = "POST";
    request.path = "/api/v1/namespaces/default/configmaps";
    request.query = "fieldManager=x";
    request.content_type = "application/json";
    request.body = "{\"i\":" + std::to_string(i) + "}";
    Response response = SendAndWait(*transport, request);
    EXPECT_EQ(response.status, 201) << response.body;
    EXPECT_EQ(response.body, "{\"ok\":true}");
    EXPECT_EQ(response.content_type, "application/json");
  }
  EXPECT_EQ(server.connections(), 1);
  std::lock_guard lock(mu);
  ASSERT_EQ(requests.size(), 3u);
  const std::string& head = requests[2];
  EXPECT_EQ(head.rfind("POST /api/v1/namespaces/default/configmaps?fieldManager=x HTTP/1.1\r\n", 0), 0u) << head;
  EXPECT_NE(head.find("\r\nHost: 127.0.0.1:" + std::to_string(server.port()) + "\r\n"), std::string::npos);
  EXPECT_NE(head.find("\r\nAuthorization: Bearer secret-token\r\n"), std::string::npos);
  EXPECT_NE(head.find("\r\nContent-Type: application/json\r\n"), std::string::npos);
  EXPECT_NE(head.find("\r\nContent-Length: 7\r\n\r\n{\"i\":2}"), std::string::npos) << head;
}

TEST(HttpsTransportTest, LargeBodiesBothWays) {
  const std::string big_reply(3 << 20, 'r');  // many TLS records and socket reads
  std::atomic<size_t> request_size{0};
  ScriptedServer server([&](int, ServerConn& conn) {
    request_size = conn.ReadRequest().size();
    conn.Write(Reply(200, big_reply));
    conn.WaitForClose();
  });
  ASSERT_TRUE(server.bound());
  auto transport = MakeTransport(ConfigFor("127.0.0.1", server.port()));
  Request request;
  request.method = "PUT";
  request.path = "/big";
  request.body = std::string(1 << 20, 'q');  // more than the socket takes at once
  Response response = SendAndWait(*transport, request);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body.size(), big_reply.size());
  EXPECT_EQ(response.body, big_reply);
  EXPECT_GT(request_size.load(), size_t{1} << 20);
}

TEST(HttpsTransportTest, ARequestIsSentAgainWhenTheServerDroppedTheReusedConnection) {
  ScriptedServer server([&](int index, ServerConn& conn) {
    if (index == 0) {
      conn.ReadRequest();
      conn.Write(Reply(200, "first"));
      conn.ReadRequest();  // the second request arrives on the kept connection: dropped
      return;
    }
    conn.ReadRequest();
    conn.Write(Reply(200, "second"));
    conn.WaitForClose();
  });
  ASSERT_TRUE(server.bound());
  auto transport = MakeTransport(ConfigFor("127.0.0.1", server.port()));
  Request request;
  request.path = "/x";
  EXPECT_EQ(SendAndWait(*transport, request).body, "first");
  Response again = SendAndWait(*transport, request);
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.body, "second");
  EXPECT_EQ(server.connections(), 2);
}

TEST(HttpsTransportTest, AFreshConnectionThatDropsTheRequestFailsWithStatusZero) {
  ScriptedServer server([&](int, ServerConn& conn) { conn.ReadRequest(); });
  ASSERT_TRUE(server.bound());
  auto transport = MakeTransport(ConfigFor("127.0.0.1", server.port()));
  Request request;
  request.path = "/x";
  Response response = SendAndWait(*transport, request);
  EXPECT_EQ(response.status, 0);
  EXPECT_NE(response.body.find("failed"), std::string::npos) << response.body;
  EXPECT_EQ(server.connections(), 1);
}

TEST(HttpsTransportTest, ARequestTimesOut) {
  ScriptedServer server([&](int, ServerConn& conn) {
    conn.ReadRequest();
    conn.WaitForClose();  // never answers
  });
  ASSERT_TRUE(server.bound());
  HttpsConfig config = ConfigFor("127.0.0.1", server.port());
  config.request_timeout = 1s;
  auto transport = MakeTransport(config);
  Request request;
  request.path = "/slow";
  Response response = SendAndWait(*transport, request);
  EXPECT_EQ(response.status, 0);
  EXPECT_NE(response.body.find("timed out"), std::string::npos) << response.body;
}

TEST(HttpsTransportTest, AnErrorAnswerKeepsItsStatusAndBody) {
  ScriptedServer server([&](int, ServerConn& conn) {
    conn.ReadRequest();
    conn.Write(Reply(404, "{\"kind\":\"Status\",\"code\":404}", "Connection: close\r\n"));
  });
  ASSERT_TRUE(server.bound());
  auto transport = MakeTransport(ConfigFor("127.0.0.1", server.port()));
  Request request;
  request.path = "/missing";
  Response response = SendAndWait(*transport, request);
  EXPECT_EQ(response.status, 404);
  EXPECT_EQ(response.body, "{\"kind\":\"Status\",\"code\":404}");
}

struct StreamRecord {
  std::mutex mu;
  std::vector<std::string> lines;
  std::promise<Response> ended;
  StreamCallbacks Callbacks() {
    StreamCallbacks callbacks;
    callbacks.on_line = [this](std::string line) {
      std::lock_guard lock(mu);
      lines.push_back(std::move(line));
    };
    callbacks.on_end = [this](Response response) { ended.set_value(std::move(response)); };
    return callbacks;
  }
  size_t count() {
    std::lock_guard lock(mu);
    return lines.size();
  }
};

bool WaitFor(const std::function<bool()>& condition) {
  const auto deadline = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(5ms);  // poll interval
  }
  return false;
}

TEST(HttpsTransportTest, AChunkedWatchDeliversLinesAcrossChunksAndEnds) {
  ScriptedServer server([&](int, ServerConn& conn) {
    conn.ReadRequest();
    conn.Write("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
    conn.Write("8\r\n{\"a\":1}\n\r\n");
    conn.Write("4\r\n{\"b\"\r\n");
    std::this_thread::sleep_for(20ms);  // lets the client see the half line alone
    conn.Write("4\r\n:2}\n\r\n0\r\n\r\n");
    conn.WaitForClose();
  });
  ASSERT_TRUE(server.bound());
  auto transport = MakeTransport(ConfigFor("127.0.0.1", server.port()));
  StreamRecord record;
  Request request;
  request.path = "/api/v1/pods";
  request.query = "watch=1";
  auto handle = transport->Stream(request, record.Callbacks());
  auto ended = record.ended.get_future();
  ASSERT_EQ(ended.wait_for(20s), std::future_status::ready);
  Response end = ended.get();
  EXPECT_EQ(end.status, 200);
  std::lock_guard lock(record.mu);
  EXPECT_EQ(record.lines, (std::vector<std::string>{"{\"a\":1}", "{\"b\":2}"}));
}

TEST(HttpsTransportTest, CancelEndsAQuietWatchWithStatusZero) {
  ScriptedServer server([&](int, ServerConn& conn) {
    conn.ReadRequest();
    conn.Write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nhi!\n\r\n");
    conn.WaitForClose();
  });
  ASSERT_TRUE(server.bound());
  auto transport = MakeTransport(ConfigFor("127.0.0.1", server.port()));
  StreamRecord record;
  Request request;
  request.path = "/w";
  auto handle = transport->Stream(request, record.Callbacks());
  ASSERT_TRUE(WaitFor([&] { return record.count() == 1; }));
  handle->Cancel();
  handle->Cancel();  // idempotent
  auto ended = record.ended.get_future();
  ASSERT_EQ(ended.wait_for(20s), std::future_status::ready);
  EXPECT_EQ(ended.get().status, 0);
}

TEST(HttpsTransportTest, DestructionAbortsRequestsAndWatchesWithStatusZero) {
  ScriptedServer server([&](int, ServerConn& conn) {
    conn.ReadRequest();
    conn.WaitForClose();
  });
  ASSERT_TRUE(server.bound());
  auto transport = MakeTransport(ConfigFor("127.0.0.1", server.port()));
  auto promise = std::make_shared<std::promise<Response>>();
  Request request;
  request.path = "/hang";
  transport->Send(request, [promise](Response r) { promise->set_value(std::move(r)); });
  StreamRecord record;
  transport->Stream(request, record.Callbacks());
  transport.reset();  // joins the I/O thread: every callback has run
  auto response = promise->get_future();
  ASSERT_EQ(response.wait_for(0s), std::future_status::ready);
  EXPECT_EQ(response.get().status, 0);
  auto ended = record.ended.get_future();
  ASSERT_EQ(ended.wait_for(0s), std::future_status::ready);
  EXPECT_EQ(ended.get().status, 0);
}

TEST(HttpsTransportTest, TheServerCertificateAndHostNameAreVerified) {
  ScriptedServer server([&](int, ServerConn& conn) {
    if (!conn.ReadRequest().empty()) conn.Write(Reply(200, "ok"));
  });
  ASSERT_TRUE(server.bound());
  Request request;
  request.path = "/x";

  HttpsConfig other_ca = ConfigFor("127.0.0.1", server.port());
  other_ca.ca_pem = pki::CreateCa()->cert_pem;
  Response refused = SendAndWait(*MakeTransport(other_ca), request);
  EXPECT_EQ(refused.status, 0);
  EXPECT_NE(refused.body.find("TLS handshake"), std::string::npos) << refused.body;

  HttpsConfig by_name = ConfigFor("localhost", server.port());
  Response named = SendAndWait(*MakeTransport(by_name), request);
  // localhost may resolve to ::1 first where the server does not listen; the transport tries
  // every address. The certificate names "localhost", so it is accepted.
  EXPECT_EQ(named.status, 200) << named.body;

  HttpsConfig insecure = ConfigFor("127.0.0.1", server.port());
  insecure.ca_pem = pki::CreateCa()->cert_pem;
  insecure.insecure_skip_verify = true;
  EXPECT_EQ(SendAndWait(*MakeTransport(insecure), request).status, 200);
}

TEST(HttpsTransportTest, AHostNameTheCertificateDoesNotNameIsRefused) {
  // A certificate from the trusted CA, but for another host: 127.0.0.1 is not among its names.
  ScriptedServer server(
      [&](int, ServerConn& conn) {
        if (!conn.ReadRequest().empty()) conn.Write(Reply(200, "ok"));
      },
      /*ipv6=*/false, /*require_client_cert=*/false, /*foreign_cert=*/true);
  ASSERT_TRUE(server.bound());
  Request request;
  request.path = "/x";
  Response response = SendAndWait(*MakeTransport(ConfigFor("127.0.0.1", server.port())), request);
  EXPECT_EQ(response.status, 0) << response.body;
  EXPECT_NE(response.body.find("TLS handshake"), std::string::npos) << response.body;
}

TEST(HttpsTransportTest, AClientCertificateIsPresented) {
  ScriptedServer server(
      [&](int, ServerConn& conn) {
        if (!conn.ReadRequest().empty()) conn.Write(Reply(200, "hello client"));
      },
      /*ipv6=*/false, /*require_client_cert=*/true);
  ASSERT_TRUE(server.bound());
  Request request;
  request.path = "/x";
  EXPECT_EQ(SendAndWait(*MakeTransport(ConfigFor("127.0.0.1", server.port())), request).status, 0);
  HttpsConfig config = ConfigFor("127.0.0.1", server.port());
  config.client_cert_pem = Pki::Get().client.cert_pem;
  config.client_key_pem = Pki::Get().client.key_pem;
  Response response = SendAndWait(*MakeTransport(config), request);
  EXPECT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(response.body, "hello client");
}

TEST(HttpsTransportTest, AnIpv6LiteralServer) {
  std::string head;
  ScriptedServer server(
      [&](int, ServerConn& conn) {
        head = conn.ReadRequest();
        if (!head.empty()) conn.Write(Reply(200, "v6"));
      },
      /*ipv6=*/true);
  if (!server.bound()) {
    // Only a kernel with IPv6 switched off has no ::1 (CI's has it: there a bind failure fails).
    std::ifstream disabled("/proc/sys/net/ipv6/conf/lo/disable_ipv6");
    std::string flag;
    if (!disabled || !(disabled >> flag) || flag == "1") {
      GTEST_SKIP() << "IPv6 is disabled in this kernel (no ::1 to listen on)";
    }
    FAIL() << "could not listen on [::1] although IPv6 is enabled";
  }
  HttpsConfig config = ConfigFor("[::1]", server.port());
  Request request;
  request.path = "/x";
  Response response = SendAndWait(*MakeTransport(config), request);
  EXPECT_EQ(response.status, 200) << response.body;
  EXPECT_EQ(response.body, "v6");
  EXPECT_NE(head.find("\r\nHost: [::1]:" + std::to_string(server.port()) + "\r\n"), std::string::npos);
}

TEST(HttpsTransportTest, BadConfigurationIsRefusedAtCreate) {
  HttpsConfig plain;
  plain.server = "http://127.0.0.1:1";
  EXPECT_FALSE(HttpsTransport::Create(plain).ok());
  HttpsConfig bad_ca = ConfigFor("127.0.0.1", 1);
  bad_ca.ca_pem = "not a certificate";
  EXPECT_FALSE(HttpsTransport::Create(bad_ca).ok());
  HttpsConfig bad_key = ConfigFor("127.0.0.1", 1);
  bad_key.client_cert_pem = Pki::Get().client.cert_pem;
  bad_key.client_key_pem = Pki::Get().serving.key_pem;  // not the certificate's key
  EXPECT_FALSE(HttpsTransport::Create(bad_key).ok());
}

TEST(HttpsTransportTest, ConnectionRefusedFailsWithStatusZero) {
  int port = 0;
  {
    ScriptedServer server([](int, ServerConn&) {});
    port = server.port();
  }  // closed: nothing listens there now
  Request request;
  request.path = "/x";
  Response response = SendAndWait(*MakeTransport(ConfigFor("127.0.0.1", port)), request);
  EXPECT_EQ(response.status, 0);
  EXPECT_NE(response.body.find("cannot connect"), std::string::npos) << response.body;
}

}  // namespace
}  // namespace mk8s::client
