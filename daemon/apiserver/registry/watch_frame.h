// The wire frames of one watch event, built once and shared by every HTTP watcher that sends the
// same bytes (same served form, same event type). Internal to the API server.
//
// A frame is `{"type":"<TYPE>","object":<object JSON>}\n`. With 1,000 watchers on a namespace,
// one event then costs one frame instead of 1,000 copies; each stream keeps a reference to the
// immutable string until it is written (http::ResponseStream::WriteShared).
//
// Threads: Get is thread-safe (the dispatcher and a watch replaying history may ask at once);
// `build` runs at most once per (variant, type), under the cache's own small lock.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace mk8s::apiserver {

class WatchFrameCache {
 public:
  using Frame = std::shared_ptr<const std::string>;

  // The frame for `variant` (what else shapes the bytes, e.g. the served resource; compared by
  // address) and `type` ("ADDED", "MODIFIED", "DELETED"; a string that outlives the cache, such
  // as a literal), built by `build` the first time.
  Frame Get(const void* variant, const char* type,
            const std::function<std::string()>& build) const {
    std::lock_guard lock(mu_);
    for (const Entry& entry : entries_) {
      if (entry.variant == variant && std::string_view(entry.type) == type) return entry.frame;
    }
    entries_.push_back(Entry{variant, type, std::make_shared<const std::string>(build())});
    return entries_.back().frame;
  }

 private:
  struct Entry {
    const void* variant;
    const char* type;
    Frame frame;
  };
  mutable std::mutex mu_;
  mutable std::vector<Entry> entries_;  // GUARDED_BY(mu_); one or two entries in practice
};

}  // namespace mk8s::apiserver
