// WatchFanout (api_client.h): 1,000 watch streams read by a lean epoll loop over plain OpenSSL.
//
// Real watchers are other processes on other machines; here they share the 2 cores with mk8sd,
// so every microsecond the readers spend per event is taken from the daemon being measured. The
// readers therefore do the least a TLS client can: one epoll set per io thread (level-triggered),
// non-blocking SSL_read with read-ahead (one recv per TLS record burst), a memmem scan of the
// decrypted bytes for the marker, into one buffer per thread (no allocation per read), and no
// Asio/Beast machinery per event. What is measured is unchanged: the time from a write's send to
// the moment each stream has decrypted the event naming it.
//
// Threads: Start's caller controls; `parallel` setup threads open the streams (blocking connect,
// handshake, request and response head, each bounded by a timeout) and hand each one to a reader
// thread's epoll set; from then on only that reader touches the stream until Stop joins it.
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <thread>

#include "api_client.h"
#include "tls_setup.h"

namespace mk8s::bench {
namespace {

constexpr int kSetupTimeoutSeconds = 30;
constexpr size_t kReadBytes = 16 * 1024;  // one TLS record's plaintext at most
constexpr size_t kCarryBytes = 32;        // unscanned tail kept across reads (a split marker)

// One watch stream. Its reader thread alone touches it once set up.
struct Stream {
  int fd = -1;
  SSL* ssl = nullptr;
  bool open = false;  // in a reader's epoll set
  size_t carry_len = 0;
  char carry[kCarryBytes];
  std::array<bool, WatchFanout::kMaxMarks> seen{};
  std::array<WatchFanout::Clock::time_point, WatchFanout::kMaxMarks> stamps{};
};

class LeanWatchFanout final : public WatchFanout {
 public:
  ~LeanWatchFanout() override {
    Stop();
    for (auto& stream : streams_) {
      if (stream->ssl != nullptr) SSL_free(stream->ssl);
      if (stream->fd >= 0) ::close(stream->fd);
    }
    for (int ep : epolls_) ::close(ep);
    if (stop_fd_ >= 0) ::close(stop_fd_);
    if (ctx_ != nullptr) SSL_CTX_free(ctx_);
  }

  bool Init(const TlsConfig& config, const std::string& target, const std::string& prefix,
            int watchers, int io_threads, std::string* error) {
    ctx_ = NewClientContext(config, error);
    if (ctx_ == nullptr) return false;
    port_ = config.port;
    request_ = "GET " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n";
    prefix_ = prefix;
    if (prefix_.empty() || prefix_.size() + 8 > kCarryBytes) {
      *error = "marker prefix must be 1.." + std::to_string(kCarryBytes - 8) + " bytes";
      return false;
    }
    stop_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    for (int t = 0; t < std::max(1, io_threads); ++t) {
      const int ep = ::epoll_create1(EPOLL_CLOEXEC);
      epoll_event event{};
      event.events = EPOLLIN;
      event.data.ptr = nullptr;  // the stop signal
      if (ep < 0 || stop_fd_ < 0 || ::epoll_ctl(ep, EPOLL_CTL_ADD, stop_fd_, &event) != 0) {
        *error = std::string("epoll setup: ") + std::strerror(errno);
        if (ep >= 0) ::close(ep);
        return false;
      }
      epolls_.push_back(ep);
    }
    for (int i = 0; i < watchers; ++i) streams_.push_back(std::make_unique<Stream>());
    return true;
  }

  void Run(int parallel) {
    for (int ep : epolls_) readers_.emplace_back([this, ep] { ReadLoop(ep); });
    const int setup = std::clamp(parallel, 1, 16);
    for (int t = 0; t < setup; ++t) setups_.emplace_back([this] { SetupLoop(); });
  }

  int established() const { return established_.load(); }
  int failed() const { return failed_.load(); }
  std::string first_error() const {
    std::lock_guard<std::mutex> lock(mu_);
    return first_error_;
  }

  int Received(int mark) const override { return received_[mark].load(std::memory_order_acquire); }

