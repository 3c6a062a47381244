#include "scheduler/service/scheduling_queue.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace mk8s::scheduler {
namespace {

int64_t PriorityOf(const nlohmann::json& pod) {
  const auto spec = pod.find("spec");
  if (spec == pod.end()) return 0;
  const auto priority = spec->find("priority");
  return priority != spec->end() && priority->is_number_integer() ? priority->get<int64_t>() : 0;
}

// Whether an update may change the scheduling outcome: the spec or the labels changed (status
// updates, including our own PodScheduled=False, do not).
bool SchedulingRelevantChange(const nlohmann::json& before, const nlohmann::json& after) {
  static const nlohmann::json kEmpty = nlohmann::json::object();
  auto field = [](const nlohmann::json& pod, const char* key) -> const nlohmann::json& {
    auto it = pod.find(key);
    return it == pod.end() ? kEmpty : *it;
  };
  const nlohmann::json& meta_before = field(before, "metadata");
  const nlohmann::json& meta_after = field(after, "metadata");
  return field(before, "spec") != field(after, "spec") ||
         field(meta_before, "labels") != field(meta_after, "labels");
}

std::string UidOf(const nlohmann::json& pod) {
  const auto meta = pod.find("metadata");
  if (meta == pod.end()) return "";
  return meta->value("uid", meta->value("namespace", "") + "/" + meta->value("name", ""));
}

}  // namespace

SchedulingQueue::SchedulingQueue(SchedulingQueueOptions options) : options_(std::move(options)) {}

SchedulingQueue::TimePoint SchedulingQueue::Now() const {
  return options_.now ? options_.now() : std::chrono::steady_clock::now();
}

std::chrono::milliseconds SchedulingQueue::BackoffFor(int attempts) const {
  std::chrono::milliseconds backoff = options_.initial_backoff;
  for (int i = 1; i < attempts && backoff < options_.max_backoff; ++i) backoff *= 2;
  return std::min(backoff, options_.max_backoff);
}

void SchedulingQueue::PushActiveLocked(Entry& entry) {
  entry.where = Entry::Where::kActive;
  entry.active_key = {-PriorityOf(*entry.pod.pod), entry.pod.enqueued, entry.pod.uid};
  active_.insert(entry.active_key);
  cv_.notify_one();
}

void SchedulingQueue::PushBackoffLocked(Entry& entry) {
  const TimePoint until = entry.last_attempt + BackoffFor(entry.pod.attempts);
  if (until <= Now()) {  // served its backoff already (e.g. while unschedulable)
    PushActiveLocked(entry);
    return;
  }
  entry.where = Entry::Where::kBackoff;
  entry.backoff_until = until;
  backoff_.emplace(entry.backoff_until, entry.pod.uid);
  cv_.notify_one();  // Pop() re-computes how long to wait
}

void SchedulingQueue::EraseFromSetsLocked(Entry& entry) {
  switch (entry.where) {
    case Entry::Where::kActive:
      active_.erase(entry.active_key);
      break;
    case Entry::Where::kBackoff: {
      auto [first, last] = backoff_.equal_range(entry.backoff_until);
      for (auto it = first; it != last; ++it) {
        if (it->second == entry.pod.uid) {
          backoff_.erase(it);
          break;
        }
      }
      break;
    }
    case Entry::Where::kUnschedulable:
      unschedulable_.erase(entry.pod.uid);
      break;
    case Entry::Where::kInFlight:
      break;
  }
}

void SchedulingQueue::AddOrUpdate(std::shared_ptr<const nlohmann::json> pod) {
  const std::string uid = UidOf(*pod);
  std::lock_guard lock(mu_);
  auto it = entries_.find(uid);
  if (it == entries_.end()) {
    Entry entry;
    entry.pod = QueuedPod{uid, std::move(pod), 0, Now()};
    Entry& placed = entries_.emplace(uid, std::move(entry)).first->second;
    PushActiveLocked(placed);
    return;
  }
  Entry& entry = it->second;
  const bool relevant = SchedulingRelevantChange(*entry.pod.pod, *pod);
  entry.pod.pod = std::move(pod);
  if (entry.where == Entry::Where::kActive) {
    // The priority may have changed: re-key.
    active_.erase(entry.active_key);
    PushActiveLocked(entry);
  } else if (entry.where == Entry::Where::kUnschedulable && relevant) {
    unschedulable_.erase(uid);
    PushBackoffLocked(entry);
  } else if (entry.where == Entry::Where::kInFlight && relevant) {
    entry.moved = true;
  }
}

void SchedulingQueue::Delete(const std::string& uid) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(uid);
  if (it == entries_.end()) return;
  if (it->second.where == Entry::Where::kInFlight) {
    it->second.deleted = true;
    return;
  }
  EraseFromSetsLocked(it->second);
  entries_.erase(it);
}

