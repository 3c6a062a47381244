// Clock: the time seam of the client library (work queue delays, informer backoff). RealClock
// runs timers on one lazily started thread; FakeClock runs them on the thread that calls
// Advance(), so tests are deterministic.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

namespace mk8s::client {

class Clock {
 public:
  using Duration = std::chrono::steady_clock::duration;
  using TimePoint = std::chrono::steady_clock::time_point;

  virtual ~Clock() = default;
  virtual TimePoint Now() = 0;
  // Runs `fn` once at or after `when` on the clock's timer thread (FakeClock: inside Advance()).
  // `fn` must be cheap and must not call Cancel() on its own id. Returns an id for Cancel().
  virtual uint64_t Schedule(TimePoint when, std::function<void()> fn) = 0;
  // Drops a pending timer. Returns false if it already ran or is running.
  virtual bool Cancel(uint64_t id) = 0;
};

// The process-wide steady clock. Thread-safe. Get() returns a singleton that is never destroyed.
class RealClock : public Clock {
 public:
  static RealClock* Get();
  RealClock() = default;
  ~RealClock() override;
  TimePoint Now() override { return std::chrono::steady_clock::now(); }
  uint64_t Schedule(TimePoint when, std::function<void()> fn) override;
  bool Cancel(uint64_t id) override;

 private:
  void Run();
  std::mutex mu_;
  std::condition_variable cv_;
  // (due time, id) -> callback. GUARDED_BY(mu_)
  std::map<std::pair<TimePoint, uint64_t>, std::function<void()>> timers_;
  std::map<uint64_t, TimePoint> due_;  // id -> due time. GUARDED_BY(mu_)
  uint64_t next_id_ = 1;               // GUARDED_BY(mu_)
  bool stop_ = false;                  // GUARDED_BY(mu_)
  std::thread thread_;                 // started by the first Schedule()
};

// A manual clock for tests. Now() only moves on Advance(); due timers run, in due order (ties in
// scheduling order), on the thread calling Advance(), without the clock's lock held.
class FakeClock : public Clock {
 public:
  FakeClock() : now_(TimePoint() + std::chrono::hours(1)) {}
  TimePoint Now() override;
  uint64_t Schedule(TimePoint when, std::function<void()> fn) override;
  bool Cancel(uint64_t id) override;
  void Advance(Duration d);
  size_t PendingTimers();

 private:
  std::mutex mu_;
  TimePoint now_;  // GUARDED_BY(mu_)
  std::map<std::pair<TimePoint, uint64_t>, std::function<void()>> timers_;  // GUARDED_BY(mu_)
  std::map<uint64_t, TimePoint> due_;                                       // GUARDED_BY(mu_)
  uint64_t next_id_ = 1;                                                    // GUARDED_BY(mu_)
};

}  // namespace mk8s::client
