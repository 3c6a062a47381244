#include "kubelet/eviction.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <numeric>

#include "common/quantity.h"
#include "kubelet/qos.h"

namespace mk8s::kubelet {
namespace {

using nlohmann::json;

constexpr int64_t kSystemCriticalPriority = 2000000000;

const json& Field(const json& object, const char* key) {
  static const json kEmpty = json::object();
  if (!object.is_object()) return kEmpty;
  auto it = object.find(key);
  return it != object.end() && it->is_object() ? *it : kEmpty;
}

int64_t Priority(const json& pod) {
  const json& spec = Field(pod, "spec");
  auto it = spec.find("priority");
  return it != spec.end() && it->is_number_integer() ? it->get<int64_t>() : 0;
}

// A container's request of `name`; a limit alone stands for the request (the API server's
// defaulting copies it).
int64_t ContainerRequest(const json& container, const char* name) {
  const json& resources = Field(container, "resources");
  const json& requests = Field(resources, "requests");
  if (requests.contains(name)) return JsonQuantityValue(requests[name]);
  const json& limits = Field(resources, "limits");
  return limits.contains(name) ? JsonQuantityValue(limits[name]) : 0;
}

const char* RequestName(EvictionResource resource) {
  return resource == EvictionResource::kMemory ? "memory" : "ephemeral-storage";
}

int64_t Usage(const PodUsage& usage, EvictionResource resource) {
  return resource == EvictionResource::kEphemeralStorage ? usage.StorageBytes()
                                                         : usage.MemoryBytes();
}

// Kubernetes' binary-suffixed form of a byte count: "100Mi", "13676Ki", "512".
std::string BytesText(int64_t bytes) {
  if (bytes != 0 && bytes % (1024 * 1024 * 1024) == 0) {
    return std::to_string(bytes / (1024 * 1024 * 1024)) + "Gi";
  }
  if (bytes != 0 && bytes % (1024 * 1024) == 0) return std::to_string(bytes / (1024 * 1024)) + "Mi";
  if (bytes != 0 && bytes % 1024 == 0) return std::to_string(bytes / 1024) + "Ki";
  return std::to_string(bytes);
}

bool ToleratesMemoryPressure(const json& pod) {
  const json& spec = Field(pod, "spec");
  auto it = spec.find("tolerations");
  if (it == spec.end() || !it->is_array()) return false;
  for (const json& t : *it) {
    if (!t.is_object()) continue;
    const std::string key = t.value("key", "");
    const std::string op = t.value("operator", "Equal");
    const std::string effect = t.value("effect", "");
    if (!effect.empty() && effect != "NoSchedule") continue;
    if (op == "Exists" && (key.empty() || key == "node.kubernetes.io/memory-pressure")) return true;
    if (op == "Equal" && key == "node.kubernetes.io/memory-pressure" && t.value("value", "").empty())
      return true;
  }
  return false;
}

}  // namespace

const char* EvictionResourceName(EvictionResource resource) {
  switch (resource) {
    case EvictionResource::kMemory: return "memory";
    case EvictionResource::kEphemeralStorage: return "ephemeral-storage";
    case EvictionResource::kPids: return "pids";
  }
  return "memory";
}

EvictionResource ResourceOfSignal(const std::string& signal) {
  if (signal.rfind("memory.", 0) == 0) return EvictionResource::kMemory;
  if (signal.rfind("pid.", 0) == 0) return EvictionResource::kPids;
  return EvictionResource::kEphemeralStorage;
}

std::optional<MetThreshold> ThresholdToReclaim(const std::vector<MetThreshold>& met) {
  auto rank = [](const MetThreshold& m) {
    const int soft = m.soft ? 1 : 0;
    if (m.signal.rfind("memory.", 0) == 0) return 0 + soft;
    if (m.signal.rfind("nodefs.", 0) == 0) return 2 + soft;
    if (m.signal.rfind("imagefs.", 0) == 0) return 4 + soft;
    return 6 + soft;
  };
  const MetThreshold* best = nullptr;
  for (const MetThreshold& m : met) {
    if (best == nullptr || rank(m) < rank(*best)) best = &m;
  }
  if (best == nullptr) return std::nullopt;
  return *best;
}

std::vector<MetThreshold> SoftThresholdTimer::Update(const std::vector<MetThreshold>& met,
                                                     TimePoint now) {
  std::map<std::string, TimePoint> still_met;
  std::vector<MetThreshold> actionable;
  for (const MetThreshold& m : met) {
    if (!m.soft) {
      actionable.push_back(m);
      continue;
    }
    auto earlier = first_met_.find(m.signal);
    const TimePoint since = earlier != first_met_.end() ? earlier->second : now;
    still_met[m.signal] = since;
    if (now - since >= m.grace_period) actionable.push_back(m);
  }
  first_met_ = std::move(still_met);  // a soft threshold not met now starts over
  return actionable;
}

std::optional<SoftThresholdTimer::TimePoint> SoftThresholdTimer::FirstMet(
    const std::string& signal) const {
  auto it = first_met_.find(signal);
  if (it == first_met_.end()) return std::nullopt;
  return it->second;
}

int64_t EvictionGraceSeconds(const MetThreshold& threshold, const json& pod,
                             int64_t max_pod_grace_seconds) {
  if (!threshold.soft) return kHardEvictionGraceSeconds;
  const json& spec = Field(pod, "spec");
  auto it = spec.find("terminationGracePeriodSeconds");
  const int64_t own = it != spec.end() && it->is_number_integer() && it->get<int64_t>() >= 0
                          ? it->get<int64_t>()
                          : 30;
  if (max_pod_grace_seconds < 0) return own;
  return std::min(own, max_pod_grace_seconds);
}

int64_t PodUsage::MemoryBytes() const {
  return std::accumulate(container_memory.begin(), container_memory.end(), int64_t{0},
                         [](int64_t sum, const auto& entry) { return sum + entry.second; });
}

int64_t PodUsage::StorageBytes() const {
  return std::accumulate(container_storage.begin(), container_storage.end(), volume_storage,
                         [](int64_t sum, const auto& entry) { return sum + entry.second; });
}

bool IsCriticalPod(const json& pod) {
  if (Priority(pod) >= kSystemCriticalPriority) return true;
  const json& annotations = Field(Field(pod, "metadata"), "annotations");
  return annotations.contains("kubernetes.io/config.mirror");
}

int64_t PodRequest(const json& pod, EvictionResource resource) {
  if (resource == EvictionResource::kPids) return 0;
  const json& spec = Field(pod, "spec");
  int64_t sum = 0;
  int64_t largest_init = 0;
  for (const char* list : {"containers", "initContainers"}) {
    auto it = spec.find(list);
    if (it == spec.end() || !it->is_array()) continue;
    for (const json& container : *it) {
      const int64_t request = ContainerRequest(container, RequestName(resource));
      if (std::string(list) == "containers") {
        sum += request;
      } else {
        largest_init = std::max(largest_init, request);
      }
    }
  }
  return std::max(sum, largest_init);
}

std::vector<size_t> RankForEviction(EvictionResource resource,
                                    const std::vector<EvictionCandidate>& candidates) {
  struct Key {
    bool exceeds;      // uses more than it requests
    int64_t priority;  // lower goes first
    int64_t above;     // use above the request; larger goes first
  };
  std::vector<Key> keys;
  keys.reserve(candidates.size());
  for (const EvictionCandidate& c : candidates) {
    const int64_t request = PodRequest(*c.pod, resource);
    const int64_t use = Usage(c.usage, resource);
    if (resource == EvictionResource::kPids) {
      keys.push_back({true, Priority(*c.pod), c.usage.processes});
    } else {
      keys.push_back({use > request, Priority(*c.pod), use - request});
    }
  }
  std::vector<size_t> order(candidates.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const Key& x = keys[a];
    const Key& y = keys[b];
    if (x.exceeds != y.exceeds) return x.exceeds;
    if (x.priority != y.priority) return x.priority < y.priority;
    return x.above > y.above;
  });
  return order;
}

