#include "addonhost/addon_thread.h"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <future>

namespace mk8s::addonhost {
namespace {

int64_t Now() { return std::chrono::steady_clock::now().time_since_epoch().count(); }

}  // namespace

AddonThread::AddonThread(std::string name) : name_(std::move(name)) {
  thread_ = std::thread(&AddonThread::Loop, shared_);
  id_ = thread_.get_id();
  // Linux limits thread names to 15 characters.
  pthread_setname_np(thread_.native_handle(), ("addon-" + name_).substr(0, 15).c_str());
}

AddonThread::~AddonThread() {
  {
    std::lock_guard lock(shared_->mu);
    shared_->stopping = true;
    shared_->tasks.clear();
  }
  shared_->cv.notify_all();
  if (!thread_.joinable()) return;
  if (OnThread()) {
    thread_.detach();  // destroyed from its own task: it exits when the task returns
  } else if (shared_->hung.load()) {
    spdlog::warn("addon {}: abandoning its hung thread", name_);
    thread_.detach();
  } else {
    thread_.join();
  }
}

void AddonThread::Loop(std::shared_ptr<Shared> shared) {
  for (;;) {
    std::function<void()> task;
    {
      std::unique_lock lock(shared->mu);
      shared->cv.wait(lock, [&] { return shared->stopping || !shared->tasks.empty(); });
      if (shared->stopping || shared->hung.load()) return;
      task = std::move(shared->tasks.front());
      shared->tasks.pop_front();
    }
    shared->busy_since.store(Now());
    task();
    shared->busy_since.store(0);
    if (shared->hung.load()) return;  // a late return after a timeout: the owner gave up on us
  }
}

Status AddonThread::Call(std::function<void()> task, std::chrono::milliseconds timeout) {
  if (shared_->hung.load()) {
    return Status(Code::kUnavailable, "its thread is hung in an earlier call");
  }
  if (OnThread()) {
    task();
    return Status::Ok();
  }
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> finished = done->get_future();
  {
    std::lock_guard lock(shared_->mu);
    if (shared_->stopping) return Status(Code::kUnavailable, "the addon host is stopping");
    shared_->tasks.emplace_back([task = std::move(task), done] {
      task();
      done->set_value();
    });
  }
  shared_->cv.notify_one();
  if (finished.wait_for(timeout) == std::future_status::ready) return Status::Ok();
  shared_->hung.store(true);
  return Status(Code::kDeadlineExceeded,
                "did not return within " + std::to_string(timeout.count()) + " ms");
}

void AddonThread::Post(std::function<void()> task) {
  if (shared_->hung.load()) return;
  {
    std::lock_guard lock(shared_->mu);
    if (shared_->stopping) return;
    shared_->tasks.push_back(std::move(task));
  }
  shared_->cv.notify_one();
}

bool AddonThread::CheckStuck(std::chrono::milliseconds limit) {
  if (shared_->hung.load()) return true;
  const int64_t since = shared_->busy_since.load();
  if (since == 0) return false;
  const auto busy = std::chrono::steady_clock::duration(Now() - since);
  if (busy < limit) return false;
  shared_->hung.store(true);
  return true;
}

bool AddonThread::hung() const { return shared_->hung.load(); }

}  // namespace mk8s::addonhost
