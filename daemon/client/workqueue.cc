#include "client/workqueue.h"

#include <algorithm>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

namespace mk8s::client {

struct WorkQueue::State {
  Clock* clock = nullptr;
  RateLimiterOptions options;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::string> queue;                  // GUARDED_BY(mu)
  std::unordered_set<std::string> dirty;          // queued or re-added while processing
  std::unordered_set<std::string> processing;     // GUARDED_BY(mu)
  bool shutting_down = false;                     // GUARDED_BY(mu)
  struct Delayed {
    Clock::TimePoint when;
    uint64_t timer_id;
  };
  std::unordered_map<std::string, Delayed> delayed;  // GUARDED_BY(mu)
  std::unordered_map<std::string, int> failures;     // GUARDED_BY(mu)
  double tokens = 0;                                  // GUARDED_BY(mu)
  Clock::TimePoint tokens_at;                         // GUARDED_BY(mu)

  void AddLocked(const std::string& item) {
    if (shutting_down || dirty.count(item)) return;
    dirty.insert(item);
    if (processing.count(item)) return;
    queue.push_back(item);
    cv.notify_one();
  }
};

WorkQueue::WorkQueue(Clock* clock, RateLimiterOptions options) : state_(std::make_shared<State>()) {
  state_->clock = clock ? clock : RealClock::Get();
  state_->options = options;
  state_->tokens = options.burst;
  state_->tokens_at = state_->clock->Now();
}

WorkQueue::~WorkQueue() { ShutDown(); }

void WorkQueue::Add(const std::string& item) {
  std::lock_guard lock(state_->mu);
  state_->AddLocked(item);
}

std::optional<std::string> WorkQueue::Get() {
  std::unique_lock lock(state_->mu);
  state_->cv.wait(lock, [&] { return !state_->queue.empty() || state_->shutting_down; });
  if (state_->queue.empty()) return std::nullopt;
  std::string item = std::move(state_->queue.front());
  state_->queue.pop_front();
  state_->processing.insert(item);
  state_->dirty.erase(item);
  return item;
}

std::optional<std::string> WorkQueue::GetUntil(Clock::TimePoint real_deadline) {
  std::unique_lock lock(state_->mu);
  state_->cv.wait_until(lock, real_deadline,
                        [&] { return !state_->queue.empty() || state_->shutting_down; });
  if (state_->queue.empty()) return std::nullopt;
  std::string item = std::move(state_->queue.front());
  state_->queue.pop_front();
  state_->processing.insert(item);
  state_->dirty.erase(item);
  return item;
}

void WorkQueue::Done(const std::string& item) {
  std::lock_guard lock(state_->mu);
  state_->processing.erase(item);
  if (state_->dirty.count(item)) {
    state_->queue.push_back(item);
    state_->cv.notify_one();
  }
}

void WorkQueue::AddAfter(const std::string& item, Clock::Duration delay) {
  if (delay <= Clock::Duration::zero()) return Add(item);
  AddAt(item, state_->clock->Now() + delay);
}

void WorkQueue::AddAt(const std::string& item, Clock::TimePoint when) {
  Clock* clock = state_->clock;
  if (when <= clock->Now()) return Add(item);
  std::lock_guard lock(state_->mu);
  if (state_->shutting_down) return;
  auto it = state_->delayed.find(item);
  if (it != state_->delayed.end()) {
    if (it->second.when <= when) return;  // already due sooner
    clock->Cancel(it->second.timer_id);
    state_->delayed.erase(it);
  }
  std::weak_ptr<State> weak = state_;
  // Schedule under mu: the timer callback takes mu, so it cannot run before the id is recorded.
  const uint64_t id = clock->Schedule(when, [weak, item] {
    auto state = weak.lock();
    if (!state) return;
    std::lock_guard lock(state->mu);
    state->delayed.erase(item);
    state->AddLocked(item);
  });
  state_->delayed[item] = State::Delayed{when, id};
}

Clock::Duration WorkQueue::When(const std::string& item) {
  const Clock::TimePoint now = state_->clock->Now();
  std::lock_guard lock(state_->mu);
  const RateLimiterOptions& o = state_->options;
  // Per-item exponential backoff.
  const int failures = state_->failures[item]++;
  double backoff_ms = o.base_delay.count() * std::pow(2.0, std::min(failures, 62));
  backoff_ms = std::min(backoff_ms, static_cast<double>(o.max_delay.count()));
  Clock::Duration backoff = std::chrono::duration_cast<Clock::Duration>(
      std::chrono::duration<double, std::milli>(backoff_ms));
  // Overall token bucket: refill, then reserve one token (may go negative = wait).
  Clock::Duration bucket{0};
  if (o.qps > 0) {
    const double elapsed = std::chrono::duration<double>(now - state_->tokens_at).count();
    state_->tokens = std::min<double>(o.burst, state_->tokens + elapsed * o.qps);
    state_->tokens_at = now;
    state_->tokens -= 1;
    if (state_->tokens < 0) {
      bucket = std::chrono::duration_cast<Clock::Duration>(
          std::chrono::duration<double>(-state_->tokens / o.qps));
    }
  }
  return std::max(backoff, bucket);
}

void WorkQueue::AddRateLimited(const std::string& item) { AddAfter(item, When(item)); }

void WorkQueue::Forget(const std::string& item) {
  std::lock_guard lock(state_->mu);
  state_->failures.erase(item);
}

int WorkQueue::NumRequeues(const std::string& item) {
  std::lock_guard lock(state_->mu);
  auto it = state_->failures.find(item);
  return it == state_->failures.end() ? 0 : it->second;
}

void WorkQueue::ShutDown() {
  std::lock_guard lock(state_->mu);
  if (state_->shutting_down) return;
  state_->shutting_down = true;
  for (auto& [item, delayed] : state_->delayed) state_->clock->Cancel(delayed.timer_id);
  state_->delayed.clear();
  state_->cv.notify_all();
}

bool WorkQueue::ShuttingDown() {
  std::lock_guard lock(state_->mu);
  return state_->shutting_down;
}

size_t WorkQueue::Len() {
  std::lock_guard lock(state_->mu);
  return state_->queue.size();
}

}  // namespace mk8s::client
