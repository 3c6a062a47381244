// One version of one stored object, parsed once and shared (immutable) by the watch cache, lists,
// gets and every watcher. Internal to the API server (includes nlohmann/json).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "apiserver/registry/watch_frame.h"

namespace mk8s::apiserver {

class CachedObject {
 public:
  // `object` must already carry metadata.resourceVersion == revision.
  CachedObject(std::string key, int64_t revision, nlohmann::json object)
      : key_(std::move(key)), revision_(revision), object_(std::move(object)) {}

  const std::string& key() const { return key_; }
  int64_t revision() const { return revision_; }
  const nlohmann::json& object() const { return object_; }
  // The object's JSON text, serialized on first use and cached (thread-safe).
  const std::string& Json() const {
    std::call_once(serialized_once_, [this] {
      serialized_ = object_.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    });
    return serialized_;
  }

 private:
  const std::string key_;
  const int64_t revision_;
  const nlohmann::json object_;
  mutable std::once_flag serialized_once_;
  mutable std::string serialized_;
};

using CachedObjectPtr = std::shared_ptr<const CachedObject>;

// The object of `cached` as a pointer to its JSON that shares ownership of the CachedObject
// (aliasing constructor): what in-process clients receive, so the cache and every in-process
// informer hold one copy of each object version.
inline std::shared_ptr<const nlohmann::json> SharedObjectOf(const CachedObjectPtr& cached) {
  if (!cached) return nullptr;
  return std::shared_ptr<const nlohmann::json>(cached, &cached->object());
}

enum class WatchEventType { kAdded, kModified, kDeleted };

struct CacheEvent {
  WatchEventType type = WatchEventType::kAdded;
  CachedObjectPtr object;      // the new state (for kDeleted: the last state, at the delete's RV)
  CachedObjectPtr previous;    // the state before, if known (lets selector watchers see transitions)
  int64_t revision = 0;
  WatchFrameCache frames;      // this event's HTTP watch frames, built once (rest_read.cc)
};

using CacheEventPtr = std::shared_ptr<const CacheEvent>;

// Parses a stored value and stamps metadata.resourceVersion. Returns null JSON if unparsable.
nlohmann::json ParseStoredObject(const std::string& value, int64_t revision);

}  // namespace mk8s::apiserver
