// Informer: list + watch + local cache + event handlers for one resource (client-go's
// SharedIndexInformer). Controllers read the cache through the lister methods and react to the
// handlers by queueing keys; they never mutate cached objects (they are shared and immutable).
//
// Protocol: list (paged) -> watch from the list's resourceVersion (bookmarks on). When a watch
// ends it resumes from the last resourceVersion seen (events and bookmarks advance it). On 410
// Gone (an ERROR event with code 410 or an HTTP 410) it re-lists and emits the difference to the
// cache as handlers would have seen it: adds, updates (resourceVersion changed) and deletes.
// Failures back off from 100 ms to 30 s.
//
// Threads: each informer has one dispatch thread. It runs the list requests (blocking), applies
// watch events to the cache, and calls every handler, in event order. Handlers must be quick
// (queue a key) and may call the lister methods and async Client methods; a blocking Client call
// there stalls this informer only. Lister methods are thread-safe (shared lock on the cache).
// The transport callback thread only appends raw lines (or, in-process, shared objects) to this
// informer's queue.
//
// Objects: over the in-process transport the list and the watch events carry the API server's
// watch-cache objects themselves (shared, immutable), so the cache holds no copy of its own and
// nothing is serialized or parsed per event. Over HTTPS the informer parses lines as before.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "client/client.h"

namespace mk8s::client {

struct EventHandlers {
  std::function<void(const ObjectPtr& object)> on_add;
  std::function<void(const ObjectPtr& old_object, const ObjectPtr& new_object)> on_update;
  // The last state known (the DELETED event's object, or the cached one after a re-list).
  std::function<void(const ObjectPtr& object)> on_delete;
};

// Values an object is indexed under (e.g. pods by spec.nodeName). Must be pure and quick.
using IndexFunc = std::function<std::vector<std::string>(const nlohmann::json& object)>;

struct InformerOptions {
  std::string namespace_;  // "" = all namespaces (and cluster-scoped resources)
  std::string label_selector;
  std::string field_selector;
  int64_t page_size = 500;
  std::chrono::milliseconds min_backoff{100};
  std::chrono::milliseconds max_backoff{30000};
  // Watch timeout asked of the server: random in [min, 2*min) seconds, like client-go.
  int64_t min_watch_timeout_seconds = 300;
};

class Informer {
 public:
  Informer(std::shared_ptr<Client> client, ResourceRef resource, InformerOptions options = {});
  ~Informer();  // Stop()
  Informer(const Informer&) = delete;
  Informer& operator=(const Informer&) = delete;

  // Before Start(): one optional index.
  void SetIndex(std::string name, IndexFunc index);
  // Any time. A handler added after Start() first sees every cached object as an add (on the
  // dispatch thread), then the events that follow. Returns an id for RemoveEventHandler().
  // While a HandlerScope is alive on the calling thread, the registration is also recorded there.
  uint64_t AddEventHandler(EventHandlers handlers);
  // Unregisters a handler; when it returns, the handler is not running and will not run again.
  // Not from a handler of this informer (it waits for the dispatch thread).
  void RemoveEventHandler(uint64_t id);

  // Records every AddEventHandler() made on this thread while it lives, so a component that
  // shares informers with others (e.g. a controller manager rebuilt on each leadership) can
  // remove exactly its own handlers later. Not nestable.
  class HandlerScope {
   public:
    HandlerScope();
    ~HandlerScope();
    HandlerScope(const HandlerScope&) = delete;
    HandlerScope& operator=(const HandlerScope&) = delete;
    // The registrations recorded so far: (informer, id). The informers must outlive their use.
    std::vector<std::pair<Informer*, uint64_t>> Take();

   private:
    friend class Informer;
    std::vector<std::pair<Informer*, uint64_t>> registrations_;
  };
  // Starts the dispatch thread. Idempotent.
  void Start();
  // Cancels the watch and joins the dispatch thread (waits for an in-flight list). Idempotent;
  // not from a handler.
  void Stop();

  // True once the first list has been applied to the cache.
  bool HasSynced() const { return synced_.load(); }
  bool WaitForSync(std::chrono::milliseconds timeout) const;

