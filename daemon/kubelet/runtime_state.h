// What the kubelet knows of one pod on the runtime, in plain structs (no CRI types), so status
// computation and sync decisions are pure functions that tests can feed directly. Built from CRI
// answers by runtime_view.cc. Value types; thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mk8s::kubelet {

enum class ContainerState { kCreated, kRunning, kExited, kUnknown };

// One container instance (an attempt of a pod's container).
struct ContainerInfo {
  std::string id;
  std::string sandbox_id;
  std::string name;       // label io.kubernetes.container.name
  int restart_count = 0;  // annotation io.kubernetes.container.restartCount
  ContainerState state = ContainerState::kUnknown;
  int64_t created_at_ns = 0;
  int64_t started_at_ns = 0;
  int64_t finished_at_ns = 0;
  int exit_code = 0;
  std::string reason;  // CRI's: "Completed", "Error", "OOMKilled"
  std::string message;
  std::string image;      // as asked for
  std::string image_ref;  // the resolved image id
};

// One sandbox of a pod.
struct SandboxInfo {
  std::string id;
  bool ready = false;
  int attempt = 0;
  int64_t created_at_ns = 0;
  std::vector<std::string> ips;  // primary first; empty for host-network pods
};

struct PodRuntimeState {
  std::vector<SandboxInfo> sandboxes;     // newest first
  std::vector<ContainerInfo> containers;  // every instance, any order

  // The newest sandbox, or nullptr.
  const SandboxInfo* Newest() const { return sandboxes.empty() ? nullptr : &sandboxes.front(); }
  // Instances of container `name`, newest (highest restart count, then creation) first.
  std::vector<const ContainerInfo*> Instances(const std::string& name) const;
  // Containers that are running or created (not started yet): what stopping a pod must stop.
  std::vector<const ContainerInfo*> Live() const;
};

}  // namespace mk8s::kubelet
