// Health of the daemon's components, as `mk8s status` reports it.
//
// Each component (datastore, control, later apiserver, kubelet, ...) registers itself and flips
// its own readiness. Thread-safe: any thread may Set() or Snapshot().
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace mk8s {

struct ComponentHealth {
  std::string name;
  bool ready = false;
  std::string message;  // why it is not ready, or a short detail
};

class HealthRegistry {
 public:
  void Set(const std::string& name, bool ready, std::string message = {});
  // Components in registration order.
  std::vector<ComponentHealth> Snapshot() const;
  bool AllReady() const;

 private:
  mutable std::mutex mu_;
  std::vector<ComponentHealth> components_;  // GUARDED_BY(mu_)
};

}  // namespace mk8s
