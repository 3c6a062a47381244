#include "apiserver/registry/watch_cache.h"

#include <pthread.h>

#include <spdlog/spdlog.h>

#include <malloc.h>

#include <algorithm>

#include "apiserver/http/send_batch.h"
#include "store/store.h"

namespace mk8s::apiserver {

nlohmann::json ParseStoredObject(const std::string& value, int64_t revision) {
  nlohmann::json object = nlohmann::json::parse(value, nullptr, /*allow_exceptions=*/false);
  if (!object.is_object()) return nullptr;
  object["metadata"]["resourceVersion"] = std::to_string(revision);
  return object;
}

namespace {
// The cache whose callbacks this thread is calling right now (Unregister must not wait then).
thread_local const WatchCache* tl_dispatching = nullptr;
// Watchers per fan-out pool item. Their HTTPS sends are made back to back at the item's end
// (http/send_batch.h): on the 2-core bench (1,000 watchers) 16 to 500 cut mk8sd's CPU per
// delivery by 2.5-3 µs (of ~18) and the readers' by 1.5-2.5 µs against 1, alike within the
// noise; the first send of an item waits for the item's encryption (~32 x 4 µs).
constexpr size_t kWatchersPerItem = 32;
}  // namespace

WatchCache::WatchCache(store::Store* store, std::string root, HistoryBounds bounds,
                       size_t fanout_threads)
    : store_(store),
      root_(std::move(root)),
      bounds_(bounds),
      fanout_(fanout_threads, /*min_parallel=*/2) {}  // items of up to 32 watchers

Result<std::unique_ptr<WatchCache>> WatchCache::Start(store::Store* store, std::string root,
                                                      HistoryBounds bounds,
                                                      size_t fanout_threads) {
  std::unique_ptr<WatchCache> cache(
      new WatchCache(store, std::move(root), bounds, fanout_threads));
  if (Status status = cache->Load(); !status.ok()) return status;
  cache->dispatcher_ = std::thread([raw = cache.get()] { raw->Run(); });
  pthread_setname_np(cache->dispatcher_.native_handle(), "watch-dispatch");
  return cache;
}

WatchCache::~WatchCache() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  if (store_watch_) store_watch_->Cancel();
  if (dispatcher_.joinable()) dispatcher_.join();
}

Status WatchCache::Load() {
  store::ListOptions options;
  Result<store::ListResult> list = store_->List(root_, options);
  if (!list.ok()) return list.status();
  for (const store::KeyValue& kv : list->kvs) {
    nlohmann::json object = ParseStoredObject(kv.value, kv.mod_rev);
    if (object.is_null()) {
      spdlog::warn("watch cache: skipping unparsable object at {}", kv.key);
      continue;
    }
    objects_.emplace(kv.key, std::make_shared<CachedObject>(kv.key, kv.mod_rev, std::move(object)));
  }
  revision_ = list->revision;
  history_start_ = revision_;
  Result<std::unique_ptr<store::Watch>> watch = store_->StartWatch(root_, revision_);
  if (!watch.ok()) return watch.status();
  store_watch_ = std::move(*watch);
  return Status::Ok();
}

