#include "apiserver/timer_queue.h"

#include <pthread.h>

namespace mk8s::apiserver {

TimerQueue::TimerQueue() : thread_([this] { Run(); }) {
  pthread_setname_np(thread_.native_handle(), "api-timers");
}

TimerQueue::~TimerQueue() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    timers_.clear();
    by_id_.clear();
  }
  cv_.notify_all();
  thread_.join();
}

uint64_t TimerQueue::Schedule(Clock::time_point when, std::function<void()> callback) {
  std::lock_guard lock(mu_);
  const uint64_t id = next_id_++;
  auto it = timers_.emplace(when, std::make_pair(id, std::move(callback)));
  by_id_.emplace(id, it);
  // Only a new earliest timer changes what the thread waits for.
  if (it == timers_.begin()) cv_.notify_all();
  return id;
}

void TimerQueue::Cancel(uint64_t id) {
  std::lock_guard lock(mu_);
  auto found = by_id_.find(id);
  if (found == by_id_.end()) return;  // already ran or cancelled
  timers_.erase(found->second);
  by_id_.erase(found);
}

void TimerQueue::Run() {
  std::unique_lock lock(mu_);
  while (!stopping_) {
    if (timers_.empty()) {
      cv_.wait(lock);
      continue;
    }
    auto first = timers_.begin();
    if (first->first > Clock::now()) {
      cv_.wait_until(lock, first->first);
      continue;
    }
    std::function<void()> callback = std::move(first->second.second);
    by_id_.erase(first->second.first);
    timers_.erase(first);
    lock.unlock();
    callback();
    lock.lock();
  }
}

}  // namespace mk8s::apiserver
