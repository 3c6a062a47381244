// The only translation unit of api_bench that compiles Boost.Beast/Asio (see api_client.h): the
// kubeconfig reader and the blocking ApiConnection. WatchFanout is in watch_fanout.cc (no Asio).
#include "api_client.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <fstream>
#include <limits>
#include <sstream>

namespace mk8s::bench {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using tcp = asio::ip::tcp;
using Stream = beast::ssl_stream<beast::tcp_stream>;
using boost::system::error_code;

bool Base64Decode(const std::string& in, std::string* out) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  out->clear();
  int bits = 0;
  uint32_t acc = 0;
  for (char c : in) {
    if (c == '=' || c == '\n' || c == '\r' || c == ' ') continue;
    const int v = value(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return !out->empty();
}

// The value after "<key>: " on the first line that has it, quotes stripped.
std::string Field(const std::string& yaml, const std::string& key) {
  std::istringstream lines(yaml);
  std::string line;
  while (std::getline(lines, line)) {
    const size_t at = line.find(key + ": ");
    if (at == std::string::npos) continue;
    std::string value = line.substr(at + key.size() + 2);
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
      value = value.substr(1, value.size() - 2);
    }
    return value;
  }
  return "";
}

bool MakeContext(const TlsConfig& config, ssl::context* context, std::string* error) {
  error_code ec;
  context->add_certificate_authority(asio::buffer(config.ca_pem), ec);
  if (!ec) context->use_certificate_chain(asio::buffer(config.cert_pem), ec);
  if (!ec) context->use_private_key(asio::buffer(config.key_pem), ssl::context::pem, ec);
  if (!ec) context->set_verify_mode(ssl::verify_peer, ec);
  if (ec) *error = "TLS setup: " + ec.message();
  return !ec;
}

tcp::endpoint Loopback(int port) {
  return tcp::endpoint(asio::ip::address_v4::loopback(), static_cast<uint16_t>(port));
}

class ApiConnectionImpl final : public ApiConnection {
 public:
  explicit ApiConnectionImpl(std::chrono::milliseconds timeout)
      : context_(ssl::context::tls_client), timeout_(timeout) {}

  bool Open(const TlsConfig& config, std::string* error) {
    if (!MakeContext(config, &context_, error)) return false;
    stream_ = std::make_unique<Stream>(ioc_, context_);
    error_code result;
    stream_->next_layer().expires_after(timeout_);
    stream_->next_layer().async_connect(Loopback(config.port), [&](error_code ec) {
      if (ec) {
        result = ec;
        return;
      }
      stream_->next_layer().socket().set_option(tcp::no_delay(true), ec);
      stream_->async_handshake(ssl::stream_base::client, [&](error_code ec2) { result = ec2; });
    });
    Run();
    if (result) *error = "connect: " + result.message();
    return !result;
  }

  bool Request(const char* method, const std::string& target, const std::string& body,
               Response* response, std::string* error) override {
    response->status = 0;
    response->body.clear();
    if (broken_) {
      *error = "connection closed by the server";
      return false;
    }
    http::request<http::string_body> request{http::string_to_verb(method), target, 11};
    request.set(http::field::host, "127.0.0.1");
    request.set(http::field::accept, "application/json");
    if (!body.empty()) {
      request.set(http::field::content_type, "application/json");
      request.body() = body;
    }
    request.prepare_payload();
    http::response_parser<http::string_body> parser;
    parser.body_limit(std::numeric_limits<std::uint64_t>::max());
    error_code result;
    stream_->next_layer().expires_after(timeout_);
    http::async_write(*stream_, request, [&](error_code ec, size_t) {
      if (ec) {
        result = ec;
        return;
      }
      http::async_read(*stream_, buffer_, parser, [&](error_code ec2, size_t) { result = ec2; });
    });
    Run();
    if (result) {
      broken_ = true;
      *error = std::string(method) + " " + target + ": " + result.message();
      return false;
    }
    if (!parser.keep_alive()) broken_ = true;
    response->status = parser.get().result_int();
    response->body = std::move(parser.get().body());
    return true;
  }

 private:
  void Run() {
    ioc_.restart();
    ioc_.run();
  }

  asio::io_context ioc_;  // run only inside Open/Request, on the caller's thread
  ssl::context context_;
  std::unique_ptr<Stream> stream_;
  beast::flat_buffer buffer_;
  std::chrono::milliseconds timeout_;
  bool broken_ = false;
};

}  // namespace

bool LoadKubeconfig(const std::string& path, TlsConfig* config, std::string* error) {
  std::ifstream file(path);
  std::stringstream text;
  text << file.rdbuf();
  const std::string yaml = text.str();
  const std::string server = Field(yaml, "server");
  const size_t colon = server.rfind(':');
  if (server.rfind("https://127.0.0.1:", 0) != 0 || colon == std::string::npos) {
    *error = path + ": no server https://127.0.0.1:PORT (got '" + server + "')";
    return false;
  }
  config->port = std::atoi(server.c_str() + colon + 1);
  if (!Base64Decode(Field(yaml, "certificate-authority-data"), &config->ca_pem) ||
      !Base64Decode(Field(yaml, "client-certificate-data"), &config->cert_pem) ||
      !Base64Decode(Field(yaml, "client-key-data"), &config->key_pem) || config->port <= 0) {
    *error = path + ": missing or bad certificate-authority/client-certificate/client-key data";
    return false;
  }
  return true;
}

std::unique_ptr<ApiConnection> ApiConnection::Connect(const TlsConfig& config,
                                                      std::chrono::milliseconds timeout,
                                                      std::string* error) {
  auto connection = std::make_unique<ApiConnectionImpl>(timeout);
  if (!connection->Open(config, error)) return nullptr;
  return connection;
}

}  // namespace mk8s::bench
