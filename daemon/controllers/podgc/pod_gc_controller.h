// Pod garbage collector (upstream pkg/controller/podgc). Force-deletes (grace period 0) pods no
// kubelet will ever finish:
//  - orphaned pods: spec.nodeName names a Node that is missing from the cache and, after a
//    quarantine (context.pod_gc_quarantine, 40 s) still missing when asked of the API server.
//    They first get phase Failed and the condition DisruptionTarget=True, reason DeletionByPodGC;
//  - terminating pods on a node that is not Ready and carries the node.kubernetes.io/out-of-service
//    taint (any effect);
//  - unscheduled terminating pods (deletionTimestamp set, no spec.nodeName);
//  - terminated pods (Succeeded/Failed) beyond context.terminated_pod_gc_threshold, evicted ones
//    first, then the oldest (gc_order.h). A threshold <= 0 turns this off.
// A pod that is not yet Succeeded/Failed is patched to Failed before the delete, as upstream does,
// so its owners see it end even if nothing else will ever update it. Deletes carry the pod's UID
// as a precondition, so a newer pod with the same name is never hit.
//
// Keys: "sweep" runs the three pod-state rules and puts every missing node into quarantine; it is
// queued at start, every context.pod_gc_period (a timer on clock()), and when a pod or node event
// makes a rule apply. "node/<name>" is the quarantine check of one node, queued pod_gc_quarantine
// after a pod naming a missing node was seen or the node was deleted (the work queue keeps the
// earliest deadline of a pending key). Both are idempotent; they may run on two workers at once,
// and a pod deleted twice is fine (NotFound is success).
#pragma once

#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>

#include "controllers/controller.h"

namespace mk8s::controllers {

class PodGcController final : public Controller {
 public:
  explicit PodGcController(const ControllerContext& context);
  ~PodGcController() override;
  void Setup() override;

 protected:
  Status Reconcile(const std::string& key) override;

 private:
  Status Sweep();
  Status CheckNode(const std::string& node_name);
  // Deletes the terminated pods beyond the threshold.
  Status CollectTerminated(const std::vector<client::ObjectPtr>& pods);
  // Marks the pod Failed (with `condition` if not null) unless it already ended, then deletes it
  // with grace period 0 and its UID as precondition. NotFound and a UID mismatch are success.
  Status ForceDelete(const nlohmann::json& pod, const nlohmann::json* condition, const char* why);
  // Queues the quarantine check of `node_name` unless the node is cached.
  void QuarantineIfMissing(const std::string& node_name);
  // Informer handlers (dispatch thread): quick cache lookups and queueing only.
  void OnPod(const client::ObjectPtr& pod);
  void OnNode(const client::ObjectPtr& node);
  void ArmTimerLocked();  // REQUIRES(timer_->mu)

  client::Informer* pods_ = nullptr;
  client::Informer* nodes_ = nullptr;
  // Shared with the pending timer's callback, which may run on the clock's timer thread while the
  // destructor runs: the callback touches `this` only under `mu` with `stopping` false, and the
  // destructor sets `stopping` under `mu` first.
  struct TimerState {
    std::mutex mu;
    bool stopping = false;  // GUARDED_BY(mu)
    uint64_t timer = 0;     // GUARDED_BY(mu): the pending tick's id on clock()
  };
  const std::shared_ptr<TimerState> timer_ = std::make_shared<TimerState>();
};

}  // namespace mk8s::controllers
