// Pod QoS class (upstream's rules over cpu and memory requests/limits of every container) and
// what follows from it on the node: the pod's cgroup parent and the containers' OOM score.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>
#include <nlohmann/json_fwd.hpp>
#include <string>

namespace mk8s::kubelet {

// "Guaranteed", "Burstable" or "BestEffort".
std::string QosClass(const nlohmann::json& pod);
// "/mk8s/pod<uid>" (Guaranteed), "/mk8s/burstable/pod<uid>", "/mk8s/besteffort/pod<uid>".
std::string PodCgroupParent(const nlohmann::json& pod);
// oom_score_adj: Guaranteed -997, BestEffort 1000, Burstable by the memory request's share of
// the node's memory, within [3, 999].
int64_t OomScoreAdj(const nlohmann::json& pod, const nlohmann::json& container,
                    int64_t memory_capacity_bytes);

}  // namespace mk8s::kubelet
