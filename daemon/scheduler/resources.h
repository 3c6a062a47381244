// Resource: an integer resource vector (cpu in milli-cores, memory and ephemeral storage in bytes,
// pod count, extended/scalar resources such as nvidia.com/gpu in whole units), and the Kubernetes
// rules for what a pod requests. Value type; thread-compatible.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace mk8s::scheduler {

// Requests assumed for containers that request no cpu/memory, for scoring only (upstream values).
inline constexpr int64_t kDefaultMilliCpuRequest = 100;
inline constexpr int64_t kDefaultMemoryRequest = 200 * 1024 * 1024;

struct Resource {
  int64_t milli_cpu = 0;
  int64_t memory = 0;
  int64_t ephemeral_storage = 0;
  int64_t pods = 0;  // allocatable pod count (nodes only)
  // Extended resources, sorted by name. Usually empty, so no allocation for plain pods.
  std::vector<std::pair<std::string, int64_t>> scalar;

  // Reads a v1.ResourceList ({"cpu": "500m", "memory": "1Gi", "nvidia.com/gpu": "1"}).
  static Resource FromList(const nlohmann::json& list);

  int64_t Scalar(std::string_view name) const;
  void SetScalar(const std::string& name, int64_t v);
  void Add(const Resource& o);
  void Sub(const Resource& o);
  // Component-wise max (cpu, memory, storage, scalars).
  void Max(const Resource& o);
  bool IsZero() const;
};

// What a pod needs from a node, computed once per pod.
struct PodRequests {
  Resource requests;  // upstream computePodResourceRequest: containers summed, init containers
                      // max'd (restartable sidecars added), plus spec.overhead
  int64_t non_zero_milli_cpu = 0;  // the same with defaults for containers requesting nothing
  int64_t non_zero_memory = 0;
};

// `pod_spec` is the pod's .spec. A container's limits stand in for missing requests, as the
// API server's defaulting does.
PodRequests ComputePodRequests(const nlohmann::json& pod_spec);

}  // namespace mk8s::scheduler