void SchedulingQueue::FlushLocked(TimePoint now) {
  while (!backoff_.empty() && backoff_.begin()->first <= now) {
    const std::string uid = backoff_.begin()->second;
    backoff_.erase(backoff_.begin());
    PushActiveLocked(entries_.at(uid));
  }
  if (unschedulable_.empty()) return;
  for (auto it = unschedulable_.begin(); it != unschedulable_.end();) {
    Entry& entry = entries_.at(*it);
    if (now - entry.unschedulable_since >= options_.unschedulable_timeout) {
      it = unschedulable_.erase(it);
      PushBackoffLocked(entry);
    } else {
      ++it;
    }
  }
}

std::optional<QueuedPod> SchedulingQueue::Pop(TimePoint deadline) {
  std::unique_lock lock(mu_);
  while (true) {
    if (closed_) return std::nullopt;
    FlushLocked(Now());
    if (!active_.empty()) {
      const ActiveKey first = *active_.begin();
      active_.erase(active_.begin());
      Entry& entry = entries_.at(std::get<2>(first));
      entry.where = Entry::Where::kInFlight;
      entry.last_attempt = Now();
      entry.popped_at_move = move_count_;
      entry.popped_at_hint = hint_count_;
      entry.deleted = false;
      entry.moved = false;
      return entry.pod;
    }
    const auto real_now = std::chrono::steady_clock::now();
    if (real_now >= deadline) return std::nullopt;
    // Wake for the earliest backoff expiry (by the injected clock, re-read every poll), the
    // deadline, or a notify.
    auto wait = std::chrono::steady_clock::duration(options_.poll);
    if (!backoff_.empty()) {
      wait = std::min(wait, std::max<std::chrono::steady_clock::duration>(
                                backoff_.begin()->first - Now(), std::chrono::milliseconds(1)));
    }
    cv_.wait_until(lock, std::min(deadline, real_now + wait));
  }
}

void SchedulingQueue::Done(const std::string& uid) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(uid);
  if (it != entries_.end() && it->second.where == Entry::Where::kInFlight) {
    entries_.erase(it);
  }
}

void SchedulingQueue::AddUnschedulable(QueuedPod pod) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(pod.uid);
  if (it == entries_.end() || it->second.where != Entry::Where::kInFlight) return;
  Entry& entry = it->second;
  if (entry.deleted) {
    entries_.erase(it);
    return;
  }
  entry.pod.attempts = pod.attempts + 1;
  if (entry.moved || entry.popped_at_move != move_count_ || HintedSincePopLocked(entry)) {
    // The pod or the cluster changed during the attempt: try again after the backoff.
    PushBackoffLocked(entry);
    return;
  }
  entry.where = Entry::Where::kUnschedulable;
  entry.unschedulable_since = Now();
  unschedulable_.insert(entry.pod.uid);
}

void SchedulingQueue::AddBackoff(QueuedPod pod) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(pod.uid);
  if (it == entries_.end() || it->second.where != Entry::Where::kInFlight) return;
  if (it->second.deleted) {
    entries_.erase(it);
    return;
  }
  it->second.pod.attempts = pod.attempts + 1;
  PushBackoffLocked(it->second);
}

void SchedulingQueue::MoveAllToActive() {
  std::lock_guard lock(mu_);
  ++move_count_;
  for (const std::string& uid : unschedulable_) PushBackoffLocked(entries_.at(uid));
  unschedulable_.clear();
}

void SchedulingQueue::MoveToActiveIf(Hint may_help) {
  std::lock_guard lock(mu_);
  ++hint_count_;
  auto given = std::find_if(hints_.begin(), hints_.end(),
                            [may_help](const auto& hint) { return hint.first == may_help; });
  if (given == hints_.end()) {
    hints_.emplace_back(may_help, hint_count_);
  } else {
    given->second = hint_count_;
  }
  for (auto it = unschedulable_.begin(); it != unschedulable_.end();) {
    Entry& entry = entries_.at(*it);
    if (entry.pod.pod && may_help(*entry.pod.pod)) {
      PushBackoffLocked(entry);
      it = unschedulable_.erase(it);
    } else {
      ++it;
    }
  }
}

bool SchedulingQueue::HintedSincePopLocked(const Entry& entry) const {
  if (!entry.pod.pod) return false;
  for (const auto& [hint, at] : hints_) {
    if (at > entry.popped_at_hint && hint(*entry.pod.pod)) return true;
  }
  return false;
}

void SchedulingQueue::Close() {
  std::lock_guard lock(mu_);
  closed_ = true;
  cv_.notify_all();
}

SchedulingQueue::Counts SchedulingQueue::counts() const {
  std::lock_guard lock(mu_);
  Counts counts;
  counts.active = active_.size();
  counts.backoff = backoff_.size();
  counts.unschedulable = unschedulable_.size();
  counts.in_flight = entries_.size() - counts.active - counts.backoff - counts.unschedulable;
  return counts;
}

}  // namespace mk8s::scheduler
