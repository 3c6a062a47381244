// DaemonSet history: one ControllerRevision (apps/v1) per pod template the DaemonSet has had,
// named <daemonset>-<hash>, labelled controller-revision-hash=<hash>, numbered by `revision`
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

// The hash of `ds`'s current template (the pods' controller-revision-hash label).
std::string DaemonSetTemplateHash(const nlohmann::json& ds);

// Makes sure the current template has a ControllerRevision with the highest revision number, and
// deletes the oldest others beyond spec.revisionHistoryLimit (default 10) whose hash no live pod
// carries (`live_hashes`). Returns the current hash.
Result<std::string> SyncDaemonSetHistory(client::Client& api, const client::Informer& revisions,
                                         const nlohmann::json& ds,
                                         const std::set<std::string>& live_hashes);

}  // namespace mk8s::controllers
