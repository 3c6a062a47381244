#include "controllers/job/job_pods.h"

#include <algorithm>

#include "common/time_format.h"
#include "controllers/common/pod_util.h"

namespace mk8s::controllers {

using nlohmann::json;

const json* FindCondition(const json& object, const std::string& type) {
  if (!object.contains("/status/conditions"_json_pointer)) return nullptr;
  const json& conditions = object.at("/status/conditions"_json_pointer);
  if (!conditions.is_array()) return nullptr;
  for (const json& condition : conditions) {
    if (condition.value("type", "") == type) return &condition;
  }
  return nullptr;
}

bool ConditionTrue(const json& object, const std::string& type) {
  const json* condition = FindCondition(object, type);
  return condition != nullptr && condition->value("status", "") == "True";
}

void SetCondition(json& status, const std::string& type, const std::string& value,
                  const std::string& reason, const std::string& message, const std::string& now) {
  json& conditions = status["conditions"];
  if (!conditions.is_array()) conditions = json::array();
  for (json& condition : conditions) {
    if (condition.value("type", "") != type) continue;
    if (condition.value("status", "") != value) condition["lastTransitionTime"] = now;
    condition["status"] = value;
    condition["reason"] = reason;
    condition["message"] = message;
    condition["lastProbeTime"] = now;
    return;
  }
  conditions.push_back({{"type", type},
                        {"status", value},
                        {"reason", reason},
                        {"message", message},
                        {"lastProbeTime", now},
                        {"lastTransitionTime", now}});
}

std::string JobFinishedType(const json& job) {
  if (ConditionTrue(job, "Complete")) return "Complete";
  if (ConditionTrue(job, "Failed")) return "Failed";
  return "";
}

int CompletionIndex(const json& pod) {
  for (const char* where : {"annotations", "labels"}) {
    const json values = pod["metadata"].value(where, json::object());
    if (!values.is_object() || !values.contains(kJobCompletionIndex)) continue;
    const json& value = values[kJobCompletionIndex];
    if (!value.is_string()) continue;
    const std::string text = value.get<std::string>();
    if (text.empty() || text.size() > 9 ||
        !std::all_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return -1;
    }
    return std::stoi(text);
  }
  return -1;
}

std::string FormatIndexes(const std::set<int>& indexes) {
  std::string out;
  for (auto it = indexes.begin(); it != indexes.end();) {
    const int first = *it;
    int last = first;
    for (++it; it != indexes.end() && *it == last + 1; ++it) last = *it;
    if (!out.empty()) out += ",";
    out += std::to_string(first);
    if (last > first) out += "-" + std::to_string(last);
  }
  return out;
}

json JobPodFromTemplate(const json& job, int index) {
  const std::string name = job["metadata"].value("name", "");
  if (index < 0) return PodFromTemplate(job, name + "-");
  const std::string text = std::to_string(index);
  json pod = PodFromTemplate(job, name + "-" + text + "-");
  pod["metadata"]["annotations"][kJobCompletionIndex] = text;
  pod["metadata"]["labels"][kJobCompletionIndex] = text;
  json& spec = pod["spec"];
  if (!spec.contains("hostname")) spec["hostname"] = name + "-" + text;
  const json env_var = {
      {"name", "JOB_COMPLETION_INDEX"},
      {"valueFrom",
       {{"fieldRef",
         {{"apiVersion", "v1"},
          {"fieldPath", std::string("metadata.annotations['") + kJobCompletionIndex + "']"}}}}}};
  for (const char* list : {"initContainers", "containers"}) {
    if (!spec.contains(list) || !spec[list].is_array()) continue;
    for (json& container : spec[list]) {
      json& env = container["env"];
      if (!env.is_array()) env = json::array();
      const bool present = std::any_of(env.begin(), env.end(), [](const json& e) {
        return e.value("name", "") == "JOB_COMPLETION_INDEX";
      });
      if (!present) env.push_back(env_var);
    }
  }
  return pod;
}

std::optional<std::chrono::system_clock::time_point> PodFinishTime(const json& pod) {
  std::optional<std::chrono::system_clock::time_point> latest;
  for (const json& container : pod.value("/status/containerStatuses"_json_pointer, json::array())) {
    const std::string finished =
        container.value("/state/terminated/finishedAt"_json_pointer, std::string());
    if (auto when = ParseRfc3339(finished); when && (!latest || *when > *latest)) latest = when;
  }
  if (latest) return latest;
  if (const json* ready = FindCondition(pod, "Ready")) {
    return ParseRfc3339(ready->value("lastTransitionTime", ""));
  }
  return std::nullopt;
}

int64_t PodRestarts(const json& pod) {
  int64_t restarts = 0;
  for (const char* list : {"/status/initContainerStatuses", "/status/containerStatuses"}) {
    for (const json& status : pod.value(json::json_pointer(list), json::array())) {
      restarts += status.value("restartCount", int64_t{0});
    }
  }
  return restarts;
}

std::chrono::seconds PodFailureBackoff(int64_t failures) {
  constexpr std::chrono::seconds kBase{10}, kMax{360};
  if (failures <= 0) return std::chrono::seconds(0);
  std::chrono::seconds delay = kBase;
  for (int64_t i = 1; i < failures && delay < kMax; ++i) delay *= 2;
  return std::min(delay, kMax);
}

}  // namespace mk8s::controllers
