// Helpers shared by workload controllers: owner references, label selectors, pod state.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "client/client.h"
#include "common/status.h"

namespace mk8s::controllers {

// The ownerReference with controller=true, or nullptr.
const nlohmann::json* ControllerRef(const nlohmann::json& object);
// The ownerReference that makes `owner` the controller of a dependent.
nlohmann::json MakeControllerRef(const nlohmann::json& owner);

// A metav1.LabelSelector ({matchLabels, matchExpressions}) against the object's labels. A null or
// empty selector matches nothing, as for workload controllers.
bool SelectorMatches(const nlohmann::json& selector, const nlohmann::json& object);
// Every key=value of `match_labels` (a map, e.g. a Service's spec.selector) is among the object's
// labels; an empty map matches everything. No copies (informer handlers call it per event).
bool MatchLabels(const nlohmann::json& match_labels, const nlohmann::json& object);
// "app=web,tier=db": the selector's matchLabels as a string (for Scale status and logs).
std::string SelectorString(const nlohmann::json& selector);

bool IsPodActive(const nlohmann::json& pod);     // not terminating, not Succeeded/Failed
bool IsPodReady(const nlohmann::json& pod);      // condition Ready=True
// Ready for at least `min_ready_seconds` at `now` (a controller passes its WallNow()).
bool IsPodAvailable(const nlohmann::json& pod, int64_t min_ready_seconds,
                    std::chrono::system_clock::time_point now);
// When the pod's Ready condition last turned True (false if not ready or no parsable time).
bool PodReadySince(const nlohmann::json& pod, std::chrono::system_clock::time_point* since);
// The same at system_clock::now().
bool IsPodAvailable(const nlohmann::json& pod, int64_t min_ready_seconds);
// Higher = a better candidate for deletion when scaling down (unscheduled, pending, not ready).
int PodDeletionCost(const nlohmann::json& pod);

// A new pod from `owner`'s spec.template, named `generate_name` + random suffix, controlled by
// `owner`.
nlohmann::json PodFromTemplate(const nlohmann::json& owner, const std::string& generate_name);

}  // namespace mk8s::controllers
