// Job (batch/v1): runs pods until spec.completions of them succeed (NonIndexed) or every index in
// [0, completions) has a succeeded pod (Indexed), at most spec.parallelism at a time.
//
//  - Failures: failed pods (plus container restarts for restartPolicy OnFailure) beyond
//    backoffLimit fail the job (BackoffLimitExceeded); a failed pod is replaced after a backoff
//    of 10 s doubling to 6 min. activeDeadlineSeconds fails it with DeadlineExceeded.
//  - Finishing follows Kubernetes 1.32: first SuccessCriteriaMet / FailureTarget, remaining
//    active pods are deleted, then Complete / Failed once no pod is running or terminating.
//  - suspend deletes the active pods (condition Suspended); resuming resets startTime.
//  - ttlSecondsAfterFinished deletes a finished job (foreground), like the TTL controller.
//  - Status: active, ready, terminating, succeeded, failed, startTime, completionTime,
//    completedIndexes, conditions. Events: SuccessfulCreate, SuccessfulDelete, Completed,
//    BackoffLimitExceeded, DeadlineExceeded, Suspended, Resumed.
//
// Counting is from the pods that exist (the job's pods are only deleted with it), not with
// upstream's tracking finalizers: a terminal pod deleted by hand is no longer counted.
// Pods are owned by the job and adopted or released by its selector (which the API server
// generates from the job's uid). Time comes from the clock seam (WallNow for deadlines and
// backoffs; EnqueueAfter to wake up).
#pragma once

#include <chrono>
#include <vector>

#include "controllers/common/event_recorder.h"
#include "controllers/common/expectations.h"
#include "controllers/controller.h"

namespace mk8s::controllers {

class JobController final : public Controller {
 public:
  explicit JobController(const ControllerContext& context);
  void Setup() override;

 protected:
  Status Reconcile(const std::string& key) override;

 private:
  struct PodSets;  // the job's pods by state (job_controller.cc)

  // Adopts/releases by selector (common/controller_ref_manager.h) and appends the pods the Job
  // controls to `owned`; an error (a conflict, the adoption recheck) fails the reconcile.
  Status ClaimPods(const nlohmann::json& job, std::vector<client::ObjectPtr>* owned);
  // Creates or deletes pods toward the wanted active count (or indexes). Sets *wake_after when a
  // backoff delays creates.
  Status ManagePods(const nlohmann::json& job, const PodSets& pods,
                    std::chrono::milliseconds* wake_after);
  Status CreatePods(const nlohmann::json& job, const std::vector<int>& indexes);
  Status DeletePods(const nlohmann::json& job, const std::vector<client::ObjectPtr>& victims);
  Status DeleteIfExpired(const nlohmann::json& job);

  client::Informer* jobs_ = nullptr;
  client::Informer* pods_ = nullptr;
  Expectations expectations_;
  EventRecorder events_;
};

}  // namespace mk8s::controllers
