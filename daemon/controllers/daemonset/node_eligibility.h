// Which nodes a DaemonSet's pod belongs on, and how its pods are pinned there (upstream's
// NodeShouldRunDaemonPod, AddOrUpdateDaemonPodTolerations and
// ReplaceDaemonSetPodNodeNameNodeAffinity). Pure functions over JSON; thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace mk8s::controllers {

struct NodeVerdict {
  bool should_run = false;               // a daemon pod should be created here
  bool should_continue_running = false;  // an existing daemon pod may stay (NoSchedule taints)
};

// The pod spec's tolerations plus those every daemon pod gets: not-ready and unreachable
// (NoExecute, forever); disk-, memory-, pid-pressure and unschedulable (NoSchedule); and
// network-unavailable (NoSchedule) for hostNetwork pods.
nlohmann::json WithDaemonTolerations(nlohmann::json pod_spec);

// `pod_spec` is the DaemonSet's template spec with WithDaemonTolerations applied. Honours
// spec.nodeName, nodeSelector, required node affinity and taints (NoSchedule/NoExecute).
NodeVerdict EvaluateNode(const nlohmann::json& node, const nlohmann::json& pod_spec);

// Pins the pod spec to `node_name` the upstream way: required node affinity with the single term
// matchFields metadata.name In [node] (replacing other required terms; preferred ones stay).
// The scheduler then binds the pod to that node.
nlohmann::json PinToNode(nlohmann::json pod_spec, const std::string& node_name);

// The node a daemon pod belongs to: spec.nodeName, else its matchFields metadata.name pin, else "".
std::string TargetNodeName(const nlohmann::json& pod);

// Label/field requirements (NodeSelectorRequirement) and terms, exposed for tests.
bool NodeSelectorTermsMatch(const nlohmann::json& terms, const nlohmann::json& node);
bool Tolerates(const nlohmann::json& toleration, const nlohmann::json& taint);

}  // namespace mk8s::controllers