  void Stop() override {
    if (stopped_) return;
    stopped_ = true;
    stopping_ = true;
    for (auto& thread : setups_) thread.join();
    const uint64_t one = 1;
    if (stop_fd_ >= 0 && ::write(stop_fd_, &one, sizeof(one)) < 0) {
      // Cannot happen with a fresh eventfd; the readers would then block until killed.
    }
    for (auto& thread : readers_) thread.join();
  }

  std::vector<Clock::time_point> Stamps(int mark) const override {
    std::vector<Clock::time_point> out;
    for (const auto& stream : streams_) {
      if (stream->seen[mark]) out.push_back(stream->stamps[mark]);
    }
    return out;
  }

 private:
  void Fail(const std::string& what) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (first_error_.empty()) first_error_ = what;
    }
    ++failed_;
  }

  void SetupLoop() {
    for (size_t index = next_.fetch_add(1); index < streams_.size() && !stopping_;
         index = next_.fetch_add(1)) {
      std::string error;
      if (Open(streams_[index].get(), static_cast<int>(index), &error)) {
        ++established_;
      } else {
        Fail(error);
      }
    }
  }

  // Connects, handshakes, sends the request, reads the 200 head (blocking, bounded), scans what
  // came with it, then hands the stream to reader `index % readers` (non-blocking from there).
  bool Open(Stream* s, int index, std::string* error) {
    s->fd = ConnectLoopback(port_, std::chrono::seconds(kSetupTimeoutSeconds), error);
    if (s->fd < 0) return false;
    s->ssl = SSL_new(ctx_);
    SSL_set_fd(s->ssl, s->fd);
    if (SSL_connect(s->ssl) != 1) {
      *error = "handshake: " + LastTlsError();
      return false;
    }
    if (SSL_write(s->ssl, request_.data(), static_cast<int>(request_.size())) <= 0) {
      *error = "write: " + LastTlsError();
      return false;
    }
    std::string head;
    char buffer[4096];
    size_t end = std::string::npos;
    while (end == std::string::npos) {
      const int n = SSL_read(s->ssl, buffer, sizeof(buffer));
      if (n <= 0) {
        *error = "watch header: " + LastTlsError();
        return false;
      }
      head.append(buffer, static_cast<size_t>(n));
      end = head.find("\r\n\r\n");
      if (end == std::string::npos && head.size() > 64 * 1024) {
        *error = "watch header: no end of head in 64 KiB";
        return false;
      }
    }
    if (head.compare(0, 13, "HTTP/1.1 200 ") != 0) {
      *error = "watch status: " + head.substr(0, head.find("\r\n"));
      return false;
    }
    const auto now = Clock::now();
    ScanInto(s, head.data() + end + 4, head.size() - end - 4, now);
    // Non-blocking from here; read what the TLS layer already holds before epoll takes over
    // (epoll only sees the socket, not bytes buffered inside SSL).
    ::fcntl(s->fd, F_SETFL, ::fcntl(s->fd, F_GETFL) | O_NONBLOCK);
    thread_local std::array<char, kCarryBytes + kReadBytes> scratch;
    if (!ReadAvailable(s, scratch.data(), /*drain=*/true)) return true;  // ended already
    epoll_event event{};
    event.events = EPOLLIN | EPOLLRDHUP;
    event.data.ptr = s;
    if (::epoll_ctl(epolls_[index % epolls_.size()], EPOLL_CTL_ADD, s->fd, &event) != 0) {
      *error = std::string("epoll_ctl: ") + std::strerror(errno);
      return false;
    }
    s->open = true;
    return true;
  }

  void ReadLoop(int ep) {
    // Per thread: the carry of the stream being read, then the decrypted bytes.
    std::array<char, kCarryBytes + kReadBytes> buffer;
    std::array<epoll_event, 256> events;
    while (true) {
      const int n = ::epoll_wait(ep, events.data(), static_cast<int>(events.size()), -1);
      if (n < 0) {
        if (errno == EINTR) continue;
        return;
      }
      for (int i = 0; i < n; ++i) {
        auto* s = static_cast<Stream*>(events[i].data.ptr);
        if (s == nullptr) return;  // Stop
        if (!ReadAvailable(s, buffer.data(), /*drain=*/false)) {
          ::epoll_ctl(ep, EPOLL_CTL_DEL, s->fd, nullptr);
          s->open = false;
        }
      }
    }
  }

