// The only translation unit of api_bench that compiles Boost.Beast/Asio (see api_client.h).
#include "api_client.h"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <array>
#include <fstream>
#include <functional>
#include <limits>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

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

// One watch stream; its handlers run one at a time (a single chain of operations per stream).
struct Watcher {
  Watcher(asio::io_context& ioc, ssl::context& context) : stream(ioc, context) {}
  Stream stream;
  beast::flat_buffer buffer;
  http::request<http::empty_body> request;
  std::optional<http::response_parser<http::string_body>> parser;
  std::string carry;  // unscanned tail of the event stream
  std::array<char, 16384> raw;  // body bytes as read (chunk framing included)
  std::array<bool, WatchFanout::kMaxMarks> seen{};
  std::array<WatchFanout::Clock::time_point, WatchFanout::kMaxMarks> stamps{};
};

class WatchFanoutImpl final : public WatchFanout {
 public:
  WatchFanoutImpl() : context_(ssl::context::tls_client) {}
  ~WatchFanoutImpl() override { Stop(); }

  bool Init(const TlsConfig& config, const std::string& target, const std::string& prefix,
            int watchers, std::string* error) {
    if (!MakeContext(config, &context_, error)) return false;
    port_ = config.port;
    target_ = target;
    prefix_ = prefix;
    for (int i = 0; i < watchers; ++i) watchers_.push_back(std::make_unique<Watcher>(ioc_, context_));
    return true;
  }

  void Run(int io_threads, int parallel) {
    const int total = static_cast<int>(watchers_.size());
    next_ = std::min(parallel, total);
    for (int i = 0; i < next_.load(); ++i) StartOne(watchers_[i].get());
    for (int t = 0; t < io_threads; ++t) threads_.emplace_back([this] { ioc_.run(); });
  }

  int established() const { return established_.load(); }
  int failed() const { return failed_.load(); }
  std::string first_error() const {
    std::lock_guard<std::mutex> lock(mu_);
    return first_error_;
  }

  int Received(int mark) const override { return received_[mark].load(); }

  void Stop() override {
    if (stopped_) return;
    stopped_ = true;
    ioc_.stop();
    for (auto& thread : threads_) thread.join();
  }

  std::vector<Clock::time_point> Stamps(int mark) const override {
    std::vector<Clock::time_point> out;
    for (const auto& w : watchers_) {
      if (w->seen[mark]) out.push_back(w->stamps[mark]);
    }
    return out;
  }

 private:
  void Fail(const std::string& what, error_code ec) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (first_error_.empty()) first_error_ = what + ": " + ec.message();
    }
    ++failed_;
    StartNext();
  }

  void StartNext() {
    const int index = next_.fetch_add(1);
    if (index < static_cast<int>(watchers_.size())) StartOne(watchers_[index].get());
  }

  void StartOne(Watcher* w) {
    w->stream.next_layer().expires_after(std::chrono::seconds(30));
    w->stream.next_layer().async_connect(Loopback(port_), [this, w](error_code ec) {
      if (ec) return Fail("connect", ec);
      w->stream.next_layer().socket().set_option(tcp::no_delay(true), ec);
      w->stream.async_handshake(ssl::stream_base::client, [this, w](error_code ec2) {
        if (ec2) return Fail("handshake", ec2);
        w->request = {http::verb::get, target_, 11};
        w->request.set(http::field::host, "127.0.0.1");
        w->request.set(http::field::accept, "application/json");
        http::async_write(w->stream, w->request, [this, w](error_code ec3, size_t) {
          if (ec3) return Fail("write", ec3);
          ReadHeader(w);
        });
      });
    });
  }

  void ReadHeader(Watcher* w) {
    w->parser.emplace();
    w->parser->body_limit(std::numeric_limits<std::uint64_t>::max());
    http::async_read_header(w->stream, w->buffer, *w->parser, [this, w](error_code ec, size_t) {
      if (ec) return Fail("watch header", ec);
      if (w->parser->get().result_int() != 200) {
        return Fail("watch status " + std::to_string(w->parser->get().result_int()), ec);
      }
      ++established_;
      StartNext();
      w->stream.next_layer().expires_never();
      // The body is scanned as it comes off TLS, chunk framing and all, without an HTTP parser:
      // the load tool shares the 2 cores with mk8sd, so its cost per event is kept low. (A mark
      // never straddles a chunk boundary: the server frames whole events.) Body bytes read along
      // with the head come first.
      const auto early = w->buffer.data();
      Scan(w, beast::string_view(static_cast<const char*>(early.data()), early.size()));
      w->buffer.consume(w->buffer.size());
      ReadBody(w);
    });
  }

  // Runs until the stream ends (server timeout) or Stop(); events arrive via Scan.
  void ReadBody(Watcher* w) {
    w->stream.async_read_some(asio::buffer(w->raw), [this, w](error_code ec, size_t n) {
      if (ec) return;
      Scan(w, beast::string_view(w->raw.data(), n));
      ReadBody(w);
    });
  }

  // Stamps each "<prefix><k>\"" seen for the first time. Runs on an io thread.
  void Scan(Watcher* w, beast::string_view body) {
    const auto now = Clock::now();
    w->carry.append(body.data(), body.size());
    size_t at = 0;
    while ((at = w->carry.find(prefix_, at)) != std::string::npos) {
      size_t end = at + prefix_.size();
      int mark = 0;
      bool digits = false;
      while (end < w->carry.size() && w->carry[end] >= '0' && w->carry[end] <= '9' && mark < 1000) {
        mark = mark * 10 + (w->carry[end++] - '0');
        digits = true;
      }
      if (end >= w->carry.size()) break;  // may continue in the next piece
      if (digits && w->carry[end] == '"' && mark < kMaxMarks && !w->seen[mark]) {
        w->stamps[mark] = now;
        w->seen[mark] = true;
        received_[mark].fetch_add(1, std::memory_order_release);
      }
      at = end;
    }
    const size_t keep = prefix_.size() + 8;
    if (at == std::string::npos && w->carry.size() > keep) {
      w->carry.erase(0, w->carry.size() - keep);
    } else if (at != std::string::npos) {
      w->carry.erase(0, at);
    }
  }

  asio::io_context ioc_;
  ssl::context context_;
  std::vector<std::unique_ptr<Watcher>> watchers_;  // fixed after Init
  std::vector<std::thread> threads_;
  int port_ = 0;
  std::string target_;
  std::string prefix_;
  std::atomic<int> next_{0};
  std::atomic<int> established_{0};
  std::atomic<int> failed_{0};
  std::array<std::atomic<int>, kMaxMarks> received_{};
  mutable std::mutex mu_;
  std::string first_error_;  // guarded by mu_
  bool stopped_ = false;     // controlling thread only
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

std::unique_ptr<WatchFanout> WatchFanout::Start(const TlsConfig& config, const std::string& target,
                                                const std::string& prefix, int watchers,
                                                int io_threads, int parallel,
                                                std::chrono::milliseconds deadline,
                                                int* established, std::string* first_error) {
  auto fanout = std::make_unique<WatchFanoutImpl>();
  if (!fanout->Init(config, target, prefix, watchers, first_error)) return nullptr;
  fanout->Run(io_threads, parallel);
  const auto until = Clock::now() + deadline;
  while (Clock::now() < until && fanout->established() + fanout->failed() < watchers) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // poll interval
  }
  *established = fanout->established();
  *first_error = fanout->first_error();
  return fanout;
}

}  // namespace mk8s::bench
