// HTTPS client pieces for api_bench: a blocking keep-alive connection and an asynchronous watch
// fan-out, both over plain OpenSSL (no Asio or Beast: the load tool shares the 2 cores with the
// mk8sd it measures). Traffic goes to 127.0.0.1 only.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace mk8s::bench {

// What a client needs to reach mk8sd's API server as the admin user (from its kubeconfig).
struct TlsConfig {
  int port = 0;
  std::string ca_pem;    // cluster CA, verifies the server
  std::string cert_pem;  // admin client certificate
  std::string key_pem;   // its private key
};

// Reads <kubeconfig> (as written by mk8sd: base64 *-data fields, server https://127.0.0.1:PORT).
// Returns false with `error` set when a field is missing or malformed.
bool LoadKubeconfig(const std::string& path, TlsConfig* config, std::string* error);

struct Response {
  int status = 0;  // HTTP status; 0 when the transport failed
  std::string body;
};

// One keep-alive TLS connection with blocking requests. Every blocking socket read or write is
// bounded by `timeout`.
// Owned and used by one thread at a time.
class ApiConnection {
 public:
  // Connects and handshakes; nullptr (with `error`) on failure.
  static std::unique_ptr<ApiConnection> Connect(const TlsConfig& config,
                                                std::chrono::milliseconds timeout,
                                                std::string* error);
  virtual ~ApiConnection() = default;
  // Sends one request (JSON body if non-empty) and reads the whole response. On a transport error
  // returns false with `error` set; the connection is then unusable (reconnect).
  virtual bool Request(const char* method, const std::string& target, const std::string& body,
                       Response* response, std::string* error) = 0;
};

// N watch streams (e.g. 1,000) read by `io_threads` epoll loops over non-blocking OpenSSL
// (watch_fanout.cc: lean, so the readers take little of the CPU they share with mk8sd). Each
// stream scans its decrypted bytes for object names "<prefix><k>\"" (k < kMaxMarks) and stamps
// the arrival time of the first one per k. Start/Stamps are used by one controlling thread; the
// setup and reader threads only write stamps.
class WatchFanout {
 public:
  static constexpr int kMaxMarks = 64;
  using Clock = std::chrono::steady_clock;

  // Opens `watchers` streams GET `target` (`parallel` setup threads, at most 16, each opening one
  // stream at a time) and waits until every stream has its response head or `deadline` passes.
  // `prefix` is at most 24 bytes. Returns nullptr (with `first_error`) if the TLS or epoll setup
  // fails; otherwise sets `established` and the first stream error, if any.
  static std::unique_ptr<WatchFanout> Start(const TlsConfig& config, const std::string& target,
                                            const std::string& prefix, int watchers,
                                            int io_threads, int parallel,
                                            std::chrono::milliseconds deadline, int* established,
                                            std::string* first_error);
  virtual ~WatchFanout() = default;  // stops the io threads and closes every stream

  // How many streams have stamped mark k so far (any thread).
  virtual int Received(int mark) const = 0;
  // Stops the io threads; after this, Stamps() is stable.
  virtual void Stop() = 0;
  // Arrival times of mark k, one per stream that saw it. Call after Stop().
  virtual std::vector<Clock::time_point> Stamps(int mark) const = 0;
};

}  // namespace mk8s::bench