  // Reads and scans decrypted bytes. Without `drain` it stops once the TLS layer holds nothing
  // more (level-triggered epoll reports the socket again if it has more), which saves the
  // EAGAIN recv per event. Returns false once the stream ended (EOF, error).
  bool ReadAvailable(Stream* s, char* buffer, bool drain) {
    while (true) {
      std::memcpy(buffer, s->carry, s->carry_len);
      const int n = SSL_read(s->ssl, buffer + s->carry_len, static_cast<int>(kReadBytes));
      if (n <= 0) {
        const int reason = SSL_get_error(s->ssl, n);
        ERR_clear_error();
        return reason == SSL_ERROR_WANT_READ;
      }
      Scan(s, buffer, s->carry_len + static_cast<size_t>(n), Clock::now());
      if (!drain && SSL_has_pending(s->ssl) == 0) return true;
    }
  }

  // Scans bytes that did not come through the read buffer (the part read with the head).
  void ScanInto(Stream* s, const char* data, size_t size, Clock::time_point now) {
    std::string joined(s->carry, s->carry_len);
    joined.append(data, size);
    Scan(s, joined.data(), joined.size(), now);
  }

  // Stamps each "<prefix><k>\"" seen for the first time in [data, data + size), whose first
  // carry_len bytes are the previous read's tail; keeps this read's tail as the next carry.
  void Scan(Stream* s, const char* data, size_t size, Clock::time_point now) {
    const char* at = data;
    const char* const end = data + size;
    while (true) {
      const void* hit = ::memmem(at, static_cast<size_t>(end - at), prefix_.data(), prefix_.size());
      if (hit == nullptr) break;
      const char* digit = static_cast<const char*>(hit) + prefix_.size();
      int mark = 0;
      const char* p = digit;
      while (p < end && *p >= '0' && *p <= '9' && p - digit < 6) mark = mark * 10 + (*p++ - '0');
      if (p == end) break;  // may continue in the next read: the tail is carried
      if (p > digit && *p == '"' && mark < kMaxMarks && !s->seen[mark]) {
        s->stamps[mark] = now;
        s->seen[mark] = true;
        received_[mark].fetch_add(1, std::memory_order_release);
      }
      at = p;
    }
    // A marker split by this read ends within the last prefix + 7 bytes (seen[] ignores one that
    // is scanned twice).
    s->carry_len = std::min(size, prefix_.size() + 7);
    std::memmove(s->carry, end - s->carry_len, s->carry_len);
  }

  SSL_CTX* ctx_ = nullptr;
  int port_ = 0;
  std::string request_;
  std::string prefix_;
  int stop_fd_ = -1;
  std::vector<int> epolls_;                     // one per reader thread
  std::vector<std::unique_ptr<Stream>> streams_;  // fixed after Init
  std::vector<std::thread> readers_;
  std::vector<std::thread> setups_;
  std::atomic<size_t> next_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<int> established_{0};
  std::atomic<int> failed_{0};
  std::array<std::atomic<int>, kMaxMarks> received_{};
  mutable std::mutex mu_;
  std::string first_error_;  // guarded by mu_
  bool stopped_ = false;     // controlling thread only
};

}  // namespace

std::unique_ptr<WatchFanout> WatchFanout::Start(const TlsConfig& config, const std::string& target,
                                                const std::string& prefix, int watchers,
                                                int io_threads, int parallel,
                                                std::chrono::milliseconds deadline,
                                                int* established, std::string* first_error) {
  auto fanout = std::make_unique<LeanWatchFanout>();
  if (!fanout->Init(config, target, prefix, watchers, io_threads, first_error)) return nullptr;
  fanout->Run(parallel);
  const auto until = Clock::now() + deadline;
  while (Clock::now() < until && fanout->established() + fanout->failed() < watchers) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // poll interval
  }
  *established = fanout->established();
  *first_error = fanout->first_error();
  return fanout;
}

}  // namespace mk8s::bench
