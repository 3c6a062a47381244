// CronJob (batch/v1): creates a Job for each time its schedule (common/cron_schedule.h) comes
// due, in spec.timeZone (IANA name; absent = UTC, the controller manager's zone).
//
//  - The Job for scheduled time T is named <cronjob>-<T in minutes since the epoch>, annotated
//    batch.kubernetes.io/cronjob-scheduled-timestamp, and owned by the CronJob.
//  - Only the most recent missed time runs; with startingDeadlineSeconds a time older than that is
//    skipped (MissSchedule); over 100 missed times warn (TooManyMissedTimes).
//  - concurrencyPolicy: Allow, Forbid (skip while a job is active: JobAlreadyActive) or Replace
//    (delete the active jobs first). suspend stops new runs.
//  - Keeps successfulJobsHistoryLimit / failedJobsHistoryLimit finished jobs (oldest deleted).
//  - Status: active (references), lastScheduleTime, lastSuccessfulTime.
//  - Events: SuccessfulCreate, SawCompletedJob, SuccessfulDelete, MissingJob, UnexpectedJob,
//    JobAlreadyActive, MissSchedule, UnparseableSchedule, UnknownTimeZone, FailedCreate.
//
// Time comes from the clock seam: WallNow() is compared with the schedule, and each reconcile
// ends with EnqueueAfter(next schedule time + 100 ms), so advancing a FakeClock fires runs.
#pragma once

#include <mutex>
#include <set>
#include <string>

#include "controllers/common/event_recorder.h"
#include "controllers/controller.h"

namespace mk8s::controllers {

class CronJobController final : public Controller {
 public:
  explicit CronJobController(const ControllerContext& context);
  void Setup() override;

 protected:
  Status Reconcile(const std::string& key) override;

 private:
  // Deletes the oldest finished jobs beyond the history limits.
  Status CleanupFinishedJobs(const nlohmann::json& cronjob,
                             const std::vector<client::ObjectPtr>& jobs);
  Status DeleteJob(const nlohmann::json& cronjob, const std::string& name);

  client::Informer* cronjobs_ = nullptr;
  client::Informer* jobs_ = nullptr;
  EventRecorder events_;
  std::mutex mu_;
  // Uids of existing jobs reported as UnexpectedJob (dropped when the job is deleted).
  std::set<std::string> warned_unexpected_;  // GUARDED_BY(mu_)
};

}  // namespace mk8s::controllers
