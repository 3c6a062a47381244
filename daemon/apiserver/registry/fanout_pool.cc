#include "apiserver/registry/fanout_pool.h"

#include <algorithm>

namespace mk8s::apiserver {

FanoutPool::FanoutPool(size_t threads, size_t min_parallel)
    : min_parallel_(std::max<size_t>(min_parallel, 2)) {
  if (threads == 0) {
    threads = std::clamp<size_t>(std::thread::hardware_concurrency(), 1, kMaxAutoThreads);
  }
  for (size_t i = 1; i < threads; ++i) helpers_.emplace_back([this] { Helper(); });
}

FanoutPool::~FanoutPool() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  wake_cv_.notify_all();
  for (auto& helper : helpers_) helper.join();
}

void FanoutPool::Run(size_t count, const std::function<void(size_t)>& work) {
  if (helpers_.empty() || count < min_parallel_) {
    for (size_t i = 0; i < count; ++i) work(i);
    return;
  }
  {
    std::lock_guard lock(mu_);
    job_ = &work;
    count_ = count;
    next_.store(0, std::memory_order_relaxed);
    open_ = true;
    ++generation_;
  }
  wake_cv_.notify_all();
  Drain();
  // Every item is taken. Helpers that have not joined yet will find the batch closed; wait for
  // those inside an item to finish it.
  std::unique_lock lock(mu_);
  open_ = false;
  done_cv_.wait(lock, [this] { return running_ == 0; });
  job_ = nullptr;
}

void FanoutPool::Drain() {
  for (size_t i = next_.fetch_add(1, std::memory_order_relaxed); i < count_;
       i = next_.fetch_add(1, std::memory_order_relaxed)) {
    (*job_)(i);
  }
}

void FanoutPool::Helper() {
  uint64_t seen = 0;
  std::unique_lock lock(mu_);
  while (true) {
    wake_cv_.wait(lock, [&] { return stopping_ || generation_ != seen; });
    if (stopping_) return;
    seen = generation_;
    if (!open_) continue;  // woke after the caller had done the whole batch
    ++running_;
    lock.unlock();
    Drain();
    lock.lock();
    if (--running_ == 0 && !open_) done_cv_.notify_one();
  }
}

}  // namespace mk8s::apiserver
