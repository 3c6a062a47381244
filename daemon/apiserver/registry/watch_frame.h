// The wire frames of one watch event, built once and shared by every HTTP watcher that sends the
// same bytes (same served form, same event type). Internal to the API server.
//
// A frame is `{"type":"<TYPE>","object":<object JSON>}\n`. With 1,000 watchers on a namespace,
// one event then costs one frame instead of 1,000 copies; each stream encrypts straight from the
// immutable string or keeps a reference until it is written (http::ResponseStream::WriteShared).
//
// Threads: Get is thread-safe (the fan-out threads and a watch replaying history may ask at
// once). Lookups of a built frame take no lock (the watch cache's fan-out threads all ask for
// the same frame); `build` runs at most once per (variant, type), under the cache's small lock.
#pragma once

#include <array>
#include <atomic>
#include <cstring>
#include <deque>
#include <memory>
#include <mutex>
#include <string>

namespace mk8s::apiserver {

class WatchFrameCache {
 public:
  using Frame = std::shared_ptr<const std::string>;

  // The frame for `variant` (what else shapes the bytes, e.g. the served resource; compared by
  // address) and `type` ("ADDED", "MODIFIED", "DELETED"; a string that outlives the cache, such
  // as a literal), built by `build()` (returning std::string) the first time. The reference
  // stays valid, and the frame unchanged, as long as the cache lives.
  template <typename Build>
  const Frame& Get(const void* variant, const char* type, Build&& build) const {
    const size_t published = published_.load(std::memory_order_acquire);
    for (size_t i = 0; i < published; ++i) {
      if (Same(slots_[i], variant, type)) return slots_[i].frame;
    }
    std::lock_guard lock(mu_);
    const size_t now_published = published_.load(std::memory_order_relaxed);
    for (size_t i = 0; i < now_published; ++i) {
      if (Same(slots_[i], variant, type)) return slots_[i].frame;
    }
    if (overflow_) {
      for (const Entry& entry : *overflow_) {
        if (Same(entry, variant, type)) return entry.frame;
      }
    }
    Entry entry{variant, type, std::make_shared<const std::string>(build())};
    if (now_published < kSlots) {
      slots_[now_published] = std::move(entry);
      published_.store(now_published + 1, std::memory_order_release);
      return slots_[now_published].frame;
    }
    if (!overflow_) overflow_ = std::make_unique<std::deque<Entry>>();
    overflow_->push_back(std::move(entry));  // a deque: earlier references stay valid
    return overflow_->back().frame;
  }

 private:
  struct Entry {
    const void* variant = nullptr;
    const char* type = nullptr;
    Frame frame;
  };
  static bool Same(const Entry& entry, const void* variant, const char* type) {
    return entry.variant == variant && (entry.type == type || std::strcmp(entry.type, type) == 0);
  }
  // One or two frames per event in practice; the cache lives in every history entry, so small.
  static constexpr size_t kSlots = 2;

  mutable std::mutex mu_;  // serializes builds
  // slots_[0, published_) are immutable once published (release) and read without the lock.
  mutable std::array<Entry, kSlots> slots_;
  mutable std::atomic<size_t> published_{0};
  mutable std::unique_ptr<std::deque<Entry>> overflow_;  // GUARDED_BY(mu_); rarely used
};

}  // namespace mk8s::apiserver
