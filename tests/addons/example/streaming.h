// The example addon's streamed routes (SDK ABI 1.2): each handler begins a stream and hands it
// to a thread the addon owns, which writes the body and ends it.
//   GET /addons/example/stream?n=N&size=S       N chunks of S bytes (application/octet-stream):
//       chunk k is the alphabet rotated left by k % 26, repeated and cut to S bytes;
//   GET /addons/example/follow?lines=L&interval_ms=I   "line <k>\n" every I ms (text/plain),
//       L lines, or until the client leaves or the addon stops when L is 0 (like `logs -f`);
//   GET /addons/example/streams                   what the producer threads saw, as JSON:
//       {"open":…,"completed":…,"closed":…,"timed_out":…} ("closed": a write answered
//       MK8S_ERR_CLOSED because the client left or the host ended the stream).
//
// Threads: Start and Stop on the addon's host thread (OnStart / OnStop); handlers there too;
// producers on their own threads, joined by Stop. mu_ guards producers_.
#pragma once

#include <mk8s/addon.hpp>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <list>
#include <mutex>
#include <thread>

namespace example {

class StreamingRoutes {
 public:
  explicit StreamingRoutes(mk8s::sdk::Host& host) : host_(host) {}
  ~StreamingRoutes() { Stop(); }

  // Serves the three routes.
  void Start();
  // Drops the routes and joins every producer. The host ended the open streams before OnStop,
  // so producers blocked in a write return at once (MK8S_ERR_CLOSED); sleeping ones are woken.
  void Stop() noexcept;

 private:
  struct Producer {
    std::thread thread;
    std::atomic<bool> done{false};
  };
  // Runs `body` on a new producer thread; reaps the finished ones.
  void Spawn(std::function<void()> body);
  // Waits `ms`, or less when Stop begins; false when stopping.
  bool Pause(int64_t ms);
  // Counts how a producer ended.
  void Finished(mk8s_status_t status);

  mk8s::sdk::HttpResponse Blob(const mk8s::sdk::HttpRequest& request);
  mk8s::sdk::HttpResponse Follow(const mk8s::sdk::HttpRequest& request);

  mk8s::sdk::Host& host_;
  mk8s::sdk::HttpRoute stream_, follow_, streams_;
  std::mutex mu_;
  std::condition_variable wake_;
  bool stopping_ = false;          // GUARDED_BY(mu_)
  std::list<Producer> producers_;  // GUARDED_BY(mu_)
  std::atomic<int> open_{0}, completed_{0}, closed_{0}, timed_out_{0};
};

}  // namespace example
