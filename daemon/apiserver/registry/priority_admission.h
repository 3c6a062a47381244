// Pod priority (upstream's Priority admission plugin) and PriorityClass rules
// (scheduling.k8s.io/v1).
//   - Two classes are built in and created at start (bootstrap.cc): system-node-critical
//     (2000001000) and system-cluster-critical (2000000000). They cannot be deleted, and no
//     other class may take a "system-" name.
//   - A user class's value is at most 1000000000; value and preemptionPolicy never change;
//     at most one class is the globalDefault.
//   - A pod's spec.priority and spec.preemptionPolicy come from its priorityClassName (else
//     from the globalDefault class, whose name it then takes; else priority 0). A class that
//     does not exist, or a spec.priority that disagrees with the class, is refused (403).
// Pure functions over the given objects; thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "apiserver/api_error.h"

namespace mk8s::apiserver {

inline constexpr int64_t kSystemNodeCriticalPriority = 2000001000;
inline constexpr int64_t kSystemClusterCriticalPriority = 2000000000;
inline constexpr int64_t kHighestUserDefinablePriority = 1000000000;

// The built-in PriorityClass objects (without resourceVersion, uid, timestamps).
std::vector<nlohmann::json> BuiltInPriorityClasses();
bool IsSystemPriorityClass(const std::string& name);

// Where the stored classes are read: one by name, and the globalDefault one (the lowest value
// when a race left several). Empty members find nothing.
struct PriorityClassLookup {
  std::function<std::optional<nlohmann::json>(const std::string& name)> get;
  std::function<std::optional<nlohmann::json>()> global_default;
};

// Defaults and validates a PriorityClass create (old == nullptr) or update.
std::optional<ApiError> AdmitPriorityClass(nlohmann::json& object, const nlohmann::json* old,
                                           const PriorityClassLookup& classes);

// Resolves a new pod's priority from its class (see above).
std::optional<ApiError> AdmitPodPriority(nlohmann::json& pod, const PriorityClassLookup& classes);

}  // namespace mk8s::apiserver
