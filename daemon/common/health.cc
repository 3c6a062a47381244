#include "common/health.h"

#include <algorithm>
#include <utility>

namespace mk8s {

void HealthRegistry::Set(const std::string& name, bool ready, std::string message) {
  std::lock_guard lock(mu_);
  auto it = std::find_if(components_.begin(), components_.end(),
                         [&](const ComponentHealth& c) { return c.name == name; });
  if (it == components_.end()) {
    components_.push_back(ComponentHealth{name, ready, std::move(message)});
  } else {
    it->ready = ready;
    it->message = std::move(message);
  }
}

std::vector<ComponentHealth> HealthRegistry::Snapshot() const {
  std::lock_guard lock(mu_);
  return components_;
}

bool HealthRegistry::AllReady() const {
  std::lock_guard lock(mu_);
  return !components_.empty() && std::all_of(components_.begin(), components_.end(),
                                             [](const ComponentHealth& c) { return c.ready; });
}

}  // namespace mk8s
