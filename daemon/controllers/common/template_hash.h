// Naming of the objects a workload controller makes per pod template (a Deployment's
// ReplicaSets, a DaemonSet's ControllerRevisions): the template hash, template equivalence, and
// status.collisionCount, the counter that moves a name off a taken one (as upstream's
// ComputeHash(template, collisionCount)).
//
// The contract every user keeps: an existing object is recognised as "the one for this
// template" by EquivalentPodTemplates, never by its name or hash, so a collisionCount change
// renames only objects still to be made and never rolls out an unchanged template.
// Pure functions except RaiseCollisionCount (one API write). Thread-safe (no state).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "client/client.h"
#include "common/status.h"

namespace mk8s::controllers {

// The template with unset fields (null, false, 0, "", {}) and the pod-template-hash label
// dropped: clients write "unset" several ways, and a ReplicaSet's template carries the label.
nlohmann::json NormalizedPodTemplate(nlohmann::json pod_template);
// Same pod template once normalized (a rollback writes an old ReplicaSet's template back).
bool EquivalentPodTemplates(const nlohmann::json& a, const nlohmann::json& b);

// The name suffix and hash label for a template: FNV-1a (32 bit) over the normalized template's
// canonical JSON (nlohmann sorts keys), then, when `collision_count` is set (0 included, as
// upstream), its value as 8 little-endian bytes; printed in the vowel-free alphabet
// "bcdfghjklmnpqrstvwxz2456789". Unset gives the same hash as before collisionCount existed.
std::string PodTemplateHash(const nlohmann::json& pod_template,
                            std::optional<int32_t> collision_count = std::nullopt);

// status.collisionCount, or nullopt when absent, null or not an int32 (treated as unset).
std::optional<int32_t> CollisionCount(const nlohmann::json& owner);

// A create of `wanted_name` for `owner` failed with AlreadyExists and the object there is not an
// equivalent one of this owner: raises owner's status.collisionCount by one (from unset to 1) with
// an UpdateStatus guarded by the cached owner's resourceVersion, so reconciles working from a
// stale cache get Conflict instead of raising it twice for one collision. The status write's
// watch event queues the owner again, and its next reconcile computes a new name.
// `resource`: kDeployments or kDaemonSets. Errors: the API's (Conflict included; the caller's
// reconcile returns it and is retried), or kResourceExhausted at INT32_MAX.
Status RaiseCollisionCount(client::Client& api, const client::ResourceRef& resource,
                           const nlohmann::json& owner, const std::string& wanted_name);

}  // namespace mk8s::controllers
