// DaemonSet history: one ControllerRevision (apps/v1) per pod template the DaemonSet has had,
// named <daemonset>-<hash> (hash of the template and status.collisionCount), labelled
// controller-revision-hash=<hash>, numbered by `revision`
// (the current template always holds the highest number), as `kubectl rollout history ds` reads
// them. Called from the DaemonSet controller's workers; uses only the API and the given cache.
#pragma once

#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "client/client.h"
#include "client/informer.h"
#include "common/status.h"

namespace mk8s::controllers {

// The hash a NEW revision of `ds`'s current template gets: PodTemplateHash of the template and
// status.collisionCount (common/template_hash.h). An existing revision keeps its own.
std::string DaemonSetTemplateHash(const nlohmann::json& ds);

struct CurrentRevision {
  // The current revision's controller-revision-hash label (the pods' label); empty when
  // `collision_raised`.
  std::string hash;
  // Its name was taken by an object that is not an equivalent revision of this DaemonSet:
  // status.collisionCount was raised and the reconcile should stop; the status write's event
  // queues the DaemonSet again.
  bool collision_raised = false;
};

// Makes sure the current template has a ControllerRevision with the highest revision number, and
// deletes the oldest others beyond spec.revisionHistoryLimit (default 10) whose hash no live pod
// carries (`live_hashes`). The current revision is found by template equivalence, so a raised
// collisionCount never changes the hash of a template that already has one.
Result<CurrentRevision> SyncDaemonSetHistory(client::Client& api, const client::Informer& revisions,
                                             const nlohmann::json& ds,
                                             const std::set<std::string>& live_hashes);

}  // namespace mk8s::controllers