std::string EvictionMessage(const MetThreshold& threshold, const EvictionCandidate& candidate) {
  const EvictionResource resource = ResourceOfSignal(threshold.signal);
  std::string message = std::string("The node was low on resource: ") +
                        EvictionResourceName(resource) + ". Threshold quantity: " +
                        SignalValueText(threshold.signal, threshold.limit) +
                        ", available: " + SignalValueText(threshold.signal, threshold.available) +
                        ". ";
  if (resource == EvictionResource::kPids) return message;
  const std::map<std::string, int64_t>& used = resource == EvictionResource::kMemory
                                                   ? candidate.usage.container_memory
                                                   : candidate.usage.container_storage;
  for (const char* list : {"initContainers", "containers"}) {
    const json& spec = Field(*candidate.pod, "spec");
    auto it = spec.find(list);
    if (it == spec.end() || !it->is_array()) continue;
    for (const json& container : *it) {
      if (!container.is_object()) continue;
      const std::string name = container.value("name", "");
      auto use = used.find(name);
      if (use == used.end()) continue;
      const int64_t request = ContainerRequest(container, RequestName(resource));
      if (use->second <= request) continue;
      message += "Container " + name + " was using " + BytesText(use->second) + ", request is " +
                 BytesText(request) + ", has larger consumption of " +
                 EvictionResourceName(resource) + ". ";
    }
  }
  return message;
}

std::optional<std::string> RejectUnderPressure(const json& pod, const NodePressure& pressure) {
  if (!pressure.memory && !pressure.disk && !pressure.pid) return std::nullopt;
  if (IsCriticalPod(pod)) return std::nullopt;
  if (pressure.memory && !pressure.disk && !pressure.pid) {
    if (QosClass(pod) != "BestEffort" || ToleratesMemoryPressure(pod)) return std::nullopt;
  }
  std::string conditions;
  for (const auto& [on, name] : {std::pair{pressure.memory, "MemoryPressure"},
                                 std::pair{pressure.disk, "DiskPressure"},
                                 std::pair{pressure.pid, "PIDPressure"}}) {
    if (!on) continue;
    if (!conditions.empty()) conditions += " ";
    conditions += name;
  }
  return "The node had condition: [" + conditions + "]. ";
}

}  // namespace mk8s::kubelet
