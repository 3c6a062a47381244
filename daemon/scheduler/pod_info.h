// PodInfo: everything the scheduler needs from a v1.Pod, parsed once (labels, requests, ports,
// tolerations, node/pod affinity, topology spread). Immutable after Parse(); shared between the
// cache and scheduling cycles as std::shared_ptr<const PodInfo>, safe to read from any thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "scheduler/labels.h"
#include "scheduler/resources.h"

namespace mk8s::scheduler {

struct HostPort {
  std::string protocol;  // "TCP" when unset
  std::string ip;        // "0.0.0.0" when unset
  int32_t port = 0;
  // Same protocol and port, and the IPs overlap (equal, or either is the wildcard 0.0.0.0).
  bool ConflictsWith(const HostPort& o) const;
};

// Looks up a namespace's labels, for namespaceSelector; returns nullptr when unknown.
using NamespaceLabelsFn = std::function<const Labels*(const std::string& ns)>;

// v1.PodAffinityTerm, with the namespace of the pod that declares it (the default scope).
struct AffinityTerm {
  LabelSelector selector;
  std::vector<std::string> namespaces;
  std::optional<LabelSelector> namespace_selector;
  std::string topology_key;
  std::string owner_namespace;

  static AffinityTerm Parse(const nlohmann::json& term, const std::string& owner_ns);
  // Whether the term selects pod `ns`/`labels`.
  bool Matches(const std::string& ns, const Labels& labels,
               const NamespaceLabelsFn& ns_labels) const;
};

struct WeightedAffinityTerm {
  int32_t weight = 0;
  AffinityTerm term;
};

struct WeightedNodeTerm {
  int32_t weight = 0;
  NodeSelector::Term term;
};

struct SpreadConstraint {
  int32_t max_skew = 1;
  std::string topology_key;
  bool hard = true;  // whenUnsatisfiable: DoNotSchedule (else ScheduleAnyway)
  LabelSelector selector;
  int32_t min_domains = 1;
  bool honor_node_affinity = true;  // nodeAffinityPolicy (default Honor)
  bool honor_node_taints = false;   // nodeTaintsPolicy (default Ignore)
};

struct PodInfo {
  std::string key;  // metadata.uid, or namespace/name when the uid is missing
  std::string name;
  std::string ns;
  std::string node_name;  // spec.nodeName
  Labels labels;
  PodRequests req;
  std::vector<HostPort> host_ports;
  std::vector<Toleration> tolerations;
  Labels node_selector;
  std::optional<NodeSelector> required_node_affinity;
  std::vector<WeightedNodeTerm> preferred_node_affinity;
  std::vector<AffinityTerm> required_affinity;
  std::vector<AffinityTerm> required_anti_affinity;
  std::vector<WeightedAffinityTerm> preferred_affinity;
  std::vector<WeightedAffinityTerm> preferred_anti_affinity;
  std::vector<SpreadConstraint> spread_constraints;
  std::vector<std::string> images;  // normalized container image names
  bool terminal = false;            // phase Succeeded or Failed
  int64_t priority = 0;             // spec.priority (set by the API server from the class)
  bool preempt_never = false;       // spec.preemptionPolicy: Never
  bool terminating = false;         // metadata.deletionTimestamp set
  std::string nominated_node;       // status.nominatedNodeName (a preemptor waiting for it)

  static std::shared_ptr<const PodInfo> Parse(const nlohmann::json& pod);
  bool HasAffinityTerms() const {
    return !required_affinity.empty() || !required_anti_affinity.empty() ||
           !preferred_affinity.empty() || !preferred_anti_affinity.empty();
  }
};

// The pod key Parse() would compute (uid, else namespace/name).
std::string PodKey(const nlohmann::json& pod);

// "nginx" -> "docker.io/library/nginx:latest"; "quay.io/x/y" -> "quay.io/x/y:latest".
std::string NormalizeImageName(const std::string& image);

}  // namespace mk8s::scheduler
