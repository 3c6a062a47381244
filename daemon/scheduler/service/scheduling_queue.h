// SchedulingQueue: the pods waiting for a node (upstream's PriorityQueue, simplified).
//
//  - active: ready to schedule, highest spec.priority first, then oldest first.
//  - backoff: failed recently; each attempt doubles the wait (1 s, 2 s, ... up to 10 s) before
//    the pod is active again.
//  - unschedulable: fit nowhere. They wait for a cluster change that may help (MoveAllToActive:
//    a node added or changed, an assigned pod deleted) or, at the latest, `unschedulable_timeout`
//    (5 min, as upstream), then go through backoff again.
//
// Each pod is keyed by its uid. A pod is in at most one of the three sets, or "in flight" between
// Pop() and the caller's verdict (Done / AddUnschedulable / AddBackoff). A cluster change seen
// while a pod is in flight sends it to backoff instead of unschedulable, so the change is not
// missed (upstream's "moveRequestCycle").
//
// Threads: every method is thread-safe; Pop() blocks. Time comes from `now` (the clock seam);
// Pop() waits in real time but re-reads `now` at least every `poll` so tests with a fake `now`
// see their advances.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace mk8s::scheduler {

struct QueuedPod {
  std::string uid;
  std::shared_ptr<const nlohmann::json> pod;  // the latest object seen
  int attempts = 0;                           // scheduling attempts that failed so far
  std::chrono::steady_clock::time_point enqueued;  // first seen (ordering among equals)
};

struct SchedulingQueueOptions {
  std::chrono::milliseconds initial_backoff{1000};
  std::chrono::milliseconds max_backoff{10000};
  std::chrono::milliseconds unschedulable_timeout{5 * 60 * 1000};
  std::chrono::milliseconds poll{200};
  std::function<std::chrono::steady_clock::time_point()> now;  // default steady_clock::now
};

class SchedulingQueue {
 public:
  explicit SchedulingQueue(SchedulingQueueOptions options = {});

  // An unassigned pod was added or changed. New pods become active; a known pod's object is
  // replaced, and an unschedulable one whose spec changed is retried (after its backoff).
  void AddOrUpdate(std::shared_ptr<const nlohmann::json> pod);
  // The pod was deleted or got a node: forget it wherever it is (an in-flight pod is dropped at
  // its verdict).
  void Delete(const std::string& uid);

  // Blocks until a pod is active, then hands it out (in flight). nullopt after Close() or at
  // `deadline`.
  std::optional<QueuedPod> Pop(std::chrono::steady_clock::time_point deadline =
                                   std::chrono::steady_clock::time_point::max());
  // Verdicts for a popped pod.
  void Done(const std::string& uid);                 // scheduled (or given up)
  void AddUnschedulable(QueuedPod pod);              // fit nowhere
  void AddBackoff(QueuedPod pod);                    // error, e.g. the binding failed

  // Something changed that may let unschedulable pods fit: they go to backoff/active.
  void MoveAllToActive();
  // The same for the unschedulable pods `may_help` says the change could help (e.g. a pod was
  // placed: only pods that need other pods can fit now). Runs `may_help` under the queue's lock.
  // A pod in flight meanwhile is judged at its verdict, as upstream's in-flight events: if it
  // fails and `may_help` says the change could have helped it, it goes to backoff, not
  // unschedulable. So a move costs nothing per in-flight pod (one is called per placed pod).
  using Hint = bool (*)(const nlohmann::json& pod);
  void MoveToActiveIf(Hint may_help);
  void Close();  // wakes Pop(); later Pops return nullopt

  struct Counts {
    size_t active = 0, backoff = 0, unschedulable = 0, in_flight = 0;
  };
  Counts counts() const;

 private:
  using TimePoint = std::chrono::steady_clock::time_point;
  // Active order: higher priority first, then earlier enqueue, then uid.
  using ActiveKey = std::tuple<int64_t, TimePoint, std::string>;

  struct Entry {
    QueuedPod pod;
    enum class Where { kActive, kBackoff, kUnschedulable, kInFlight } where;
    ActiveKey active_key;         // when kActive
    TimePoint backoff_until;      // when kBackoff
    TimePoint unschedulable_since;
    TimePoint last_attempt;       // set at Pop(); backoff runs from here
    uint64_t popped_at_move = 0;  // move_count_ at Pop(): a later move means "moved meanwhile"
    uint64_t popped_at_hint = 0;  // hint_count_ at Pop(): hints given later apply at the verdict
    bool deleted = false;         // when kInFlight: Delete() came meanwhile
    bool moved = false;           // when kInFlight: a relevant update came meanwhile
  };

  TimePoint Now() const;
  std::chrono::milliseconds BackoffFor(int attempts) const;
  void PushActiveLocked(Entry& entry);
  void PushBackoffLocked(Entry& entry);
  void EraseFromSetsLocked(Entry& entry);
  void FlushLocked(TimePoint now);  // due backoffs -> active; stale unschedulables -> backoff

  const SchedulingQueueOptions options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::unordered_map<std::string, Entry> entries_;           // uid -> entry. GUARDED_BY(mu_)
  std::set<ActiveKey> active_;                               // GUARDED_BY(mu_)
  std::multimap<TimePoint, std::string> backoff_;            // until -> uid. GUARDED_BY(mu_)
  std::set<std::string> unschedulable_;                      // GUARDED_BY(mu_)
  uint64_t move_count_ = 0;  // MoveAllToActive() calls so far. GUARDED_BY(mu_)
  uint64_t hint_count_ = 0;  // MoveToActiveIf() calls so far. GUARDED_BY(mu_)
  // Each hint given so far with the hint_count_ of its latest call (a handful). GUARDED_BY(mu_)
  std::vector<std::pair<Hint, uint64_t>> hints_;
  // Whether a hint given after `entry` was popped may help it. Needs mu_.
  bool HintedSincePopLocked(const Entry& entry) const;
  bool closed_ = false;                                      // GUARDED_BY(mu_)
};

}  // namespace mk8s::scheduler