  // --- lister (any thread)
  ObjectPtr Get(const std::string& key) const;  // "ns/name" or "name"; nullptr if absent
  ObjectPtr Get(const std::string& ns, const std::string& name) const;
  std::vector<ObjectPtr> List() const;
  std::vector<ObjectPtr> ListByNamespace(const std::string& ns) const;
  std::vector<ObjectPtr> ByIndex(const std::string& value) const;  // objects indexed under value
  size_t Size() const;
  std::string LastResourceVersion() const;

  const ResourceRef& resource() const { return resource_; }
  const std::string& index_name() const { return index_name_; }
  uint64_t list_count() const { return list_count_.load(); }  // lists done (tests, metrics)

 private:
  struct Item {
    enum Kind { kLine, kObject, kEnd, kTask } kind;
    uint64_t generation = 0;  // watch generation (lines, objects and ends)
    std::string line;         // kLine: the line; kObject: the event type
    ObjectPtr object;         // kObject: the event's shared object
    Response end;
    std::function<void()> task;
  };
  enum class WatchOutcome { kStopped, kGone, kEnded, kFailed };

  void Run();
  bool ListAndReplace();
  WatchOutcome WatchOnce();
  // Applies one watch line. Returns false (and sets *outcome) if the watch must end.
  bool ApplyLine(const std::string& line, WatchOutcome* outcome, uint64_t* events);
  // Applies one watch event delivered as a shared object (ADDED, MODIFIED or DELETED).
  void ApplyObject(const std::string& type, const ObjectPtr& object, uint64_t* events);
  void Upsert(const ObjectPtr& object);
  void Remove(const std::string& key, const ObjectPtr& last);
  void IndexLocked(const std::string& key, const ObjectPtr& old_object, const ObjectPtr& object);
  void RunTasks(std::deque<Item>* items);
  bool SleepFor(std::chrono::milliseconds delay);  // false if stopped meanwhile
  using HandlerList = std::vector<std::pair<uint64_t, EventHandlers>>;
  // The current handlers (copy-on-write: a snapshot costs one shared_ptr copy).
  std::shared_ptr<const HandlerList> Handlers();

  const std::shared_ptr<Client> client_;
  const ResourceRef resource_;
  const InformerOptions options_;
  std::string index_name_;  // set before Start()
  IndexFunc index_;         // set before Start()

  mutable std::shared_mutex cache_mu_;
  std::unordered_map<std::string, ObjectPtr> cache_;            // GUARDED_BY(cache_mu_)
  std::map<std::string, std::set<std::string>> index_values_;   // value -> keys. GUARDED_BY(cache_mu_)
  std::string resource_version_;                                // GUARDED_BY(cache_mu_)

  std::mutex handlers_mu_;
  std::shared_ptr<const HandlerList> handlers_ = std::make_shared<HandlerList>();  // GUARDED_BY(handlers_mu_)
  uint64_t next_handler_id_ = 1;        // GUARDED_BY(handlers_mu_)
  std::set<uint64_t> removed_early_;    // removed before their replay task ran. GUARDED_BY(handlers_mu_)
  // Held by the dispatch thread while it calls handlers, so RemoveEventHandler() can wait out a
  // call in progress.
  std::mutex dispatch_mu_;

  // The dispatch thread's queue. Shared with the watch callbacks, which may outlive the informer
  // by a moment (a cancelled stream's on_end).
  struct Inbox {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<Item> items;               // GUARDED_BY(mu)
    bool started = false;                 // GUARDED_BY(mu)
    bool stopping = false;                // GUARDED_BY(mu)
    std::shared_ptr<StreamHandle> watch;  // GUARDED_BY(mu)
    uint64_t generation = 0;              // GUARDED_BY(mu)
  };
  const std::shared_ptr<Inbox> inbox_ = std::make_shared<Inbox>();
  std::thread thread_;

  mutable std::mutex sync_mu_;  // with sync_cv_: WaitForSync
  mutable std::condition_variable sync_cv_;
  std::atomic<bool> synced_{false};
  std::atomic<uint64_t> list_count_{0};
};

}  // namespace mk8s::client
