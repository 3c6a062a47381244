#include "store/watch_hub.h"

#include <algorithm>

#include "store/schema.h"

namespace mk8s::store {

bool WatchState::Push(EventPtr event) {
  std::unique_lock<std::mutex> lock(mu_);
  if (ended_) return false;
  if (queue_.size() >= queue_limit_) {
    ended_ = true;
    queue_.clear();
    end_status_ = Status(Code::kResourceExhausted,
                         "watch fell more than " + std::to_string(queue_limit_) +
                             " events behind and was closed; re-list and watch again");
    cv_.notify_all();
    return false;
  }
  queue_.push_back(std::move(event));
  const bool wake = queue_.size() == 1;
  lock.unlock();
  if (wake) cv_.notify_all();  // after the unlock, so the woken reader does not block on mu_
  return true;
}

void WatchState::End(Status status) {
  std::lock_guard<std::mutex> lock(mu_);
  if (ended_) return;
  ended_ = true;
  // Only a compaction leaves queued events deliverable; otherwise the end is immediate.
  if (status.code() != Code::kCompacted) queue_.clear();
  end_status_ = std::move(status);
  cv_.notify_all();
}

bool WatchState::ended() {
  std::lock_guard<std::mutex> lock(mu_);
  return ended_;
}

Result<std::vector<EventPtr>> WatchState::Next(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [&] { return ended_ || !queue_.empty(); });
  if (!queue_.empty()) {
    std::vector<EventPtr> out(std::make_move_iterator(queue_.begin()),
                              std::make_move_iterator(queue_.end()));
    queue_.clear();
    return out;
  }
  if (ended_) return end_status_;
  return std::vector<EventPtr>{};
}

int64_t WatchHub::last_dispatched() {
  std::lock_guard<std::mutex> lock(mu_);
  return last_dispatched_;
}

bool WatchHub::TryRegister(const std::shared_ptr<WatchState>& watch, int64_t cursor) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) {
    watch->End(Status(Code::kUnavailable, "the store is closing"));
    return true;
  }
  if (cursor < last_dispatched_) return false;
  watch->cursor = cursor;
  watches_.push_back(watch);
  return true;
}

Status WatchHub::RegisterFillingGap(const std::shared_ptr<WatchState>& watch, int64_t cursor,
                                    const std::function<Status(int64_t, int64_t)>& fill_gap) {
  std::lock_guard<std::mutex> lock(mu_);
  if (closed_) return Status(Code::kUnavailable, "the store is closing");
  if (cursor < last_dispatched_) {
    if (Status st = fill_gap(cursor, last_dispatched_); !st.ok()) return st;
    cursor = last_dispatched_;
  }
  watch->cursor = cursor;
  watches_.push_back(watch);
  return Status::Ok();
}

void WatchHub::Remove(const WatchState* watch) {
  std::lock_guard<std::mutex> lock(mu_);
  std::erase_if(watches_, [&](const auto& w) { return w.get() == watch; });
}

bool WatchHub::DispatchIfNext(int64_t previous_revision, std::vector<Event> events) {
  std::lock_guard<std::mutex> lock(mu_);
  if (events.empty() || last_dispatched_ >= events.back().kv.mod_rev) return true;
  if (last_dispatched_ != previous_revision) return false;
  DispatchLocked(0, std::move(events));
  return true;
}

void WatchHub::Dispatch(int64_t compact_rev, std::vector<Event> events) {
  std::lock_guard<std::mutex> lock(mu_);
  DispatchLocked(compact_rev, std::move(events));
}

void WatchHub::DispatchLocked(int64_t compact_rev, std::vector<Event> events) {
  if (compact_rev > last_dispatched_) {
    // History the tailer never saw was compacted away (or replaced by a restore).
    for (auto& w : watches_) {
      if (w->cursor < compact_rev) {
        w->End(Status(Code::kCompacted, "watch history up to revision " +
                                            std::to_string(compact_rev) +
                                            " was compacted or restored; re-list and watch again"));
      }
    }
    last_dispatched_ = compact_rev;
  }
  for (Event& event : events) {
    int64_t rev = event.kv.mod_rev;
    if (rev <= last_dispatched_) continue;
    last_dispatched_ = rev;
    EventPtr shared;  // parsed once, shared by every matching watcher; created on first match
    const Event* view = &event;
    for (auto& w : watches_) {
      if (rev <= w->cursor || !HasPrefix(view->kv.key, w->prefix())) continue;
      if (shared == nullptr) {
        shared = std::make_shared<const Event>(std::move(event));
        view = shared.get();
      }
      w->Push(shared);
    }
  }
  for (auto& w : watches_) w->cursor = std::max(w->cursor, last_dispatched_);
  std::erase_if(watches_, [](const auto& w) { return w->ended(); });
  dispatched_cv_.notify_all();
}

bool WatchHub::WaitDispatched(int64_t revision, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return dispatched_cv_.wait_for(lock, timeout,
                                 [&] { return closed_ || last_dispatched_ >= revision; });
}

void WatchHub::Close(Status status) {
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  for (auto& w : watches_) w->End(status);
  watches_.clear();
  dispatched_cv_.notify_all();
}

bool WatchHub::closed() {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_;
}

WatchHandle::~WatchHandle() { Cancel(); }

void WatchHandle::Cancel() {
  state_->End(Status(Code::kUnavailable, "watch cancelled"));
  hub_->Remove(state_.get());
}

}  // namespace mk8s::store
