// A thread of its own that runs a pass every period until stopped: the loop of the image garbage
// collector and the eviction manager.
//
// Threads: Start() and Stop() are called by the owner (any thread, not from inside `pass`);
// `pass` runs on the loop's thread only, never two at once. Stop() wakes a waiting loop at once
// and joins it; a pass in progress finishes first.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <thread>

namespace mk8s::kubelet {

class PeriodicLoop {
 public:
  enum class FirstPass { kNow, kAfterOnePeriod };

  PeriodicLoop() = default;
  PeriodicLoop(const PeriodicLoop&) = delete;
  PeriodicLoop& operator=(const PeriodicLoop&) = delete;
  ~PeriodicLoop() { Stop(); }

  // Starts the thread; does nothing when it runs already or Stop() was called.
  void Start(std::chrono::milliseconds period, FirstPass first, std::function<void()> pass) {
    std::lock_guard lock(mu_);
    if (thread_.joinable() || stopping_) return;
    thread_ = std::thread([this, period, first, pass = std::move(pass)] {
      std::unique_lock wait_lock(mu_);
      if (first == FirstPass::kAfterOnePeriod &&
          cv_.wait_for(wait_lock, period, [this] { return stopping_; })) {
        return;
      }
      while (!stopping_) {
        wait_lock.unlock();
        pass();
        wait_lock.lock();
        cv_.wait_for(wait_lock, period, [this] { return stopping_; });
      }
    });
  }

  // Idempotent.
  void Stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;     // written under mu_ by Start; joined by Stop
};

}  // namespace mk8s::kubelet
