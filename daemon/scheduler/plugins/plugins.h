// The in-tree scheduler plugins: names (as upstream spells them) and factories. Each plugin lives
// in its own file under plugins/; RegisterInTreePlugins() adds them all to a registry.
#pragma once

#include <memory>

#include <nlohmann/json.hpp>

#include "scheduler/framework.h"

namespace mk8s::scheduler {

class PluginRegistry;

inline constexpr const char* kNodeUnschedulable = "NodeUnschedulable";
inline constexpr const char* kNodeName = "NodeName";
inline constexpr const char* kNodePorts = "NodePorts";
inline constexpr const char* kTaintToleration = "TaintToleration";
inline constexpr const char* kNodeAffinity = "NodeAffinity";
inline constexpr const char* kNodeResourcesFit = "NodeResourcesFit";
inline constexpr const char* kBalancedAllocation = "NodeResourcesBalancedAllocation";
inline constexpr const char* kImageLocality = "ImageLocality";
inline constexpr const char* kInterPodAffinity = "InterPodAffinity";
inline constexpr const char* kPodTopologySpread = "PodTopologySpread";

// Filters only.
std::unique_ptr<Plugin> NewNodeUnschedulable(const nlohmann::json& args);
std::unique_ptr<Plugin> NewNodeName(const nlohmann::json& args);
std::unique_ptr<Plugin> NewNodePorts(const nlohmann::json& args);
// Filter + score (PreferNoSchedule taints).
std::unique_ptr<Plugin> NewTaintToleration(const nlohmann::json& args);
// Filter (nodeSelector, required terms) + score (preferred terms).
std::unique_ptr<Plugin> NewNodeAffinity(const nlohmann::json& args);
// Filter (requests vs allocatable) + score (LeastAllocated over cpu and memory, weights 1:1).
std::unique_ptr<Plugin> NewNodeResourcesFit(const nlohmann::json& args);
// Score only.
std::unique_ptr<Plugin> NewBalancedAllocation(const nlohmann::json& args);
std::unique_ptr<Plugin> NewImageLocality(const nlohmann::json& args);
// Filter + score.
std::unique_ptr<Plugin> NewInterPodAffinity(const nlohmann::json& args);
std::unique_ptr<Plugin> NewPodTopologySpread(const nlohmann::json& args);

void RegisterInTreePlugins(PluginRegistry* registry);

}  // namespace mk8s::scheduler

namespace mk8s::scheduler {
// spec.nodeSelector and required node affinity both match the node (NodeAffinity's filter).
bool PodMatchesNodeSelectorAndAffinity(const PodInfo& pod, const NodeInfo& node);
}  // namespace mk8s::scheduler
