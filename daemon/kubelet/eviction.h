// Eviction policy of the kubelet under node pressure (upstream's eviction manager with hard and
// soft thresholds): which threshold may be acted on (soft ones after their grace period), which
// resource to reclaim, in which order pods go, how long an evicted pod gets to stop, what it is
// told, and which new pods a node under pressure refuses. Pure functions over plain inputs,
// thread-safe; SoftThresholdTimer is a value owned by one thread. The loop that applies them is
// eviction_manager.h.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "kubelet/node_pressure.h"

namespace mk8s::kubelet {

// The pod resource a signal is about.
enum class EvictionResource { kMemory, kEphemeralStorage, kPids };

// "memory", "ephemeral-storage" or "pids": upstream's words in eviction messages.
const char* EvictionResourceName(EvictionResource resource);
// The resource behind a signal: memory.available -> memory, nodefs.* / imagefs.* ->
// ephemeral-storage, pid.available -> pids.
EvictionResource ResourceOfSignal(const std::string& signal);

// Of the thresholds met now, the one to act on: memory first, then the node filesystem, then
// the image filesystem, then PIDs (upstream's order); for one signal a hard threshold before a
// soft one. nullopt when none is met.
std::optional<MetThreshold> ThresholdToReclaim(const std::vector<MetThreshold>& met);

// Upstream's soft-threshold timing: a soft threshold counts for eviction only once it has been
// observed met continuously for its grace period; one observed not met starts over. Hard
// thresholds count at once. Not thread-safe: owned by the eviction manager's loop.
class SoftThresholdTimer {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  // `met`: every threshold (hard and soft) met at `now`. Returns those to act on.
  std::vector<MetThreshold> Update(const std::vector<MetThreshold>& met, TimePoint now);
  // When the soft threshold on `signal` was first seen met in its current run, if it is met.
  std::optional<TimePoint> FirstMet(const std::string& signal) const;

 private:
  std::map<std::string, TimePoint> first_met_;  // soft thresholds' signals -> start of the run
};

// The grace period (seconds) an evicted pod's containers get to stop. Hard thresholds: 1 s
// (upstream's immediate eviction). Soft thresholds: min(the pod's
// terminationGracePeriodSeconds (30 when unset), `max_pod_grace_seconds`), upstream's
// --eviction-max-pod-grace-period (default 0: soft evictions are immediate too); a negative
// maximum defers to the pod's own value (upstream's documented meaning of a negative flag).
constexpr int64_t kHardEvictionGraceSeconds = 1;
int64_t EvictionGraceSeconds(const MetThreshold& threshold, const nlohmann::json& pod,
                             int64_t max_pod_grace_seconds);

// What one pod uses, as the runtime reports it.
struct PodUsage {
  // Per container name: memory working set and ephemeral storage (writable layer + logs), bytes.
  std::map<std::string, int64_t> container_memory;
  std::map<std::string, int64_t> container_storage;
  int64_t volume_storage = 0;  // emptyDir volumes on the node's disk, bytes
  int64_t processes = 0;       // tasks in the pod's cgroup (pids.current); 0 when unknown
  int64_t MemoryBytes() const;
  int64_t StorageBytes() const;  // containers' plus volumes'
};

struct EvictionCandidate {
  const nlohmann::json* pod = nullptr;  // the API object; not owned
  PodUsage usage;
};

// Never evicted, always admitted: pods at or above the system-critical priority (2000000000,
// system-cluster-critical and system-node-critical) and mirror pods of static pods.
bool IsCriticalPod(const nlohmann::json& pod);

// The pod's request of `resource` (upstream's effective request: the larger of the app
// containers' sum and the largest init container), bytes; pids have none (0).
int64_t PodRequest(const nlohmann::json& pod, EvictionResource resource);

// Indexes of `candidates`, the first to evict first. Memory and ephemeral storage: pods using
// more than they request, then lower priority, then the larger use above the request. PIDs
// (upstream's rankPIDPressure): lower priority, then more processes.
std::vector<size_t> RankForEviction(EvictionResource resource,
                                    const std::vector<EvictionCandidate>& candidates);

// The message an evicted pod's status carries (upstream's wording): "The node was low on
// resource: memory. Threshold quantity: 100Mi, available: 80Mi. Container app was using 120Mi,
// request is 0, has larger consumption of memory. "
std::string EvictionMessage(const MetThreshold& threshold, const EvictionCandidate& candidate);

// Admission on a node whose reported conditions (transition period applied) are `pressure`:
// nullopt admits the pod; otherwise the reason text ("The node had condition: [DiskPressure]. ").
// Critical pods are always admitted; under memory pressure alone, pods that are not BestEffort
// or that tolerate node.kubernetes.io/memory-pressure:NoSchedule are admitted too.
std::optional<std::string> RejectUnderPressure(const nlohmann::json& pod,
                                               const NodePressure& pressure);

}  // namespace mk8s::kubelet
