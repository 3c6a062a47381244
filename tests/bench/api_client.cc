// api_bench's kubeconfig reader and its blocking request connection (ApiConnection) over plain
// OpenSSL. WatchFanout is in watch_fanout.cc; both share tls_setup.h.
#include "api_client.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string_view>

#include "tls_setup.h"

namespace mk8s::bench {
namespace {

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

// A response's head: status, and how its body is framed.
struct Head {
  int status = 0;
  bool chunked = false;
  bool close = false;
  long long content_length = -1;  // -1: not given
};

bool HeaderIs(std::string_view name, std::string_view wanted) {
  return name.size() == wanted.size() &&
         std::equal(name.begin(), name.end(), wanted.begin(),
                    [](char a, char b) { return std::tolower(static_cast<unsigned char>(a)) == b; });
}

bool Contains(std::string_view value, std::string_view token) {
  for (size_t i = 0; i + token.size() <= value.size(); ++i) {
    if (HeaderIs(value.substr(i, token.size()), token)) return true;
  }
  return false;
}

// Parses "HTTP/1.1 NNN ...\r\n(name: value\r\n)*" (the head without its final empty line).
bool ParseHead(std::string_view text, Head* head) {
  if (text.size() < 12 || text.compare(0, 5, "HTTP/") != 0) return false;
  head->status = std::atoi(std::string(text.substr(9, 3)).c_str());
  if (head->status < 100) return false;
  size_t at = text.find("\r\n");
  while (at != std::string_view::npos && at + 2 < text.size()) {
    const size_t start = at + 2;
    at = text.find("\r\n", start);
    const std::string_view line =
        text.substr(start, at == std::string_view::npos ? std::string_view::npos : at - start);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return false;
    const std::string_view name = line.substr(0, colon);
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (HeaderIs(name, "content-length")) {
      head->content_length = std::atoll(std::string(value).c_str());
    } else if (HeaderIs(name, "transfer-encoding")) {
      head->chunked = Contains(value, "chunked");
    } else if (HeaderIs(name, "connection")) {
      head->close = Contains(value, "close");
    }
  }
  return true;
}

// One keep-alive TLS connection driven with blocking OpenSSL calls on the socket (SSL_set_fd):
// a request is one SSL_write of the hand-written head and body, the response is read into
// `input_` and framed by Content-Length or chunked encoding. Nothing is allocated per request
// beyond the strings' growth. The socket's SO_RCVTIMEO/SO_SNDTIMEO bound every blocking call.
class LeanConnection final : public ApiConnection {
 public:
  ~LeanConnection() override {
    if (ssl_ != nullptr) SSL_free(ssl_);
    if (fd_ >= 0) ::close(fd_);
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
  }

  bool Open(const TlsConfig& config, std::chrono::milliseconds timeout, std::string* error) {
    ctx_ = NewClientContext(config, error);
    if (ctx_ == nullptr) return false;
    fd_ = ConnectLoopback(config.port, timeout, error);
    if (fd_ < 0) return false;
    ssl_ = SSL_new(ctx_);
    SSL_set_fd(ssl_, fd_);
    if (SSL_connect(ssl_) != 1) {
      *error = "handshake: " + LastTlsError();
      return false;
    }
    return true;
  }

  bool Request(const char* method, const std::string& target, const std::string& body,
               Response* response, std::string* error) override {
    response->status = 0;
    response->body.clear();
    if (broken_) {
      *error = "connection closed by the server";
      return false;
    }
    output_.clear();
    output_.append(method).append(" ").append(target).append(
        " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n");
    if (!body.empty()) {
      output_.append("Content-Type: application/json\r\nContent-Length: ")
          .append(std::to_string(body.size()))
          .append("\r\n");
    }
    output_.append("\r\n").append(body);
    std::string what;
    Head head;
    if (SSL_write(ssl_, output_.data(), static_cast<int>(output_.size())) <= 0) {
      what = "write: " + LastTlsError();
    } else if (!ReadHead(&head, &what) || !ReadBody(head, &response->body, &what)) {
      // `what` says why
    } else {
      if (head.close) broken_ = true;
      response->status = head.status;
      return true;
    }
    broken_ = true;
    *error = std::string(method) + " " + target + ": " + what;
    return false;
  }

 private:
  // Appends what one SSL_read returns to input_; false (with `what`) on EOF, error or timeout.
  bool Fill(std::string* what) {
    const int n = SSL_read(ssl_, chunk_, sizeof(chunk_));
    if (n <= 0) {
      *what = SSL_get_error(ssl_, n) == SSL_ERROR_ZERO_RETURN ? "connection closed"
                                                              : "read: " + LastTlsError();
      return false;
    }
    input_.append(chunk_, static_cast<size_t>(n));
    return true;
  }

  // Reads input_ until it holds `bytes` bytes past `from`.
  bool Need(size_t from, size_t bytes, std::string* what) {
    while (input_.size() - from < bytes) {
      if (!Fill(what)) return false;
    }
    return true;
  }

  // The position of the next "\r\n" at or after `from` (reading more as needed), or npos.
  size_t Line(size_t from, std::string* what) {
    while (true) {
      const size_t end = input_.find("\r\n", from);
      if (end != std::string::npos) return end;
      if (input_.size() - from > kMaxHeadBytes || !Fill(what)) return std::string::npos;
    }
  }

  bool ReadHead(Head* head, std::string* what) {
    size_t end;
    while ((end = input_.find("\r\n\r\n")) == std::string::npos) {
      if (input_.size() > kMaxHeadBytes) {
        *what = "response head longer than 64 KiB";
        return false;
      }
      if (!Fill(what)) return false;
    }
    if (!ParseHead(std::string_view(input_).substr(0, end), head)) {
      *what = "malformed response head";
      return false;
    }
    input_.erase(0, end + 4);
    return true;
  }

  bool ReadBody(const Head& head, std::string* body, std::string* what) {
    if (head.content_length >= 0) {
      const auto length = static_cast<size_t>(head.content_length);
      if (!Need(0, length, what)) return false;
      body->assign(input_, 0, length);
      input_.erase(0, length);
      return true;
    }
    if (!head.chunked) {  // framed by the end of the connection
      while (Fill(what)) {
      }
      *body = std::move(input_);
      input_.clear();
      broken_ = true;
      return true;
    }
    size_t at = 0;  // chunk-size line, data, CRLF; a zero size ends it (trailers ignored)
    while (true) {
      const size_t eol = Line(at, what);
      if (eol == std::string::npos) return false;
      const size_t size = std::strtoul(input_.c_str() + at, nullptr, 16);
      at = eol + 2;
      if (size == 0) break;
      if (!Need(at, size + 2, what)) return false;
      body->append(input_, at, size);
      at += size + 2;
    }
    while (true) {  // trailers until the empty line
      const size_t eol = Line(at, what);
      if (eol == std::string::npos) return false;
      const bool empty = eol == at;
      at = eol + 2;
      if (empty) break;
    }
    input_.erase(0, at);
    return true;
  }

  static constexpr size_t kMaxHeadBytes = 64 * 1024;
  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int fd_ = -1;
  bool broken_ = false;
  std::string output_;  // the request being sent
  std::string input_;   // received, not yet consumed
  char chunk_[16 * 1024];
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
  auto connection = std::make_unique<LeanConnection>();
  if (!connection->Open(config, timeout, error)) return nullptr;
  return connection;
}

}  // namespace mk8s::bench
