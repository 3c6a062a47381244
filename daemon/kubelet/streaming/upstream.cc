#include "kubelet/streaming/upstream.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <utility>

namespace mk8s::kubelet {
namespace {

constexpr size_t kMaxHead = 64 * 1024;

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return std::string(s);
}

// Waits for `events` on fd until `deadline`; false on timeout or error.
bool WaitFd(int fd, short events, std::chrono::steady_clock::time_point deadline) {
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    pollfd p{fd, events, 0};
    const int rc = ::poll(&p, 1, static_cast<int>(left.count()));
    if (rc > 0) return true;
    if (rc < 0 && errno != EINTR) return false;
  }
}

}  // namespace

std::string UpgradeResponse::HeaderValue(std::string_view lower_name) const {
  for (const auto& [name, value] : headers) {
    if (name == lower_name) return value;
  }
  return "";
}

Result<std::unique_ptr<UpstreamSocket>> UpstreamSocket::Upgrade(
    const std::string& url, const std::string& method,
    const std::vector<std::pair<std::string, std::string>>& headers,
    std::chrono::milliseconds timeout) {
  static const std::string kScheme = "http://";
  if (url.compare(0, kScheme.size(), kScheme) != 0) {
    return Status(Code::kInvalidArgument, "unsupported streaming URL (only http://): " + url);
  }
  const std::string rest = url.substr(kScheme.size());
  const size_t slash = rest.find('/');
  const std::string authority = rest.substr(0, slash);
  const std::string path = slash == std::string::npos ? "/" : rest.substr(slash);
  std::string host = authority, port = "80";
  if (!authority.empty() && authority.front() == '[') {  // [::]:port
    const size_t close = authority.find(']');
    if (close == std::string::npos) return Status(Code::kInvalidArgument, "bad URL " + url);
    host = authority.substr(1, close - 1);
    if (close + 1 < authority.size() && authority[close + 1] == ':')
      port = authority.substr(close + 2);
    if (host == "::") host = "::1";
  } else if (const size_t colon = authority.rfind(':'); colon != std::string::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host == "0.0.0.0") host = "127.0.0.1";

  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0 || found == nullptr) {
    return Status(Code::kInvalidArgument, "streaming URL has no numeric address: " + url);
  }
  const int fd = ::socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    ::freeaddrinfo(found);
    return Status(Code::kInternal, std::string("socket: ") + std::strerror(errno));
  }
  std::unique_ptr<UpstreamSocket> socket(new UpstreamSocket(fd));
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int rc = ::connect(fd, found->ai_addr, found->ai_addrlen);
  ::freeaddrinfo(found);
  if (rc != 0 && errno != EINPROGRESS) {
    return Status(Code::kUnavailable, "dial " + authority + ": " + std::strerror(errno));
  }
  if (rc != 0) {
    if (!WaitFd(fd, POLLOUT, deadline)) {
      return Status(Code::kUnavailable, "dial " + authority + ": timed out");
    }
    int error = 0;
    socklen_t length = sizeof(error);
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
    if (error != 0) {
      return Status(Code::kUnavailable, "dial " + authority + ": " + std::strerror(error));
    }
  }
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

  std::string request = method + " " + path + " HTTP/1.1\r\nHost: " + authority + "\r\n";
  for (const auto& [name, value] : headers) request += name + ": " + value + "\r\n";
  request += "\r\n";
  for (size_t sent = 0; sent < request.size();) {
    const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<size_t>(n);
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (!WaitFd(fd, POLLOUT, deadline))
        return Status(Code::kUnavailable, "upgrade: write timed out");
    } else {
      return Status(Code::kUnavailable, std::string("upgrade: write: ") + std::strerror(errno));
    }
  }
  std::string head;
  size_t end = std::string::npos;
  while ((end = head.find("\r\n\r\n")) == std::string::npos) {
    if (head.size() > kMaxHead)
      return Status(Code::kUnavailable, "upgrade: response head too large");
    if (!WaitFd(fd, POLLIN, deadline))
      return Status(Code::kUnavailable, "upgrade: no response in time");
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n == 0) return Status(Code::kUnavailable, "upgrade: connection closed before a response");
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR) continue;
      return Status(Code::kUnavailable, std::string("upgrade: read: ") + std::strerror(errno));
    }
    head.append(buf, static_cast<size_t>(n));
  }
  socket->early_ = head.substr(end + 4);
  head.resize(end);
  // "HTTP/1.1 101 Switching Protocols", then "name: value" lines.
  size_t line_end = head.find("\r\n");
  const std::string status_line = head.substr(0, line_end);
  if (status_line.size() < 12 || status_line.compare(0, 5, "HTTP/") != 0) {
    return Status(Code::kUnavailable,
                  "upgrade: not an HTTP response: " + status_line.substr(0, 80));
  }
  socket->response_.status = std::atoi(status_line.c_str() + status_line.find(' ') + 1);
  while (line_end != std::string::npos) {
    const size_t start = line_end + 2;
    line_end = head.find("\r\n", start);
    const std::string line =
        head.substr(start, line_end == std::string::npos ? std::string::npos : line_end - start);
    const size_t colon = line.find(':');
    if (colon == std::string::npos) continue;
    socket->response_.headers.emplace_back(Lower(Trim(line.substr(0, colon))),
                                           Trim(line.substr(colon + 1)));
  }
  if (socket->response_.status != 101) {
    // Whatever of the (short) error body is already here, plus one more read.
    std::string body = std::move(socket->early_);
    if (body.empty() && WaitFd(fd, POLLIN,
                               std::min(deadline, std::chrono::steady_clock::now() +
                                                      std::chrono::milliseconds(200)))) {
      char buf[4096];
      const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n > 0) body.assign(buf, static_cast<size_t>(n));
    }
    socket->response_.body = body.substr(0, 4096);
    socket->early_.clear();
  }
  // Blocking from now on (the reader thread blocks in Read).
  const int flags = ::fcntl(fd, F_GETFL);
  ::fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
  return socket;
}

UpstreamSocket::~UpstreamSocket() { ::close(fd_); }

std::string UpstreamSocket::Read() {
  if (!early_.empty()) return std::exchange(early_, std::string());
  char buf[32 * 1024];
  while (true) {
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n > 0) return std::string(buf, static_cast<size_t>(n));
    if (n < 0 && errno == EINTR) continue;
    return "";
  }
}

bool UpstreamSocket::SendAll(std::string_view bytes) {
  std::lock_guard lock(write_mu_);
  while (!bytes.empty()) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n > 0) {
      bytes.remove_prefix(static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      return false;
    }
  }
  return true;
}

void UpstreamSocket::Shutdown() { ::shutdown(fd_, SHUT_RDWR); }

}  // namespace mk8s::kubelet
