#include "client/clock.h"

namespace mk8s::client {

RealClock* RealClock::Get() {
  static RealClock* clock = new RealClock();  // never destroyed: timers may fire at exit
  return clock;
}

RealClock::~RealClock() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

uint64_t RealClock::Schedule(TimePoint when, std::function<void()> fn) {
  std::lock_guard lock(mu_);
  const uint64_t id = next_id_++;
  timers_.emplace(std::make_pair(when, id), std::move(fn));
  due_.emplace(id, when);
  if (!thread_.joinable()) thread_ = std::thread([this] { Run(); });
  cv_.notify_all();
  return id;
}

bool RealClock::Cancel(uint64_t id) {
  std::lock_guard lock(mu_);
  auto it = due_.find(id);
  if (it == due_.end()) return false;
  timers_.erase(std::make_pair(it->second, id));
  due_.erase(it);
  return true;
}

void RealClock::Run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    if (timers_.empty()) {
      cv_.wait(lock);
      continue;
    }
    auto first = timers_.begin();
    if (first->first.first > Now()) {
      cv_.wait_until(lock, first->first.first);
      continue;
    }
    std::function<void()> fn = std::move(first->second);
    due_.erase(first->first.second);
    timers_.erase(first);
    lock.unlock();
    fn();
    lock.lock();
  }
}

Clock::TimePoint FakeClock::Now() {
  std::lock_guard lock(mu_);
  return now_;
}

uint64_t FakeClock::Schedule(TimePoint when, std::function<void()> fn) {
  std::lock_guard lock(mu_);
  const uint64_t id = next_id_++;
  timers_.emplace(std::make_pair(when, id), std::move(fn));
  due_.emplace(id, when);
  return id;
}

bool FakeClock::Cancel(uint64_t id) {
  std::lock_guard lock(mu_);
  auto it = due_.find(id);
  if (it == due_.end()) return false;
  timers_.erase(std::make_pair(it->second, id));
  due_.erase(it);
  return true;
}

void FakeClock::Advance(Duration d) {
  TimePoint target;
  {
    std::lock_guard lock(mu_);
    target = now_ + d;
  }
  for (;;) {
    std::function<void()> fn;
    {
      std::lock_guard lock(mu_);
      auto first = timers_.begin();
      if (first == timers_.end() || first->first.first > target) {
        now_ = target;
        return;
      }
      if (first->first.first > now_) now_ = first->first.first;
      fn = std::move(first->second);
      due_.erase(first->first.second);
      timers_.erase(first);
    }
    fn();
  }
}

size_t FakeClock::PendingTimers() {
  std::lock_guard lock(mu_);
  return timers_.size();
}

}  // namespace mk8s::client
