// A single thread that runs callbacks at given times (watch timeouts, bookmarks). Callbacks must
// be short and must not block. Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <unordered_map>

namespace mk8s::apiserver {

class TimerQueue {
 public:
  using Clock = std::chrono::steady_clock;
  TimerQueue();
  ~TimerQueue();  // drops pending callbacks without running them

  // Runs `callback` at `when` (on the timer thread). Returns an id for Cancel.
  uint64_t Schedule(Clock::time_point when, std::function<void()> callback);
  void Cancel(uint64_t id);

 private:
  void Run();
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // GUARDED_BY(mu_)
  uint64_t next_id_ = 1;   // GUARDED_BY(mu_)
  using Timers = std::multimap<Clock::time_point, std::pair<uint64_t, std::function<void()>>>;
  Timers timers_;  // GUARDED_BY(mu_)
  // Each pending timer by id, so Cancel is O(log n): 1,000 watches ending at once must not cost
  // 1,000 scans of 1,000 timers. GUARDED_BY(mu_)
  std::unordered_map<uint64_t, Timers::iterator> by_id_;
  std::thread thread_;
};

}  // namespace mk8s::apiserver
