// ReplicaSet: exactly spec.replicas active pods matching the selector, owned by the ReplicaSet.
// Orphans that match are adopted, owned pods that stop matching are released. Creates and deletes
// go out in bursts; expectations (creates/deletes sent but not yet seen by the pod informer) keep
// a stale cache from causing a second burst. Status: replicas, fullyLabeledReplicas,
// readyReplicas, availableReplicas, observedGeneration.
#pragma once

#include "controllers/common/event_recorder.h"
#include "controllers/common/expectations.h"
#include "controllers/controller.h"

namespace mk8s::controllers {

class ReplicaSetController final : public Controller {
 public:
  explicit ReplicaSetController(const ControllerContext& context);
  void Setup() override;

 protected:
  Status Reconcile(const std::string& key) override;

 private:
  // Creates or deletes pods (at most kBurst per call) toward spec.replicas, given the active
  // pods it controls; records what it sent in expectations_. Only when expectations are met.
  Status ManageReplicas(const nlohmann::json& rs, std::vector<client::ObjectPtr> active);
  // Writes status counts of `pods` (the owned ones, active or not); requeues for minReadySeconds.
  Status UpdateStatus(const nlohmann::json& rs, const std::vector<client::ObjectPtr>& pods);

  client::Informer* replicasets_ = nullptr;
  client::Informer* pods_ = nullptr;
  Expectations expectations_;
  EventRecorder events_;
};

}  // namespace mk8s::controllers
