#include "controllers/common/expectations.h"

#include <algorithm>

namespace mk8s::controllers {
namespace {

constexpr auto kExpectationTtl = std::chrono::minutes(5);

}  // namespace

Expectations::Expectations(client::Clock* clock)
    : clock_(clock != nullptr ? clock : client::RealClock::Get()) {}

void Expectations::Expect(const std::string& key, int creates, int deletes) {
  const client::Clock::TimePoint now = clock_->Now();
  std::lock_guard lock(mu_);
  pending_[key] = Pending{creates, deletes, now};
}

void Expectations::LowerExpectations(const std::string& key, int creates, int deletes) {
  std::lock_guard lock(mu_);
  if (auto it = pending_.find(key); it != pending_.end()) {
    it->second.creates = std::max(0, it->second.creates - creates);
    it->second.deletes = std::max(0, it->second.deletes - deletes);
  }
}

void Expectations::CreationObserved(const std::string& key) {
  std::lock_guard lock(mu_);
  if (auto it = pending_.find(key); it != pending_.end() && it->second.creates > 0) {
    --it->second.creates;
  }
}

void Expectations::DeletionObserved(const std::string& key) {
  std::lock_guard lock(mu_);
  if (auto it = pending_.find(key); it != pending_.end() && it->second.deletes > 0) {
    --it->second.deletes;
  }
}

bool Expectations::Satisfied(const std::string& key) {
  const client::Clock::TimePoint now = clock_->Now();
  std::lock_guard lock(mu_);
  auto it = pending_.find(key);
  if (it == pending_.end()) return true;
  if ((it->second.creates <= 0 && it->second.deletes <= 0) ||
      now - it->second.since > kExpectationTtl) {
    pending_.erase(it);
    return true;
  }
  return false;
}

void Expectations::Forget(const std::string& key) {
  std::lock_guard lock(mu_);
  pending_.erase(key);
}

}  // namespace mk8s::controllers
