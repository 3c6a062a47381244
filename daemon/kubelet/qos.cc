#include "kubelet/qos.h"

#include <nlohmann/json.hpp>

#include "common/quantity.h"

namespace mk8s::kubelet {
namespace {

using nlohmann::json;

const json& Field(const json& object, const char* key) {
  static const json kEmpty = json::object();
  auto it = object.find(key);
  return it != object.end() && it->is_object() ? *it : kEmpty;
}

}  // namespace

std::string QosClass(const json& pod) {
  const json& spec = Field(pod, "spec");
  bool any = false;
  bool guaranteed = true;
  for (const char* list : {"initContainers", "containers"}) {
    auto it = spec.find(list);
    if (it == spec.end() || !it->is_array()) continue;
    for (const json& container : *it) {
      const json& resources = Field(container, "resources");
      const json& requests = Field(resources, "requests");
      const json& limits = Field(resources, "limits");
      for (const char* name : {"cpu", "memory"}) {
        const bool has_request = requests.contains(name) && JsonQuantityMilli(requests[name]) != 0;
        const bool has_limit = limits.contains(name) && JsonQuantityMilli(limits[name]) != 0;
        if (has_request || has_limit) any = true;
        if (!has_limit) {
          guaranteed = false;
        } else if (has_request &&
                   JsonQuantityMilli(requests[name]) != JsonQuantityMilli(limits[name])) {
          guaranteed = false;
        }
      }
    }
  }
  if (!any) return "BestEffort";
  return guaranteed ? "Guaranteed" : "Burstable";
}

std::string PodCgroupParent(const json& pod) {
  const std::string uid = Field(pod, "metadata").value("uid", "");
  const std::string qos = QosClass(pod);
  if (qos == "Guaranteed") return "/mk8s/pod" + uid;
  if (qos == "Burstable") return "/mk8s/burstable/pod" + uid;
  return "/mk8s/besteffort/pod" + uid;
}

int64_t OomScoreAdj(const json& pod, const json& container, int64_t memory_capacity_bytes) {
  const std::string qos = QosClass(pod);
  if (qos == "Guaranteed") return -997;
  if (qos == "BestEffort") return 1000;
  const json& requests = Field(Field(container, "resources"), "requests");
  const int64_t request = requests.contains("memory") ? JsonQuantityValue(requests["memory"]) : 0;
  if (memory_capacity_bytes <= 0) return 999;
  int64_t score = 1000 - (1000 * request) / memory_capacity_bytes;
  if (score < 3) score = 3;
  if (score > 999) score = 999;
  return score;
}

}  // namespace mk8s::kubelet