void WatchCache::Run() {
  while (true) {
    auto events = store_watch_->Next(std::chrono::milliseconds(500));
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      dropped_since_trim_ += TrimHistoryLocked(std::chrono::steady_clock::now());
    }
    // Give the heap freed by a large drop back to the OS (outside the lock; it takes a while).
    if (dropped_since_trim_ >= 1000) {
      dropped_since_trim_ = 0;
      malloc_trim(0);
    }
    if (!events.ok()) {
      // Compaction or a restore overtook us: reload the whole state and carry on. Watchers that
      // cannot follow (their history is gone) are dropped so their clients re-list.
      spdlog::warn("watch cache: store watch ended ({}); reloading", events.status().ToString());
      std::lock_guard lock(mu_);
      objects_.clear();
      history_.clear();
      history_times_.clear();
      for (Watcher& watcher : watchers_) {
        (*watcher.callback)(nullptr);  // null event = the watch is over
      }
      watchers_.clear();
      if (Status status = Load(); !status.ok()) {
        spdlog::error("watch cache: reload failed: {}", status.ToString());
      }
      fresh_cv_.notify_all();
      continue;
    }
    if (events->empty()) continue;
    std::vector<CacheEventPtr> applied;  // this batch's events, in revision order
    applied.reserve(events->size());
    std::unique_lock lock(mu_);
    for (const auto& store_event : *events) {
      auto event = std::make_shared<CacheEvent>();
      event->revision = store_event->kv.mod_rev;
      // One descent of the (large) key map per event: `at` is the key's slot or where it goes.
      const auto at = objects_.lower_bound(store_event->kv.key);
      const auto found =
          at != objects_.end() && at->first == store_event->kv.key ? at : objects_.end();
      if (found != objects_.end()) event->previous = found->second;
      // Parsing the bytes is the fallback: a put takes the object its write handed over, and a
      // delete (whose value is the last version's) copies the cached last version.
      nlohmann::json object;
      std::shared_ptr<const StoredBytes> stored;  // the write's bytes, to splice the text from
      if (store_event->type != store::EventType::kDelete) {
        ObjectHandoff::Taken taken =
            handoff_.TakeEntry(store_event->kv.key, store_event->kv.value, event->revision);
        object = std::move(taken.object);
        stored = std::move(taken.stored);
      } else if (found != objects_.end() && found->second->revision() == store_event->prev_rev &&
                 found->second->object().is_object()) {
        object = found->second->object();
        object["metadata"]["resourceVersion"] = std::to_string(event->revision);
      }
      if (object.is_null()) object = ParseStoredObject(store_event->kv.value, event->revision);
      if (object.is_null()) {
        spdlog::warn("watch cache: unparsable object at {}", store_event->kv.key);
        revision_ = event->revision;
        continue;
      }
      event->object = std::make_shared<CachedObject>(store_event->kv.key, event->revision,
                                                     std::move(object), std::move(stored));
      if (store_event->type == store::EventType::kDelete) {
        event->type = WatchEventType::kDeleted;
        if (found != objects_.end()) objects_.erase(found);
      } else {
        event->type = found == objects_.end() ? WatchEventType::kAdded : WatchEventType::kModified;
        if (found != objects_.end()) {
          found->second = event->object;
        } else {
          objects_.emplace_hint(at, store_event->kv.key, event->object);
        }
      }
      revision_ = event->revision;
      history_.push_back(HistoryEntryLocked(event));
      history_times_.push_back(std::chrono::steady_clock::now());
      dropped_since_trim_ += TrimHistoryLocked(history_times_.back());
      applied.push_back(std::move(event));
    }
    fresh_cv_.notify_all();
    Dispatch dispatch;
    dispatch.runs.reserve(watchers_.size());
    for (const Watcher& watcher : watchers_) {
      const size_t first = dispatch.events.size();
      for (const CacheEventPtr& event : applied) {
        if (event->object->key().compare(0, watcher.prefix.size(), watcher.prefix) == 0) {
          dispatch.events.push_back(event);
        }
      }
      if (dispatch.events.size() > first) {
        dispatch.runs.push_back({watcher.callback, first, dispatch.events.size() - first});
      }
    }
    // Fan out outside mu_ (see the header): take dispatch_mu_ first so an Unregister that
    // returns after this point waits for these calls.
    std::lock_guard dispatching(dispatch_mu_);
    lock.unlock();
    Deliver(dispatch);
    // The watchers have serialized what they send: a version whose text nobody made keeps no
    // copy of its write's bytes.
    for (const CacheEventPtr& event : applied) event->object->ReleaseStoredBytes();
  }
}

void WatchCache::Deliver(const Dispatch& dispatch) {
  // One pool item serves up to kWatchersPerItem consecutive watchers (each watcher in one item,
  // so its calls stay on one thread and in order); their HTTPS sends are held back and made
  // back to back at the item's end (http/send_batch.h).
  const size_t items = (dispatch.runs.size() + kWatchersPerItem - 1) / kWatchersPerItem;
  const std::function<void(size_t)> work = [this, &dispatch](size_t item) {
    const WatchCache* const outer = tl_dispatching;
    tl_dispatching = this;
    http::SendBatch sends;
    const size_t end = std::min(dispatch.runs.size(), (item + 1) * kWatchersPerItem);
    for (size_t r = item * kWatchersPerItem; r < end; ++r) {
      const Dispatch::Run& run = dispatch.runs[r];
      for (size_t i = run.first; i < run.first + run.count; ++i) {
        (*run.callback)(dispatch.events[i]);
      }
    }
    sends.Flush();
    tl_dispatching = outer;
  };
  fanout_.Run(items, work);
}

namespace {

CacheEventPtr EventWith(const CacheEvent& event, CachedObjectPtr object, CachedObjectPtr previous) {
  auto copy = std::make_shared<CacheEvent>();
  copy->type = event.type;
  copy->object = std::move(object);
  copy->previous = std::move(previous);
  copy->revision = event.revision;
  return copy;
}

}  // namespace

CacheEventPtr WatchCache::HistoryEntryLocked(const CacheEventPtr& event) {
  CachedObjectPtr previous;
  if (event->previous) {
    // Superseded just now: text only from here on, shared by the entry that introduced it.
    previous = CachedObject::Compact(*event->previous);
    auto introduced = std::lower_bound(
        history_.begin(), history_.end(), previous->revision(),
        [](const CacheEventPtr& entry, int64_t revision) { return entry->revision < revision; });
    if (introduced != history_.end() && (*introduced)->object == event->previous) {
      *introduced = EventWith(**introduced, previous, (*introduced)->previous);
    }
  }
  // A deleted object's last state is no longer current either.
  CachedObjectPtr object = event->type == WatchEventType::kDeleted
                               ? CachedObject::Compact(*event->object)
                               : event->object;
  if (object == event->object && previous == event->previous) return event;
  return EventWith(*event, std::move(object), std::move(previous));
}

