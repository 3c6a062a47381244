#include "kubelet/runtime_state.h"

#include <algorithm>

namespace mk8s::kubelet {

std::vector<const ContainerInfo*> PodRuntimeState::Live() const {
  std::vector<const ContainerInfo*> live;
  for (const ContainerInfo& c : containers) {
    if (c.state == ContainerState::kRunning || c.state == ContainerState::kCreated)
      live.push_back(&c);
  }
  return live;
}

std::vector<const ContainerInfo*> PodRuntimeState::Instances(const std::string& name) const {
  std::vector<const ContainerInfo*> found;
  for (const ContainerInfo& container : containers) {
    if (container.name == name) found.push_back(&container);
  }
  std::sort(found.begin(), found.end(), [](const ContainerInfo* a, const ContainerInfo* b) {
    if (a->restart_count != b->restart_count) return a->restart_count > b->restart_count;
    return a->created_at_ns > b->created_at_ns;
  });
  return found;
}

}  // namespace mk8s::kubelet
