// The API server's watch cache: every stored object under /registry/, kept current by one store
// watch, with a bounded history of recent events so watches resume from a resourceVersion.
//
// History bounds (upstream keeps a similar window, eventFreshDuration = 75 s): at most
// `capacity` events; beyond `min_events`, events older than `window` are dropped. A watch from an
// older resourceVersion gets 410 Expired and its client re-lists. An event keeps a version that is
// still current shared with the object map, and a superseded one as its JSON text only, so the
// history costs about the text of the writes in the window; when many events have been dropped
// the freed heap is handed back to the OS (malloc_trim with glibc's malloc; jemalloc, which mk8sd
// links when installed, purges freed pages by itself and ignores the call).
//
// Threads: one dispatcher thread applies store events; it and the fan-out pool's helpers call
// watcher callbacks (which must not block). Every other method is thread-safe.
// Dispatch to HTTP watchers (1,000 on one namespace is a goal): the dispatcher applies a batch of
// store events under mu_, notes per watcher the events it gets, and calls the callbacks after
// releasing mu_ (holding dispatch_mu_), so Get/List/Watch on the transport threads never wait for
// a fan-out. The calls are spread over the cores (fanout_pool.h): one work item carries all
// the events of the batch for a group of up to 32 watchers, so one watcher's calls stay on one
// thread and in order, while different groups are served at the same time; the HTTPS sends of
// a group go out back to back at its end (http/send_batch.h). The batch ends (and the next one
// starts) only when every item is done. Contract for a callback: its calls never
// overlap, come in revision order, and none starts after its Registration's destructor returned
// (unless that destructor runs inside a callback of the same cache, on any dispatching thread).
// Calls of different watchers may run at once and in any order relative to each other. History
// replay in Watch() runs under mu_ on the caller's thread, so a callback there must not call
// back into the cache.
// Lock order: mu_ -> dispatch_mu_ (the dispatcher takes dispatch_mu_ before releasing mu_);
// nothing takes mu_ while waiting for dispatch_mu_.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "apiserver/registry/cached_object.h"
#include "apiserver/registry/fanout_pool.h"
#include "apiserver/registry/object_handoff.h"
#include "common/status.h"

namespace mk8s::store {
class Store;
class Watch;
}  // namespace mk8s::store

namespace mk8s::apiserver {

class WatchCache {
 public:
  using Callback = std::function<void(const CacheEventPtr&)>;
  class Registration;  // unregisters on destruction

  // Loads every object under `root` ("/registry/") and starts following the store.
  struct HistoryBounds {
    size_t capacity = 10000;
    size_t min_events = 1000;
    std::chrono::milliseconds window{75000};
  };
  // `fanout_threads`: threads that call watcher callbacks, the dispatcher included (FanoutPool;
  // 0 = one per core, up to FanoutPool::kMaxAutoThreads).
  static Result<std::unique_ptr<WatchCache>> Start(store::Store* store, std::string root,
                                                   HistoryBounds bounds,
                                                   size_t fanout_threads = 0);
  static Result<std::unique_ptr<WatchCache>> Start(store::Store* store, std::string root) {
    return Start(store, std::move(root), HistoryBounds{});
  }
  ~WatchCache();

  // Waits until the cache reflects `revision` (0: the store's current revision).
  Status WaitUntilFresh(int64_t revision, std::chrono::milliseconds timeout);
  int64_t revision() const;

  struct Snapshot {
    int64_t revision = 0;
    std::vector<CachedObjectPtr> items;  // in key order
  };
  // Objects whose key starts with `prefix`, in key order, strictly after `start_after` if given.
  Snapshot List(const std::string& prefix, const std::string& start_after = {}) const;
  CachedObjectPtr Get(const std::string& key) const;

  // Delivers, in order, every event on keys under `prefix` with revision > `after_revision`.
  // With `initial_state`, first delivers an ADDED event for each existing object (in revision
  // order) and then events after the current revision. kCompacted when `after_revision` is older
  // than the history kept.
  Result<std::unique_ptr<Registration>> Watch(const std::string& prefix, int64_t after_revision,
                                              bool initial_state, Callback callback);
  size_t watcher_count() const;

  // Where writes hand their parsed objects to the dispatcher (object_handoff.h); thread-safe.
  ObjectHandoff& handoff() { return handoff_; }

 private:
  struct Watcher {
    uint64_t id;
    std::string prefix;
    std::shared_ptr<const Callback> callback;  // shared with an in-flight dispatch
  };
  // The callback calls of one batch, made after releasing mu_: watcher-major, so watcher r's
  // events (in revision order) are events[runs[r].first .. runs[r].first + runs[r].count).
  struct Dispatch {
    struct Run {
      std::shared_ptr<const Callback> callback;
      size_t first = 0;
      size_t count = 0;
    };
    std::vector<Run> runs;
    std::vector<CacheEventPtr> events;
  };
  WatchCache(store::Store* store, std::string root, HistoryBounds bounds, size_t fanout_threads);
  // Calls the callbacks of `dispatch` on the pool (dispatcher thread, holding dispatch_mu_).
  void Deliver(const Dispatch& dispatch);
  // What the history keeps of `event` (which watchers get as is). Memory (issue 4): a version
  // that is no longer current (the event's `previous`, a deleted object's last state) is kept as
  // text only (CachedObject::Compact), and the older entry that introduced `previous` is
  // compacted too; current versions stay shared with objects_. Replays parse into copies.
  CacheEventPtr HistoryEntryLocked(const CacheEventPtr& event);
  // Drops history beyond the bounds; returns how many events went.
  size_t TrimHistoryLocked(std::chrono::steady_clock::time_point now);
  Status Load();
  void Run();
  void Unregister(uint64_t id);

  store::Store* const store_;  // not owned; outlives the cache
  const std::string root_;
  const HistoryBounds bounds_;
  std::unique_ptr<store::Watch> store_watch_;
  ObjectHandoff handoff_;  // its own lock; taken under mu_ by the dispatcher, never the reverse
  std::thread dispatcher_;
  FanoutPool fanout_;  // used by the dispatcher thread only
  // Held by the dispatcher while it calls callbacks outside mu_ (until every helper is done);
  // Unregister waits on it.
  std::mutex dispatch_mu_;

  mutable std::mutex mu_;
  std::condition_variable fresh_cv_;
  bool stopping_ = false;                                  // GUARDED_BY(mu_)
  int64_t revision_ = 0;                                   // GUARDED_BY(mu_)
  std::map<std::string, CachedObjectPtr, std::less<>> objects_;  // GUARDED_BY(mu_)
  std::deque<CacheEventPtr> history_;                      // GUARDED_BY(mu_)
  std::deque<std::chrono::steady_clock::time_point> history_times_;  // arrival, GUARDED_BY(mu_)
  size_t dropped_since_trim_ = 0;                          // dispatcher thread only
  int64_t history_start_ = 0;  // events with revision > this are in history_; GUARDED_BY(mu_)
  std::vector<Watcher> watchers_;                          // GUARDED_BY(mu_)
  uint64_t next_watcher_id_ = 1;                           // GUARDED_BY(mu_)
};

class WatchCache::Registration {
 public:
  Registration(WatchCache* cache, uint64_t id) : cache_(cache), id_(id) {}
  ~Registration() { cache_->Unregister(id_); }
  Registration(const Registration&) = delete;
  Registration& operator=(const Registration&) = delete;

 private:
  WatchCache* cache_;
  uint64_t id_;
};

}  // namespace mk8s::apiserver
