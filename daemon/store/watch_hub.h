// WatchHub: the set of open watches and the fan-out of log events to them.
//
// The log tailer calls Dispatch() with every new kv_log row in revision order; the hub remembers
// the last revision it dispatched (`last_dispatched`) so a new watch can read its backlog from the
// log up to exactly that point and then join the live stream without gaps or duplicates.
// Each event is parsed once and shared by all watchers as shared_ptr<const Event>.
//
// Locks: hub mu_ guards the watcher list and last_dispatched_; each WatchState has its own mu.
// Lock order: hub mu_ before a WatchState's mu, never the reverse.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "store/store.h"

namespace mk8s::store {

using EventPtr = std::shared_ptr<const Event>;

// One watcher's queue. Shared by the hub and the Watch handle.
class WatchState {
 public:
  WatchState(std::string prefix, size_t queue_limit)
      : prefix_(std::move(prefix)), queue_limit_(queue_limit) {}

  const std::string& prefix() const { return prefix_; }
  // Queues an event; on overflow ends the watch with kResourceExhausted. Returns false once ended.
  bool Push(EventPtr event);
  // Ends the watch with `status` (first end wins). Queued events stay deliverable for kCompacted.
  void End(Status status);
  bool ended();
  Result<std::vector<EventPtr>> Next(std::chrono::milliseconds timeout);

  // Last revision this watcher has been brought up to. GUARDED_BY(hub mu_).
  int64_t cursor = 0;

 private:
  const std::string prefix_;
  const size_t queue_limit_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<EventPtr> queue_;  // GUARDED_BY(mu_)
  bool ended_ = false;          // GUARDED_BY(mu_)
  Status end_status_;           // GUARDED_BY(mu_)
};

class WatchHub {
 public:
  explicit WatchHub(int64_t start_revision) : last_dispatched_(start_revision) {}

  int64_t last_dispatched();
  // Registers `watch` if its backlog reaches last_dispatched (cursor >= last_dispatched).
  // Returns false (not registered) when more events were dispatched since; read more backlog.
  bool TryRegister(const std::shared_ptr<WatchState>& watch, int64_t cursor);
  // Registers `watch` after calling fill_gap(cursor, last_dispatched) under the hub lock (the
  // tailer waits meanwhile). Used when TryRegister keeps losing the race with a write storm.
  Status RegisterFillingGap(const std::shared_ptr<WatchState>& watch, int64_t cursor,
                            const std::function<Status(int64_t, int64_t)>& fill_gap);
  void Remove(const WatchState* watch);

  // Called by the tailer only, in revision order. `compact_rev` is the store's compaction point
  // seen in the same read: watchers whose cursor is below it (they would miss events) end with
  // kCompacted.
  void Dispatch(int64_t compact_rev, std::vector<Event> events);
  // The local writer's committed batch (revisions previous_revision+1 ...), dispatched only if
  // it follows what was dispatched so far: true if done (or already dispatched), false if
  // earlier revisions (another daemon's writes in a shared database) still have to come from
  // the tailer, which then dispatches the batch too.
  bool DispatchIfNext(int64_t previous_revision, std::vector<Event> events);
  // Blocks until last_dispatched >= revision or the timeout passes; returns whether it got there.
  bool WaitDispatched(int64_t revision, std::chrono::milliseconds timeout);
  // Ends every watch with `status` and refuses new ones (store close).
  void Close(Status status);
  bool closed();

 private:
  void DispatchLocked(int64_t compact_rev, std::vector<Event> events);  // mu_ held
  std::mutex mu_;
  std::condition_variable dispatched_cv_;
  int64_t last_dispatched_;                           // GUARDED_BY(mu_)
  std::vector<std::shared_ptr<WatchState>> watches_;  // GUARDED_BY(mu_)
  bool closed_ = false;                               // GUARDED_BY(mu_)
};

// The Watch handed to callers: owns its WatchState; cancels and unregisters on destruction.
class WatchHandle : public Watch {
 public:
  WatchHandle(std::shared_ptr<WatchHub> hub, std::shared_ptr<WatchState> state)
      : hub_(std::move(hub)), state_(std::move(state)) {}
  ~WatchHandle() override;
  Result<std::vector<std::shared_ptr<const Event>>> Next(
      std::chrono::milliseconds timeout) override {
    return state_->Next(timeout);
  }
  void Cancel() override;

 private:
  std::shared_ptr<WatchHub> hub_;
  std::shared_ptr<WatchState> state_;
};

}  // namespace mk8s::store
