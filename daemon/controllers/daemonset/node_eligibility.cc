#include "controllers/daemonset/node_eligibility.h"

#include <algorithm>
#include <cstdlib>

namespace mk8s::controllers {
namespace {

using nlohmann::json;

std::string Text(const json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_null()) return "";
  return value.dump();
}

bool RequirementMatches(const json& requirement, const json& values_by_key) {
  const std::string key = requirement.value("key", "");
  const std::string op = requirement.value("operator", "");
  const json values = requirement.value("values", json::array());
  const bool present = values_by_key.contains(key);
  const std::string actual = present ? Text(values_by_key[key]) : "";
  auto listed = [&] {
    return std::any_of(values.begin(), values.end(), [&](const json& v) { return Text(v) == actual; });
  };
  if (op == "In") return present && listed();
  if (op == "NotIn") return !present || !listed();
  if (op == "Exists") return present;
  if (op == "DoesNotExist") return !present;
  if (op == "Gt" || op == "Lt") {
    if (!present || values.size() != 1) return false;
    char* end = nullptr;
    const long long have = std::strtoll(actual.c_str(), &end, 10);
    if (end == actual.c_str() || *end != '\0') return false;
    const std::string bound_text = Text(values[0]);
    const long long bound = std::strtoll(bound_text.c_str(), &end, 10);
    if (end == bound_text.c_str() || *end != '\0') return false;
    return op == "Gt" ? have > bound : have < bound;
  }
  return false;
}

bool TermMatches(const json& term, const json& node) {
  const json labels = node.value("/metadata/labels"_json_pointer, json::object());
  const json fields = {{"metadata.name", node.value("/metadata/name"_json_pointer, std::string())}};
  const json expressions = term.value("matchExpressions", json::array());
  const json field_reqs = term.value("matchFields", json::array());
  if (expressions.empty() && field_reqs.empty()) return false;  // an empty term matches nothing
  for (const json& requirement : expressions) {
    if (!RequirementMatches(requirement, labels)) return false;
  }
  for (const json& requirement : field_reqs) {
    if (!RequirementMatches(requirement, fields)) return false;
  }
  return true;
}

void AddToleration(json& tolerations, const char* key, const char* effect) {
  for (const json& existing : tolerations) {
    if (existing.value("key", "") == key && existing.value("effect", "") == effect &&
        existing.value("operator", "") == "Exists" && !existing.contains("tolerationSeconds")) {
      return;
    }
  }
  // An existing toleration of the same key and effect is replaced (it may expire).
  tolerations.erase(std::remove_if(tolerations.begin(), tolerations.end(),
                                   [&](const json& t) {
                                     return t.value("key", "") == key && t.value("effect", "") == effect;
                                   }),
                    tolerations.end());
  tolerations.push_back({{"key", key}, {"operator", "Exists"}, {"effect", effect}});
}

}  // namespace

bool NodeSelectorTermsMatch(const json& terms, const json& node) {
  if (!terms.is_array()) return false;
  return std::any_of(terms.begin(), terms.end(), [&](const json& term) { return TermMatches(term, node); });
}

bool Tolerates(const json& toleration, const json& taint) {
  const std::string effect = toleration.value("effect", "");
  if (!effect.empty() && effect != taint.value("effect", "")) return false;
  const std::string key = toleration.value("key", "");
  if (!key.empty() && key != taint.value("key", "")) return false;
  const std::string op = toleration.value("operator", "Equal");
  if (op == "Exists") return true;
  return (op == "Equal" || op.empty()) && toleration.value("value", "") == taint.value("value", "");
}

json WithDaemonTolerations(json pod_spec) {
  json& tolerations = pod_spec["tolerations"];
  if (!tolerations.is_array()) tolerations = json::array();
  AddToleration(tolerations, "node.kubernetes.io/not-ready", "NoExecute");
  AddToleration(tolerations, "node.kubernetes.io/unreachable", "NoExecute");
  AddToleration(tolerations, "node.kubernetes.io/disk-pressure", "NoSchedule");
  AddToleration(tolerations, "node.kubernetes.io/memory-pressure", "NoSchedule");
  AddToleration(tolerations, "node.kubernetes.io/pid-pressure", "NoSchedule");
  AddToleration(tolerations, "node.kubernetes.io/unschedulable", "NoSchedule");
  if (pod_spec.value("hostNetwork", false)) {
    AddToleration(tolerations, "node.kubernetes.io/network-unavailable", "NoSchedule");
  }
  return pod_spec;
}

NodeVerdict EvaluateNode(const json& node, const json& pod_spec) {
  const std::string node_name = node.value("/metadata/name"_json_pointer, std::string());
  const std::string pinned = pod_spec.value("nodeName", "");
  if (!pinned.empty() && pinned != node_name) return {};
  const json labels = node.value("/metadata/labels"_json_pointer, json::object());
  const json node_selector = pod_spec.value("nodeSelector", json::object());
  for (const auto& [key, value] : node_selector.items()) {
    if (!labels.contains(key) || Text(labels[key]) != Text(value)) return {};
  }
  const json required = pod_spec.value(
      "/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms"_json_pointer,
      json());
  if (required.is_array() && !NodeSelectorTermsMatch(required, node)) return {};

  const json tolerations = pod_spec.value("tolerations", json::array());
  bool untolerated_no_schedule = false, untolerated_no_execute = false;
  for (const json& taint : node.value("/spec/taints"_json_pointer, json::array())) {
    const std::string effect = taint.value("effect", "");
    if (effect != "NoSchedule" && effect != "NoExecute") continue;
    const bool tolerated = std::any_of(tolerations.begin(), tolerations.end(),
                                       [&](const json& t) { return Tolerates(t, taint); });
    if (tolerated) continue;
    (effect == "NoExecute" ? untolerated_no_execute : untolerated_no_schedule) = true;
  }
  if (untolerated_no_execute) return {false, false};
  if (untolerated_no_schedule) return {false, true};
  return {true, true};
}

json PinToNode(json pod_spec, const std::string& node_name) {
  const json term = {{"matchFields", json::array({{{"key", "metadata.name"},
                                                   {"operator", "In"},
                                                   {"values", json::array({node_name})}}})}};
  json& affinity = pod_spec["affinity"];
  if (!affinity.is_object()) affinity = json::object();
  json& node_affinity = affinity["nodeAffinity"];
  if (!node_affinity.is_object()) node_affinity = json::object();
  node_affinity["requiredDuringSchedulingIgnoredDuringExecution"] = {
      {"nodeSelectorTerms", json::array({term})}};
  return pod_spec;
}

std::string TargetNodeName(const json& pod) {
  const std::string bound = pod.value("/spec/nodeName"_json_pointer, std::string());
  if (!bound.empty()) return bound;
  const json terms = pod.value(
      "/spec/affinity/nodeAffinity/requiredDuringSchedulingIgnoredDuringExecution/nodeSelectorTerms"_json_pointer,
      json::array());
  for (const json& term : terms) {
    for (const json& field : term.value("matchFields", json::array())) {
      const json values = field.value("values", json::array());
      if (field.value("key", "") == "metadata.name" && field.value("operator", "") == "In" &&
          values.size() == 1 && values[0].is_string()) {
        return values[0].get<std::string>();
      }
    }
  }
  return "";
}

}  // namespace mk8s::controllers
