// A small pool that spreads one batch of independent work items (the watch cache's deliveries
// of one batch of events, one item per group of watchers) over the calling thread and a few helper threads,
// so one event reaching 1,000 HTTP watchers is encrypted and sent on every core instead of one.
//
// Run(count, work) calls work(i) exactly once for each i in [0, count) and returns only when all
// those calls have returned. Items are taken in index order from a shared cursor by whichever
// thread is free (the caller starts at once, helpers join when they wake), so a helper that the
// OS is slow to schedule delays nothing: the caller then takes its share, and Run waits only for
// helpers that are inside an item, never for one that has not woken yet. Different items may run
// at the same time on different threads; one item runs on one thread.
//
// Threads: Run is called by one thread at a time (the watch cache's dispatcher) and is not
// reentrant (a work item must not call Run). The helpers are owned and joined by the pool.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace mk8s::apiserver {

class FanoutPool {
 public:
  // `threads` is the total, the caller included: 1 runs everything on the caller. 0 means one
  // per core (std::thread::hardware_concurrency), at most kMaxAutoThreads.
  // Batches of fewer than `min_parallel` items run on the caller alone: waking a helper costs
  // more than a few deliveries.
  static constexpr size_t kMaxAutoThreads = 4;
  explicit FanoutPool(size_t threads, size_t min_parallel = 32);
  ~FanoutPool();  // joins the helpers; no Run may be in progress
  FanoutPool(const FanoutPool&) = delete;
  FanoutPool& operator=(const FanoutPool&) = delete;

  void Run(size_t count, const std::function<void(size_t)>& work);

  // Threads that run items, the caller included.
  size_t threads() const { return helpers_.size() + 1; }

 private:
  void Helper();
  void Drain();  // takes items off the cursor until none is left

  const size_t min_parallel_;
  std::vector<std::thread> helpers_;

  // The batch in progress. job_ and count_ are written under mu_ before the generation moves
  // and read by a helper only after it saw that generation under mu_; next_ is the cursor.
  const std::function<void(size_t)>* job_ = nullptr;
  size_t count_ = 0;
  std::atomic<size_t> next_{0};

  std::mutex mu_;
  std::condition_variable wake_cv_;  // helpers wait here for a new generation
  std::condition_variable done_cv_;  // Run waits here for running_ to reach 0
  uint64_t generation_ = 0;          // GUARDED_BY(mu_): bumped per parallel batch
  bool open_ = false;                // GUARDED_BY(mu_): helpers may still join the batch
  size_t running_ = 0;               // GUARDED_BY(mu_): helpers inside Drain
  bool stopping_ = false;            // GUARDED_BY(mu_)
};

}  // namespace mk8s::apiserver
