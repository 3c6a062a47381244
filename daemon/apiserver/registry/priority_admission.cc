#include "apiserver/registry/priority_admission.h"

#include <nlohmann/json.hpp>

namespace mk8s::apiserver {
namespace {

using nlohmann::json;

constexpr const char* kSystemPrefix = "system-";

struct BuiltIn {
  const char* name;
  int64_t value;
  const char* description;
};

constexpr BuiltIn kBuiltIns[] = {
    {"system-node-critical", kSystemNodeCriticalPriority,
     "For pods the node cannot work without; they are never evicted by the kubelet."},
    {"system-cluster-critical", kSystemClusterCriticalPriority,
     "For pods the cluster cannot work without; they are never evicted by the kubelet."},
};

const BuiltIn* FindBuiltIn(const std::string& name) {
  for (const BuiltIn& b : kBuiltIns) {
    if (name == b.name) return &b;
  }
  return nullptr;
}

std::string PodForbidden(const json& pod, const std::string& why) {
  return "pods \"" + pod.value("/metadata/name"_json_pointer, std::string()) +
         "\" is forbidden: " + why;
}

// An integer JSON value, or nullopt (absent, null, or not an integer).
std::optional<int64_t> Integer(const json& object, const char* key) {
  if (!object.is_object()) return std::nullopt;
  auto it = object.find(key);
  if (it == object.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int64_t>();
}

std::optional<json> GlobalDefault(const PriorityClassLookup& classes) {
  return classes.global_default ? classes.global_default() : std::nullopt;
}

}  // namespace

std::vector<json> BuiltInPriorityClasses() {
  std::vector<json> classes;
  for (const BuiltIn& b : kBuiltIns) {
    classes.push_back({{"apiVersion", "scheduling.k8s.io/v1"},
                       {"kind", "PriorityClass"},
                       {"metadata", {{"name", b.name}}},
                       {"value", b.value},
                       {"globalDefault", false},
                       {"description", b.description},
                       {"preemptionPolicy", "PreemptLowerPriority"}});
  }
  return classes;
}

bool IsSystemPriorityClass(const std::string& name) { return FindBuiltIn(name) != nullptr; }

std::optional<ApiError> AdmitPriorityClass(json& object, const json* old,
                                           const PriorityClassLookup& classes) {
  const std::string name = object.value("/metadata/name"_json_pointer, std::string());
  if (!object.contains("preemptionPolicy") || object["preemptionPolicy"].is_null())
    object["preemptionPolicy"] = "PreemptLowerPriority";
  if (!object.contains("globalDefault") || object["globalDefault"].is_null())
    object["globalDefault"] = false;
  std::vector<StatusCause> causes;
  const std::optional<int64_t> value = Integer(object, "value");
  if (!value) {
    causes.push_back({"FieldValueRequired", "Required value", "value"});
  } else if (name.rfind(kSystemPrefix, 0) == 0) {
    const BuiltIn* builtin = FindBuiltIn(name);
    if (builtin == nullptr || *value != builtin->value || object.value("globalDefault", false)) {
      causes.push_back({"FieldValueForbidden",
                        "Forbidden: priority class names with 'system-' prefix are reserved for "
                        "system use only",
                        "metadata.name"});
    }
  } else if (*value > kHighestUserDefinablePriority) {
    causes.push_back({"FieldValueForbidden",
                      "Forbidden: maximum allowed value of a user defined priority is " +
                          std::to_string(kHighestUserDefinablePriority),
                      "value"});
  }
  const json& policy = object["preemptionPolicy"];
  if (!policy.is_string() ||
      (policy != "PreemptLowerPriority" && policy != "Never")) {
    causes.push_back({"FieldValueNotSupported",
                      "Unsupported value: " + policy.dump() +
                          ": supported values: \"Never\", \"PreemptLowerPriority\"",
                      "preemptionPolicy"});
  }
  if (old != nullptr) {
    if (object.value("value", json()) != old->value("value", json())) {
      causes.push_back({"FieldValueForbidden", "Forbidden: may not be changed in an update.",
                        "value"});
    }
    if (object["preemptionPolicy"] != old->value("preemptionPolicy", json("PreemptLowerPriority"))) {
      causes.push_back({"FieldValueInvalid",
                        "Invalid value: " + object["preemptionPolicy"].dump() +
                            ": field is immutable",
                        "preemptionPolicy"});
    }
  }
  if (!causes.empty()) {
    return ApiError::Invalid("scheduling.k8s.io", "PriorityClass", name, std::move(causes));
  }
  if (object.value("globalDefault", false)) {
    if (std::optional<json> current = GlobalDefault(classes);
        current && current->value("/metadata/name"_json_pointer, std::string()) != name) {
      return ApiError::Forbidden(
          "priorityclasses.scheduling.k8s.io \"" + name + "\" is forbidden: PriorityClass " +
          current->value("/metadata/name"_json_pointer, std::string()) +
          " is already marked as default. Only one default can exist");
    }
  }
  return std::nullopt;
}

std::optional<ApiError> AdmitPodPriority(json& pod, const PriorityClassLookup& classes) {
  json& spec = pod["spec"];
  const std::string class_name = spec.value("priorityClassName", "");
  std::optional<json> chosen;
  if (!class_name.empty()) {
    chosen = classes.get ? classes.get(class_name) : std::nullopt;
    if (!chosen) {
      return ApiError::Forbidden(
          PodForbidden(pod, "no PriorityClass with name " + class_name + " was found"));
    }
  } else {
    chosen = GlobalDefault(classes);
  }
  const int64_t priority = chosen ? chosen->value("value", int64_t{0}) : 0;
  if (const std::optional<int64_t> given = Integer(spec, "priority"); given && *given != priority) {
    return ApiError::Forbidden(PodForbidden(
        pod, "the integer value of priority (" + std::to_string(*given) +
                 ") must not be provided in pod spec; priority admission controller computed " +
                 std::to_string(priority) + " from the given PriorityClass name"));
  }
  spec["priority"] = priority;
  if (chosen) {
    spec["priorityClassName"] = chosen->value("/metadata/name"_json_pointer, std::string());
    spec["preemptionPolicy"] = chosen->value("preemptionPolicy", "PreemptLowerPriority");
  }
  return std::nullopt;
}

}  // namespace mk8s::apiserver