size_t WatchCache::TrimHistoryLocked(std::chrono::steady_clock::time_point now) {
  size_t dropped = 0;
  while (history_.size() > bounds_.capacity ||
         (history_.size() > bounds_.min_events &&
          now - history_times_.front() > bounds_.window)) {
    history_start_ = history_.front()->revision;
    history_.pop_front();
    history_times_.pop_front();
    ++dropped;
  }
  return dropped;
}

Status WatchCache::WaitUntilFresh(int64_t revision, std::chrono::milliseconds timeout) {
  if (revision == 0) revision = store_->CurrentRevision();
  std::unique_lock lock(mu_);
  if (!fresh_cv_.wait_for(lock, timeout, [&] { return revision_ >= revision || stopping_; })) {
    return Status(Code::kDeadlineExceeded, "Too large resource version: " +
                                               std::to_string(revision) + ", current resource version: " +
                                               std::to_string(revision_));
  }
  return Status::Ok();
}

int64_t WatchCache::revision() const {
  std::lock_guard lock(mu_);
  return revision_;
}

WatchCache::Snapshot WatchCache::List(const std::string& prefix,
                                      const std::string& start_after) const {
  Snapshot snapshot;
  std::lock_guard lock(mu_);
  snapshot.revision = revision_;
  auto it = start_after.empty() ? objects_.lower_bound(prefix) : objects_.upper_bound(start_after);
  for (; it != objects_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
    snapshot.items.push_back(it->second);
  }
  return snapshot;
}

CachedObjectPtr WatchCache::Get(const std::string& key) const {
  std::lock_guard lock(mu_);
  auto it = objects_.find(key);
  return it == objects_.end() ? nullptr : it->second;
}

Result<std::unique_ptr<WatchCache::Registration>> WatchCache::Watch(const std::string& prefix,
                                                                    int64_t after_revision,
                                                                    bool initial_state,
                                                                    Callback callback) {
  std::lock_guard lock(mu_);
  if (initial_state) {
    std::vector<CachedObjectPtr> existing;
    for (auto it = objects_.lower_bound(prefix);
         it != objects_.end() && it->first.compare(0, prefix.size(), prefix) == 0; ++it) {
      existing.push_back(it->second);
    }
    std::sort(existing.begin(), existing.end(),
              [](const CachedObjectPtr& a, const CachedObjectPtr& b) {
                return a->revision() < b->revision();
              });
    for (const CachedObjectPtr& object : existing) {
      auto event = std::make_shared<CacheEvent>();
      event->type = WatchEventType::kAdded;
      event->object = object;
      event->revision = object->revision();
      callback(event);
    }
  } else {
    if (after_revision < history_start_) {
      return Status(Code::kCompacted, "too old resource version: " +
                                          std::to_string(after_revision) + " (" +
                                          std::to_string(history_start_) + ")");
    }
    for (const CacheEventPtr& event : history_) {
      if (event->revision > after_revision &&
          event->object->key().compare(0, prefix.size(), prefix) == 0) {
        const bool compact =
            event->object->compact() || (event->previous && event->previous->compact());
        // Text-only versions are parsed into a copy for this watcher alone (see cached_object.h).
        callback(compact ? EventWith(*event, CachedObject::Reparsed(event->object),
                                     CachedObject::Reparsed(event->previous))
                         : event);
      }
    }
  }
  const uint64_t id = next_watcher_id_++;
  watchers_.push_back(
      Watcher{id, prefix, std::make_shared<const Callback>(std::move(callback))});
  return std::make_unique<Registration>(this, id);
}

void WatchCache::Unregister(uint64_t id) {
  {
    std::lock_guard lock(mu_);
    watchers_.erase(std::remove_if(watchers_.begin(), watchers_.end(),
                                   [id](const Watcher& w) { return w.id == id; }),
                    watchers_.end());
  }
  // A dispatch may have picked this watcher before it left the list: wait until it is done, so
  // no call starts after we return. Inside a callback (the dispatcher or a fan-out helper)
  // there is nothing to wait for, and waiting would deadlock.
  if (tl_dispatching != this && std::this_thread::get_id() != dispatcher_.get_id()) {
    std::lock_guard wait(dispatch_mu_);
  }
}

size_t WatchCache::watcher_count() const {
  std::lock_guard lock(mu_);
  return watchers_.size();
}

}  // namespace mk8s::apiserver
