#include "kubelet/heap_trimmer.h"

#include <malloc.h>

#include <utility>

namespace mk8s::kubelet {

HeapTrimmer::HeapTrimmer(std::chrono::milliseconds min_interval, std::function<void()> trim)
    : min_interval_(min_interval), trim_(std::move(trim)) {
  if (!trim_) trim_ = [] { malloc_trim(0); };
}

bool HeapTrimmer::Tick(Clock::time_point now, bool idle) {
  const uint64_t work = work_.load(std::memory_order_relaxed);
  const bool quiet_since_last_tick = work == seen_at_last_tick_;
  seen_at_last_tick_ = work;
  if (!idle || !quiet_since_last_tick || work == seen_at_last_trim_) return false;
  if (last_trim_ != Clock::time_point{} && now - last_trim_ < min_interval_) return false;
  seen_at_last_trim_ = work;
  last_trim_ = now;
  trim_();
  return true;
}

}  // namespace mk8s::kubelet
