#include "controllers/cronjob/cronjob_controller.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <ctime>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/cron_schedule.h"
#include "common/time_format.h"
#include "controllers/common/pod_util.h"
#include "controllers/job/job_pods.h"

namespace mk8s::controllers {
namespace {

using nlohmann::json;
using std::chrono::duration_cast;
using std::chrono::milliseconds;
using TimePoint = std::chrono::system_clock::time_point;

// Upstream wakes up 100 ms after a scheduled time, so the time has surely passed.
constexpr milliseconds kNextScheduleDelta{100};
constexpr int64_t kTooManyMissed = 100;

int64_t UnixSeconds(TimePoint t) {
  return std::chrono::floor<std::chrono::seconds>(t.time_since_epoch()).count();
}

// RFC 3339 in the schedule's zone ("2025-01-01T01:00:00+01:00"; "Z" at offset 0), as Go prints.
std::string FormatInZone(TimePoint t, const TimeZone& zone) {
  const int64_t seconds = UnixSeconds(t);
  const int64_t offset = zone.OffsetAt(seconds);
  const std::string local = FormatRfc3339(TimePoint(std::chrono::seconds(seconds + offset)));
  if (offset == 0) return local;
  char suffix[48];
  const int64_t magnitude = offset < 0 ? -offset : offset;
  std::snprintf(suffix, sizeof(suffix), "%c%02lld:%02lld", offset < 0 ? '-' : '+',
                static_cast<long long>(magnitude / 3600), static_cast<long long>(magnitude % 3600 / 60));
  return local.substr(0, local.size() - 1) + suffix;
}

struct Due {
  std::optional<TimePoint> most_recent;  // the latest scheduled time in (earliest, now]
  int64_t missed = 0;                    // how many scheduled times that range holds (estimate)
};

// Upstream's mostRecentScheduleTime: the latest time due since `earliest`, and roughly how many
// were missed. The search looks back from `now` over growing windows so a long outage of an
// every-minute schedule costs a few iterations, not one per missed minute.
Due MostRecent(const CronSchedule& schedule, const TimeZone& zone, TimePoint earliest, TimePoint now) {
  Due due;
  const std::optional<TimePoint> t1 = schedule.Next(earliest, zone);
  if (!t1 || *t1 > now) return due;
  const std::optional<TimePoint> t2 = schedule.Next(*t1, zone);
  if (!t2 || *t2 > now) {
    due.most_recent = t1;
    due.missed = 1;
    return due;
  }
  const auto interval = std::max<int64_t>(1, UnixSeconds(*t2) - UnixSeconds(*t1));
  due.missed = (UnixSeconds(now) - UnixSeconds(*t1)) / interval + 1;
  using std::chrono::hours;
  for (auto window : {duration_cast<std::chrono::seconds>(std::chrono::minutes(2)),
                      duration_cast<std::chrono::seconds>(hours(1)),
                      duration_cast<std::chrono::seconds>(hours(24)),
                      duration_cast<std::chrono::seconds>(hours(24 * 32)),
                      duration_cast<std::chrono::seconds>(hours(24 * 400)),
                      duration_cast<std::chrono::seconds>(hours(24 * 366 * 6))}) {
    const TimePoint start = std::max(earliest, now - window);
    for (auto t = schedule.Next(start, zone); t && *t <= now; t = schedule.Next(*t, zone)) {
      due.most_recent = t;
    }
    if (due.most_recent || start == earliest) break;
  }
  if (!due.most_recent) due.most_recent = t2;
  return due;
}

json JobReference(const json& job) {
  return {{"apiVersion", "batch/v1"},
          {"kind", "Job"},
          {"name", job["metadata"].value("name", "")},
          {"namespace", job["metadata"].value("namespace", "")},
          {"uid", job["metadata"].value("uid", "")},
          {"resourceVersion", job["metadata"].value("resourceVersion", "")}};
}

json JobFromTemplate(const json& cronjob, const std::string& name, const std::string& scheduled) {
  const json job_template = cronjob.value("/spec/jobTemplate"_json_pointer, json::object());
  json metadata = job_template.value("metadata", json::object());
  metadata.erase("name");
  metadata.erase("generateName");
  metadata["name"] = name;
  metadata["namespace"] = cronjob["metadata"].value("namespace", "");
  metadata["annotations"][kCronJobScheduledTimestamp] = scheduled;
  metadata["ownerReferences"] = json::array({MakeControllerRef(cronjob)});
  return {{"apiVersion", "batch/v1"},
          {"kind", "Job"},
          {"metadata", std::move(metadata)},
          {"spec", job_template.value("spec", json::object())}};
}

std::string StartTime(const client::ObjectPtr& job) {
  const std::string started = (*job).value("/status/startTime"_json_pointer, std::string());
  return started.empty() ? (*job)["metadata"].value("creationTimestamp", "") : started;
}

}  // namespace

CronJobController::CronJobController(const ControllerContext& context)
    : Controller("cronjob", context), events_(context.client, "cronjob-controller") {}

void CronJobController::Setup() {
  cronjobs_ = context_.informers->For(client::kCronJobs);
  jobs_ = context_.informers->For(client::kJobs);
  cronjobs_->AddEventHandler(
      {[this](const client::ObjectPtr& cj) { EnqueueObject(cj); },
       [this](const client::ObjectPtr&, const client::ObjectPtr& cj) { EnqueueObject(cj); },
       nullptr});
  auto enqueue_owner = [this](const client::ObjectPtr& job) {
    const json* owner = ControllerRef(*job);
    if (owner != nullptr && owner->value("kind", "") == "CronJob") {
      Enqueue((*job)["metadata"].value("namespace", "") + "/" + owner->value("name", ""));
    }
  };
  jobs_->AddEventHandler(
      {enqueue_owner,
       [enqueue_owner](const client::ObjectPtr&, const client::ObjectPtr& job) { enqueue_owner(job); },
       [this, enqueue_owner](const client::ObjectPtr& job) {
         {
           std::lock_guard lock(mu_);
           warned_unexpected_.erase((*job)["metadata"].value("uid", ""));
         }
         enqueue_owner(job);
       }});
}

Status CronJobController::Reconcile(const std::string& key) {
  client::ObjectPtr cronjob_ptr = cronjobs_->Get(key);
  if (!cronjob_ptr) return Status::Ok();
  const json& cronjob = *cronjob_ptr;
  const json spec = cronjob.value("spec", json::object());
  const std::string ns = cronjob["metadata"].value("namespace", "");
  const std::string name = cronjob["metadata"].value("name", "");
  const std::string uid = cronjob["metadata"].value("uid", "");
  const TimePoint now = WallNow();

  std::vector<client::ObjectPtr> owned;
  for (const client::ObjectPtr& job : jobs_->ListByNamespace(ns)) {
    const json* owner = ControllerRef(*job);
    if (owner != nullptr && owner->value("uid", "") == uid) owned.push_back(job);
  }

  // Reconcile status.active with the jobs that exist.
  const json status = cronjob.value("status", json::object());
  json wanted = status;
  json active = wanted.value("active", json::array());
  if (!active.is_array()) active = json::array();
  auto active_index = [&active](const std::string& field, const std::string& value) -> int {
    for (size_t i = 0; i < active.size(); ++i) {
      if (active[i].value(field, "") == value) return static_cast<int>(i);
    }
    return -1;
  };
  std::set<std::string> owned_uids;
  std::optional<TimePoint> last_success = ParseRfc3339(status.value("lastSuccessfulTime", json("")).get<std::string>());
  for (const client::ObjectPtr& job : owned) {
    const std::string job_uid = (*job)["metadata"].value("uid", "");
    const std::string job_name = (*job)["metadata"].value("name", "");
    owned_uids.insert(job_uid);
    const std::string finished = JobFinishedType(*job);
    const int found = active_index("uid", job_uid);
    if (found < 0 && finished.empty()) {
      if ((*job).value("/metadata/annotations"_json_pointer, json::object()).contains(kCronJobScheduledTimestamp)) {
        active.push_back(JobReference(*job));  // ours; the status write that recorded it was lost
      } else {
        std::lock_guard lock(mu_);
        if (warned_unexpected_.insert(job_uid).second) {
          events_.Record(cronjob, "Warning", "UnexpectedJob",
                         "Saw a job that the controller did not create or forgot: " + job_name);
        }
      }
    } else if (found >= 0 && !finished.empty()) {
      active.erase(active.begin() + found);
      events_.Record(cronjob, "Normal", "SawCompletedJob",
                     "Saw completed job: " + job_name + ", condition: " + finished);
    }
    if (finished == "Complete") {
      auto completed = ParseRfc3339((*job).value("/status/completionTime"_json_pointer, std::string()));
      if (completed && (!last_success || *completed > *last_success)) last_success = completed;
    }
  }
  for (size_t i = 0; i < active.size();) {
    const std::string job_uid = active[i].value("uid", "");
    if (owned_uids.count(job_uid)) {
      ++i;
      continue;
    }
    // Not in the cache: gone, or created so recently the informer has not seen it yet.
    auto current = api().Get(client::kJobs, ns, active[i].value("name", ""));
    if (current.ok() && (*current)["metadata"].value("uid", "") == job_uid) {
      ++i;
      continue;
    }
    if (!current.ok() && !client::IsNotFound(current.error())) return current.status();
    events_.Record(cronjob, "Warning", "MissingJob", "Active job went missing: " + active[i].value("name", ""));
    active.erase(active.begin() + static_cast<long>(i));
  }
  if (last_success) wanted["lastSuccessfulTime"] = FormatRfc3339(*last_success);

  auto write_status = [&]() -> Status {
    if (active.empty()) wanted.erase("active");
    else wanted["active"] = active;
    if (wanted == status) return Status::Ok();
    json updated = cronjob;
    updated["status"] = wanted;
    auto result = api().UpdateStatus(client::kCronJobs, updated);
    if (!result.ok() && !client::IsNotFound(result.error())) return result.status();
    return Status::Ok();
  };

  if (cronjob["metadata"].contains("deletionTimestamp")) return write_status();
  TimeZone zone = TimeZone::Utc();
  if (const json tz = spec.value("timeZone", json()); tz.is_string()) {
    Result<TimeZone> loaded = TimeZone::Load(tz.get<std::string>());
    if (!loaded.ok()) {
      events_.Record(cronjob, "Warning", "UnknownTimeZone",
                     "invalid timeZone: \"" + tz.get<std::string>() + "\": " + loaded.status().message());
      return write_status();
    }
    zone = *loaded;
  }
  const std::string schedule_text = spec.value("schedule", "");
  Result<CronSchedule> schedule = CronSchedule::Parse(schedule_text);
  if (!schedule.ok()) {
    events_.Record(cronjob, "Warning", "UnparseableSchedule",
                   "unparseable schedule: \"" + schedule_text + "\" : " + schedule.status().message());
    return write_status();
  }
  if (spec.value("suspend", false)) {
    if (Status written = write_status(); !written.ok()) return written;
    return CleanupFinishedJobs(cronjob, owned);
  }

  const std::optional<TimePoint> last_schedule =
      ParseRfc3339(status.value("lastScheduleTime", json("")).get<std::string>());
  TimePoint earliest = last_schedule.value_or(
      ParseRfc3339(cronjob["metadata"].value("creationTimestamp", "")).value_or(now));
  const json deadline_field = spec.value("startingDeadlineSeconds", json());
  // startingDeadlineSeconds, when set (a plain flag and value: GCC 12 misreads an optional here).
  const bool has_deadline = deadline_field.is_number_integer();
  const std::chrono::seconds deadline(has_deadline ? deadline_field.get<int64_t>() : 0);
  if (has_deadline) earliest = std::max(earliest, now - deadline);
  const Due due = MostRecent(*schedule, zone, earliest, now);
  if (due.missed > kTooManyMissed) {
    events_.Record(cronjob, "Warning", "TooManyMissedTimes",
                   "too many missed start times: " + std::to_string(due.missed) +
                       ". Set or decrease .spec.startingDeadlineSeconds or check clock skew");
  }

  if (due.most_recent) {
    const TimePoint scheduled = *due.most_recent;
    const std::string job_name = name + "-" + std::to_string(UnixSeconds(scheduled) / 60);
    const bool processed = (last_schedule && *last_schedule == scheduled) || active_index("name", job_name) >= 0;
    const std::string policy = spec.value("concurrencyPolicy", "Allow");
    if (has_deadline && scheduled + deadline < now) {
      events_.Record(cronjob, "Warning", "MissSchedule",
                     "Missed scheduled time to start a job: " + FormatInZone(scheduled, zone));
    } else if (processed) {
      // Already started (or skipped) this run.
    } else if (policy == "Forbid" && !active.empty()) {
      events_.Record(cronjob, "Normal", "JobAlreadyActive",
                     "Not starting job because prior execution is running and concurrency policy is Forbid");
    } else {
      if (policy == "Replace") {
        while (!active.empty()) {
          if (Status deleted = DeleteJob(cronjob, active[0].value("name", "")); !deleted.ok()) {
            (void)write_status();
            return deleted;
          }
          active.erase(active.begin());
        }
      }
      auto created = api().Create(client::kJobs, ns, JobFromTemplate(cronjob, job_name, FormatInZone(scheduled, zone)));
      json job;
      if (created.ok()) {
        job = std::move(*created);
        events_.Record(cronjob, "Normal", "SuccessfulCreate", "Created job " + job_name);
      } else if (client::IsAlreadyExists(created.error())) {
        // Created by an earlier attempt whose status write was lost (or by someone else).
        auto existing = api().Get(client::kJobs, ns, job_name);
        if (!existing.ok()) return existing.status();
        const json* owner = ControllerRef(*existing);
        if (owner != nullptr && owner->value("uid", "") == uid) job = std::move(*existing);
      } else {
        events_.Record(cronjob, "Warning", "FailedCreate", "Error creating job: " + created.error().message);
        (void)write_status();
        return created.status();
      }
      if (!job.is_null() && JobFinishedType(job).empty() && active_index("uid", job["metadata"].value("uid", "")) < 0) {
        active.push_back(JobReference(job));
      }
      wanted["lastScheduleTime"] = FormatRfc3339(scheduled);
    }
  }
  if (Status written = write_status(); !written.ok()) return written;
  if (Status cleaned = CleanupFinishedJobs(cronjob, owned); !cleaned.ok()) return cleaned;

  // Wake up just after the next scheduled time.
  const TimePoint base = due.most_recent.value_or(earliest);
  std::optional<TimePoint> next = schedule->Next(base, zone);
  if (next && *next <= now) next = schedule->Next(now, zone);
  if (next) {
    EnqueueAfter(key, std::max(milliseconds(1), duration_cast<milliseconds>(*next - now) + kNextScheduleDelta));
  }
  return Status::Ok();
}

Status CronJobController::CleanupFinishedJobs(const json& cronjob, const std::vector<client::ObjectPtr>& jobs) {
  const json spec = cronjob.value("spec", json::object());
  for (const auto& [type, limit_field] : {std::pair{"Complete", "successfulJobsHistoryLimit"},
                                          std::pair{"Failed", "failedJobsHistoryLimit"}}) {
    const json limit = spec.value(limit_field, json());
    if (!limit.is_number_integer()) continue;
    std::vector<client::ObjectPtr> finished;
    for (const client::ObjectPtr& job : jobs) {
      if (JobFinishedType(*job) == type && !(*job)["metadata"].contains("deletionTimestamp")) {
        finished.push_back(job);
      }
    }
    const int64_t keep = std::max<int64_t>(0, limit.get<int64_t>());
    if (static_cast<int64_t>(finished.size()) <= keep) continue;
    std::sort(finished.begin(), finished.end(), [](const client::ObjectPtr& a, const client::ObjectPtr& b) {
      return std::make_pair(StartTime(a), (*a)["metadata"].value("name", "")) <
             std::make_pair(StartTime(b), (*b)["metadata"].value("name", ""));
    });
    for (size_t i = 0; i + static_cast<size_t>(keep) < finished.size(); ++i) {
      if (Status deleted = DeleteJob(cronjob, (*finished[i])["metadata"].value("name", "")); !deleted.ok()) {
        return deleted;
      }
    }
  }
  return Status::Ok();
}

Status CronJobController::DeleteJob(const json& cronjob, const std::string& name) {
  client::DeleteOptions options;
  options.propagation_policy = "Background";
  auto deleted = api().Delete(client::kJobs, cronjob["metadata"].value("namespace", ""), name, options);
  if (!deleted.ok()) {
    if (client::IsNotFound(deleted.error())) return Status::Ok();
    events_.Record(cronjob, "Warning", "FailedDelete", "Deleted job: " + deleted.error().message);
    return deleted.status();
  }
  events_.Record(cronjob, "Normal", "SuccessfulDelete", "Deleted job " + name);
  return Status::Ok();
}

}  // namespace mk8s::controllers
