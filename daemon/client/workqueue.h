// WorkQueue: the rate-limited key queue every controller loop runs on (client-go semantics).
//
//  - Add dedups: an item already waiting is not queued twice. An item being processed (between
//    Get and Done) that is added again is queued once more when Done is called, so one key is never
//    processed by two workers at once.
//  - Get blocks until an item is ready or the queue is shut down and drained (then nullopt).
//  - AddRateLimited waits max(per-item exponential backoff, overall token bucket) before Add;
//    Forget resets the item's backoff. AddAfter adds after a delay, AddAt at a time of the queue's
//    clock (an earlier time wins; a time already past adds at once).
//
// Thread-safe: any thread may call any method. Delays run on the Clock's timer thread (FakeClock:
// inside Advance()). Items are strings (normally "namespace/name" keys).
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "client/clock.h"

namespace mk8s::client {

struct RateLimiterOptions {
  std::chrono::milliseconds base_delay{5};   // first retry delay; doubles per failure
  std::chrono::milliseconds max_delay{1000 * 1000};  // 1000 s cap
  double qps = 10;                            // overall token bucket (all items)
  int burst = 100;
};

class WorkQueue {
 public:
  // `clock` (not owned) must outlive the queue; nullptr = RealClock::Get().
  explicit WorkQueue(Clock* clock = nullptr, RateLimiterOptions options = {});
  ~WorkQueue();  // ShutDown() and cancel delayed adds
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  void Add(const std::string& item);
  std::optional<std::string> Get();
  // As Get, but gives up at `deadline` (returns nullopt; check ShuttingDown()).
  std::optional<std::string> GetUntil(Clock::TimePoint real_deadline);
  void Done(const std::string& item);

  void AddAfter(const std::string& item, Clock::Duration delay);
  void AddAt(const std::string& item, Clock::TimePoint when);
  void AddRateLimited(const std::string& item);
  void Forget(const std::string& item);
  int NumRequeues(const std::string& item);
  // The delay AddRateLimited would use now (consumes a backoff step and a token); for tests.
  Clock::Duration When(const std::string& item);

  // Stops accepting items; Get() returns the remaining ones, then nullopt. Idempotent.
  void ShutDown();
  bool ShuttingDown();
  size_t Len();  // items waiting (not counting delayed or processing ones)

 private:
  struct State;
  std::shared_ptr<State> state_;  // timers hold weak references
};

}  // namespace mk8s::client
