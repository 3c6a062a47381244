// UpstreamSocket: the kubelet's connection to the runtime's streaming server (containerd's
// http://127.0.0.1:<port>/{exec,attach,portforward}/<token>), upgraded with one HTTP request.
//
// Blocking I/O on a plain TCP socket with TCP_NODELAY (without it, each small SYN_STREAM
// waits ~40 ms for a delayed ACK). Threads: one thread reads (Read), any thread may write
// (SendAll serializes writers with a mutex); Shutdown() from any thread wakes a blocked Read.
// The fd is closed by the destructor.
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace mk8s::kubelet {

struct UpgradeResponse {
  int status = 0;                                            // 101 on success
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case
  std::string body;  // for a non-101 answer: what arrived of the body (capped)
  std::string HeaderValue(std::string_view lower_name) const;
};

class UpstreamSocket {
 public:
  // Connects to `url` (http://host:port/path; https is refused), sends
  // "<method> /path HTTP/1.1" with `headers` plus Host, and reads the response head within
  // `timeout`. On a 101 the socket is ready for the new protocol (bytes that came after the
  // head are returned first by Read). A non-101 answer is returned too, in `response()`;
  // connection failures are kUnavailable.
  static Result<std::unique_ptr<UpstreamSocket>> Upgrade(
      const std::string& url, const std::string& method,
      const std::vector<std::pair<std::string, std::string>>& headers,
      std::chrono::milliseconds timeout);
  ~UpstreamSocket();

  const UpgradeResponse& response() const { return response_; }
  // Blocks until bytes arrive; empty means EOF, error or Shutdown.
  std::string Read();
  // Writes everything (blocking); false once the socket failed or was shut down.
  bool SendAll(std::string_view bytes);
  // Shuts the socket down both ways (wakes Read). Idempotent, any thread.
  void Shutdown();
  // The descriptor (owned by this object; dup() it to keep a handle for shutdown()).
  int fd() const { return fd_; }

 private:
  explicit UpstreamSocket(int fd) : fd_(fd) {}
  const int fd_;
  UpgradeResponse response_;
  std::string early_;  // bytes read past the response head
  std::mutex write_mu_;
};

}  // namespace mk8s::kubelet
