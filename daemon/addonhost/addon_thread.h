// AddonThread: the one thread on which every call into an addon runs, so that a hung or slow
// addon can be timed out without stalling the caller, and so that addons see their callbacks one
// at a time.
//
// A call that does not finish within its timeout leaves the thread "hung": it cannot be killed
// (C++ has no safe thread cancellation), so it is abandoned. Every later call fails at once,
// queued work is dropped, and the destructor detaches the thread instead of joining it. The
// owner must then keep the addon's library loaded forever (see LoadedAddon), because the hung
// thread may still be executing its code.
//
// Thread-safe. Tasks must only touch data they own or hold through shared_ptr: after a timeout
// the task may outlive the AddonThread and its caller.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/status.h"

namespace mk8s::addonhost {

class AddonThread {
 public:
  explicit AddonThread(std::string name);
  ~AddonThread();  // joins, or detaches when hung
  AddonThread(const AddonThread&) = delete;
  AddonThread& operator=(const AddonThread&) = delete;

  // Runs `task` on the thread and waits for it up to `timeout`. kDeadlineExceeded when it did
  // not finish (the thread is hung from then on); kUnavailable when already hung or stopping.
  // Called on the thread itself, runs `task` inline (no timeout).
  Status Call(std::function<void()> task, std::chrono::milliseconds timeout);
  // Queues `task` without waiting (watch events). Dropped when hung or stopping.
  void Post(std::function<void()> task);
  // True when the current task has run longer than `limit`; marks the thread hung.
  bool CheckStuck(std::chrono::milliseconds limit);
  bool hung() const;
  bool OnThread() const { return std::this_thread::get_id() == id_; }

 private:
  // Shared with the thread, which may outlive this object once detached.
  struct Shared {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::function<void()>> tasks;  // GUARDED_BY(mu)
    bool stopping = false;                    // GUARDED_BY(mu)
    std::atomic<bool> hung{false};
    // When the running task began (steady clock ticks), 0 when idle.
    std::atomic<int64_t> busy_since{0};
  };
  static void Loop(std::shared_ptr<Shared> shared);

  const std::string name_;
  const std::shared_ptr<Shared> shared_ = std::make_shared<Shared>();
  std::thread thread_;
  std::thread::id id_;
};

}  // namespace mk8s::addonhost
