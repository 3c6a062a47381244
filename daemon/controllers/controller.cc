#include "controllers/controller.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

namespace mk8s::controllers {

Controller::Controller(std::string name, const ControllerContext& context)
    : context_(context),
      name_(std::move(name)),
      clock_(context.clock ? context.clock : client::RealClock::Get()),
      real_clock_(dynamic_cast<client::RealClock*>(clock_) != nullptr),
      wall_anchor_(std::chrono::system_clock::now()),
      clock_anchor_(clock_->Now()),
      queue_(clock_) {}

std::chrono::system_clock::time_point Controller::WallNow() const {
  if (real_clock_) return std::chrono::system_clock::now();
  return wall_anchor_ + std::chrono::duration_cast<std::chrono::system_clock::duration>(
                            clock_->Now() - clock_anchor_);
}

Controller::~Controller() { Stop(); }

void Controller::EnqueueObject(const client::ObjectPtr& object) {
  if (object) Enqueue(client::ObjectKey(*object));
}

void Controller::Run(int workers) {
  for (int i = 0; i < workers; ++i) workers_.emplace_back([this] { Work(); });
}

void Controller::Stop() {
  if (stopped_.exchange(true)) return;
  queue_.ShutDown();
  for (std::thread& worker : workers_) worker.join();
  workers_.clear();
}

namespace {
// The controller whose Reconcile runs on this worker thread, and when (on its queue's clock) that
// reconcile started; read by EnqueueAfter.
thread_local const Controller* reconciling = nullptr;
thread_local client::Clock::TimePoint reconcile_started;
}  // namespace

void Controller::EnqueueAfter(const std::string& key, std::chrono::milliseconds delay) {
  if (reconciling == this) {
    queue_.AddAt(key, reconcile_started + delay);
  } else {
    queue_.AddAfter(key, delay);
  }
}

void Controller::Work() {
  while (auto key = queue_.Get()) {
    Status status;
    reconciling = this;
    reconcile_started = clock_->Now();
    try {
      status = Reconcile(*key);
    } catch (const std::exception& error) {
      status = Status(Code::kInternal, error.what());
    }
    reconciling = nullptr;
    if (status.ok()) {
      queue_.Forget(*key);
    } else {
      if (queue_.NumRequeues(*key) < 5) {
        spdlog::debug("{}: {} requeued: {}", name_, *key, status.ToString());
      } else {
        spdlog::warn("{}: {} keeps failing: {}", name_, *key, status.ToString());
      }
      queue_.AddRateLimited(*key);
    }
    queue_.Done(*key);
  }
}

}  // namespace mk8s::controllers
