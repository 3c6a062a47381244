// One version of one stored object, parsed once and shared (immutable) by the watch cache, lists,
// gets and every watcher. Internal to the API server (includes nlohmann/json).
//
// Two forms (memory, issue 4): a parsed object (~7x its text in heap nodes), whose text is
// serialized on first use; or a compact one holding only the text, for versions that are no
// longer current and are kept by the watch history alone. A compact object parses its text on the
// first object() call and keeps the result; the watch cache replays history from ephemeral copies
// (Reparsed) so the compact form stays small.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "apiserver/registry/stored_bytes.h"
#include "apiserver/registry/watch_frame.h"

namespace mk8s::apiserver {

class CachedObject;
using CachedObjectPtr = std::shared_ptr<const CachedObject>;

class CachedObject {
 public:
  // `object` must already carry metadata.resourceVersion == revision.
  CachedObject(std::string key, int64_t revision, nlohmann::json object)
      : key_(std::move(key)), revision_(revision), object_(std::move(object)) {}
  // The same, with the bytes its write stored (`object` without its resourceVersion, as
  // SerializeStored gives them; may be null): the text is then spliced from them on first use
  // instead of serializing the object again, until ReleaseStoredBytes().
  CachedObject(std::string key, int64_t revision, nlohmann::json object,
               std::shared_ptr<const StoredBytes> stored)
      : key_(std::move(key)), revision_(revision), object_(std::move(object)),
        stored_(std::move(stored)) {}

  // A compact version of `of`: its text only (shared with `of`, not copied; serialized now if it
  // was not yet).
  static CachedObjectPtr Compact(const CachedObject& of) {
    return CachedObjectPtr(new CachedObject(of.key_, of.revision_, of.SerializedShared()));
  }
  // For a compact object: a fresh copy sharing its text that parses on its own first object()
  // call, so a history replay leaves the compact one small. A parsed object is returned as is.
  static CachedObjectPtr Reparsed(const CachedObjectPtr& of) {
    if (of == nullptr || !of->compact_) return of;
    return CachedObjectPtr(new CachedObject(of->key_, of->revision_, of->serialized_));
  }

  const std::string& key() const { return key_; }
  int64_t revision() const { return revision_; }
  // True for a text-only version (Compact()).
  bool compact() const { return compact_; }
  // The parsed object. A compact version parses its text on the first call (thread-safe) and
  // keeps the result; an unparsable text gives null.
  const nlohmann::json& object() const {
    if (compact_) {
      std::call_once(once_, [this] {
        object_ = nlohmann::json::parse(*serialized_, nullptr, /*allow_exceptions=*/false);
      });
    }
    return object_;
  }
  // The object's JSON text, serialized on first use and cached (thread-safe).
  const std::string& Json() const { return *SerializedShared(); }
  // Drops the stored bytes kept for the text (thread-safe): the watch cache calls it once its
  // watchers have had the version, so a version nobody serialized then does not keep a second
  // copy of itself; a later Json() dumps the object.
  void ReleaseStoredBytes() const {
    std::lock_guard lock(stored_mu_);
    stored_.reset();
  }

 private:
  CachedObject(std::string key, int64_t revision, std::shared_ptr<const std::string> text)
      : key_(std::move(key)), revision_(revision), compact_(true), serialized_(std::move(text)) {}

  const std::shared_ptr<const std::string>& SerializedShared() const {
    if (!compact_) {
      std::call_once(once_, [this] {
        std::shared_ptr<const StoredBytes> stored;
        {
          std::lock_guard lock(stored_mu_);
          stored = std::move(stored_);  // the text replaces it
        }
        std::string text;
        if (stored != nullptr && stored->rv_offset != std::string::npos) {
          text = stored->WithResourceVersion(revision_);  // what the dump below gives
        } else {
          text = object_.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
        }
        text.shrink_to_fit();  // a dump grows its buffer geometrically (up to ~1.5x the text)
        serialized_ = std::make_shared<const std::string>(std::move(text));
      });
    }
    return serialized_;
  }

  const std::string key_;
  const int64_t revision_;
  const bool compact_ = false;
  // Parsed version: guards the lazy serialization of serialized_ (object_ is set at
  // construction). Compact version: guards the lazy parse of object_ (serialized_ is set at
  // construction). Either way, the lazily set field is immutable once the flag has run.
  mutable std::once_flag once_;
  mutable nlohmann::json object_;
  mutable std::shared_ptr<const std::string> serialized_;
  // Parsed version made from a write: its stored bytes until the text is made or
  // ReleaseStoredBytes(). GUARDED_BY(stored_mu_).
  mutable std::mutex stored_mu_;
  mutable std::shared_ptr<const StoredBytes> stored_;
};

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
