#include "controllers/common/pod_util.h"

#include <algorithm>
#include <chrono>
#include <ctime>

#include "client/json_path.h"

namespace mk8s::controllers {
namespace {

using nlohmann::json;

bool ParseTime(const std::string& text, std::chrono::system_clock::time_point* out) {
  std::tm tm{};
  if (strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) return false;
  *out = std::chrono::system_clock::from_time_t(timegm(&tm));
  return true;
}

const json* Condition(const json& pod, const std::string& type) {
  const json* conditions = client::FindPath(pod, {"status", "conditions"});
  if (conditions == nullptr || !conditions->is_array()) return nullptr;
  for (const json& condition : *conditions) {
    if (client::StringAtPath(condition, {"type"}) == type) return &condition;
  }
  return nullptr;
}

}  // namespace

const json* ControllerRef(const json& object) {
  const json* references = client::FindPath(object, {"metadata", "ownerReferences"});
  if (references == nullptr || !references->is_array()) return nullptr;
  for (const json& reference : *references) {
    if (client::BoolAtPath(reference, {"controller"}, false)) return &reference;
  }
  return nullptr;
}

json MakeControllerRef(const json& owner) {
  return {{"apiVersion", owner.value("apiVersion", "")},
          {"kind", owner.value("kind", "")},
          {"name", owner["metadata"].value("name", "")},
          {"uid", owner["metadata"].value("uid", "")},
          {"controller", true},
          {"blockOwnerDeletion", true}};
}

bool SelectorMatches(const json& selector, const json& object) {
  if (!selector.is_object() || selector.empty()) return false;
  // Called for every (pod, selector) pair an informer event touches: no copies, no throws.
  static const json kNoLabels = json::object();
  const json* found = client::FindPath(object, {"metadata", "labels"});
  const json& labels = found != nullptr && found->is_object() ? *found : kNoLabels;
  if (auto match = selector.find("matchLabels"); match != selector.end() && match->is_object()) {
    if (!MatchLabels(*match, object)) return false;
  }
  if (auto exprs = selector.find("matchExpressions"); exprs != selector.end() && exprs->is_array()) {
    for (const json& expr : *exprs) {
      const std::string& key = client::StringAtPath(expr, {"key"});
      const std::string& op = client::StringAtPath(expr, {"operator"});
      const json* values = client::FindPath(expr, {"values"});
      const auto label = labels.find(key);
      const bool present = label != labels.end();
      const bool in = present && values != nullptr && values->is_array() &&
                      std::find(values->begin(), values->end(), *label) != values->end();
      if ((op == "In" && !in) || (op == "NotIn" && in) || (op == "Exists" && !present) ||
          (op == "DoesNotExist" && present)) {
        return false;
      }
    }
  }
  return true;
}

bool MatchLabels(const json& match_labels, const json& object) {
  if (!match_labels.is_object()) return false;
  const json* labels = client::FindPath(object, {"metadata", "labels"});
  for (const auto& [key, value] : match_labels.items()) {
    if (labels == nullptr || !labels->is_object()) return false;
    const auto label = labels->find(key);
    if (label == labels->end() || *label != value) return false;
  }
  return true;
}

std::string SelectorString(const json& selector) {
  std::string out;
  // A named copy: ranging over items() of the temporary from value() would dangle.
  const json match_labels = selector.value("matchLabels", json::object());
  for (const auto& [key, value] : match_labels.items()) {
    out += (out.empty() ? "" : ",") + key + "=" + value.get<std::string>();
  }
  return out;
}

bool IsPodActive(const json& pod) {
  const std::string& phase = client::StringAtPath(pod, {"status", "phase"});
  return phase != "Succeeded" && phase != "Failed" &&
         client::FindPath(pod, {"metadata", "deletionTimestamp"}) == nullptr;
}

bool IsPodReady(const json& pod) {
  const json* ready = Condition(pod, "Ready");
  return ready != nullptr && client::StringAtPath(*ready, {"status"}) == "True";
}

bool IsPodAvailable(const json& pod, int64_t min_ready_seconds,
                    std::chrono::system_clock::time_point now) {
  if (!IsPodReady(pod)) return false;
  if (min_ready_seconds <= 0) return true;
  std::chrono::system_clock::time_point since;
  if (!ParseTime(Condition(pod, "Ready")->value("lastTransitionTime", ""), &since)) return false;
  return now - since >= std::chrono::seconds(min_ready_seconds);
}

bool PodReadySince(const json& pod, std::chrono::system_clock::time_point* since) {
  if (!IsPodReady(pod)) return false;
  return ParseTime(Condition(pod, "Ready")->value("lastTransitionTime", ""), since);
}

bool IsPodAvailable(const json& pod, int64_t min_ready_seconds) {
  return IsPodAvailable(pod, min_ready_seconds, std::chrono::system_clock::now());
}

int PodDeletionCost(const json& pod) {
  if (client::StringAtPath(pod, {"spec", "nodeName"}).empty()) return 3;
  if (client::StringAtPath(pod, {"status", "phase"}) == "Pending") return 2;
  if (!IsPodReady(pod)) return 1;
  return 0;
}

json PodFromTemplate(const json& owner, const std::string& generate_name) {
  const json template_spec = owner.value("/spec/template"_json_pointer, json::object());
  json metadata = template_spec.value("metadata", json::object());
  metadata.erase("name");
  metadata["generateName"] = generate_name;
  metadata["namespace"] = owner["metadata"].value("namespace", "");
  metadata["ownerReferences"] = json::array({MakeControllerRef(owner)});
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", std::move(metadata)},
          {"spec", template_spec.value("spec", json::object())}};
}

}  // namespace mk8s::controllers
