// Deployment: one ReplicaSet per pod template (labelled pod-template-hash), rolled by the
// strategy: RollingUpdate within maxSurge/maxUnavailable, or Recreate. Keeps
// revisionHistoryLimit old ReplicaSets (for `kubectl rollout undo`, which kubectl performs by
// writing an old template back), honours paused, and reports replicas, updated/ready/available
// counts, observedGeneration and the Available/Progressing conditions. A rollout without
// progress for progressDeadlineSeconds turns Progressing=False/ProgressDeadlineExceeded.
// A new ReplicaSet is named <deployment>-<PodTemplateHash(template, status.collisionCount)>
// (common/template_hash.h); existing ones are matched by template, never by name, so raising
// collisionCount after a name collision never rolls out an unchanged template.
#pragma once

#include "controllers/common/event_recorder.h"
#include "controllers/controller.h"

namespace mk8s::controllers {

class DeploymentController final : public Controller {
 public:
  explicit DeploymentController(const ControllerContext& context);
  void Setup() override;

 protected:
  Status Reconcile(const std::string& key) override;

 private:
  // The create of ReplicaSet `name` for Deployment `d` met AlreadyExists. Ours with an
  // equivalent template (an earlier attempt the cache has not shown yet): nothing to do.
  // Anything else (another owner, no owner, another template, the ReplicaSet of a deleted
  // Deployment of the same name waiting for the garbage collector): status.collisionCount goes
  // up by one and the next reconcile (queued by that status event) picks another name.
  Status OnNameTaken(const nlohmann::json& d, const std::string& name);
  Status ScaleReplicaSet(const nlohmann::json& deployment, const nlohmann::json& rs,
                         int64_t replicas);
  // Writes status (counts, observedGeneration, Available and Progressing conditions). Progress
  // is judged against progressDeadlineSeconds on WallNow(); a key waiting on the deadline is
  // re-enqueued (on the controller's clock) for when it would pass.
  Status SyncStatus(const nlohmann::json& deployment, const nlohmann::json* new_rs,
                    const std::vector<client::ObjectPtr>& all, bool paused);

  client::Informer* deployments_ = nullptr;
  client::Informer* replicasets_ = nullptr;
  EventRecorder events_;
};

// Resolves an IntOrString (e.g. 25% or 1) against `total`, rounding up or down.
int64_t ResolveIntOrPercent(const nlohmann::json& value, int64_t total, bool round_up);

}  // namespace mk8s::controllers
