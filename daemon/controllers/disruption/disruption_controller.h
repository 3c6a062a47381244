// Disruption controller (upstream's DisruptionController): keeps each PodDisruptionBudget's status
// current, which the API server's eviction subresource then enforces.
//  - expectedPods: the covered pods, or, for a percentage or maxUnavailable, the scale of their
//    controllers (a ReplicaSet's Deployment, a ReplicaSet, a StatefulSet);
//  - desiredHealthy: from minAvailable, or expectedPods minus maxUnavailable (percentages round up);
//  - currentHealthy: covered pods that are Ready and not being deleted or recently evicted;
//  - disruptionsAllowed = currentHealthy - desiredHealthy (never below 0), and the
//    DisruptionAllowed condition (SufficientPods / InsufficientPods);
//  - disruptedPods: the evictions the API server recorded, dropped once the pod is gone or after
//    2 minutes (the pod was not deleted after all).
// A budget whose pods have a controller of another kind allows nothing (event NoControllers).
// Threads: informer handlers only enqueue; Reconcile runs on the controller's workers.
#pragma once

#include "controllers/common/event_recorder.h"
#include "controllers/controller.h"

namespace mk8s::controllers {

class DisruptionController final : public Controller {
 public:
  explicit DisruptionController(const ControllerContext& context);
  void Setup() override;

 protected:
  Status Reconcile(const std::string& key) override;

 private:
  // Enqueues the budgets of the pod's namespace that select it.
  void EnqueueBudgetsOf(const client::ObjectPtr& pod);
  // The scale of the pod's controller (0 and false when it has none of a known kind), and the
  // controller's uid so each counts once.
  bool ControllerScale(const nlohmann::json& pod, std::string* uid, int64_t* scale) const;

  client::Informer* budgets_ = nullptr;
  client::Informer* pods_ = nullptr;
  client::Informer* replicasets_ = nullptr;
  client::Informer* deployments_ = nullptr;
  client::Informer* statefulsets_ = nullptr;
  EventRecorder events_;
};

}  // namespace mk8s::controllers
