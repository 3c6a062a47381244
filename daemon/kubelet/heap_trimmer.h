// HeapTrimmer: hands the heap that a burst of pod syncs freed back to the OS once the kubelet
// is quiet again.
//
// Why: a sync allocates on whichever of the queue workers runs it, so a burst of pod starts or
// deletions leaves freed memory spread over several glibc arenas. glibc returns an arena's free
// pages only from its top, so most of that memory stays in mk8sd's RSS for good (measured:
// ~3 MB after a 100-pod rollout scaled back to 30, tests/bench/pod_bench.py). malloc_trim(0)
// releases the free pages of every arena; it costs ~10 ms of CPU on mk8sd's ~30 MB heap
// (measured), so it runs only after work has happened, once a tick has passed without any, and
// at most once per `min_interval` (the 30 s resync makes that one trim per 30 s when idle).
//
// Threads: NoteWork() from any thread (lock-free); Tick() from one thread (the relist loop).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>

namespace mk8s::kubelet {

class HeapTrimmer {
 public:
  using Clock = std::chrono::steady_clock;
  // `trim` defaults to malloc_trim(0) (glibc); tests inject a counter.
  explicit HeapTrimmer(std::chrono::milliseconds min_interval,
                       std::function<void()> trim = nullptr);

  // A unit of work finished (a pod sync); the heap may hold garbage from it.
  void NoteWork() { work_.fetch_add(1, std::memory_order_relaxed); }

  // Called periodically. Trims (and returns true) when work was noted before the previous
  // tick, none since, `idle` is true (e.g. the work queue is empty) and the last trim is at
  // least `min_interval` old.
  bool Tick(Clock::time_point now, bool idle);

 private:
  const std::chrono::milliseconds min_interval_;
  std::function<void()> trim_;
  std::atomic<uint64_t> work_{0};
  // Tick() only:
  uint64_t seen_at_last_tick_ = 0;
  uint64_t seen_at_last_trim_ = 0;
  Clock::time_point last_trim_{};
};

}  // namespace mk8s::kubelet
