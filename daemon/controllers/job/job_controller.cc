#include "controllers/job/job_controller.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

#include "common/time_format.h"
#include "controllers/common/controller_ref_manager.h"
#include "controllers/common/pod_util.h"
#include "controllers/job/job_pods.h"

namespace mk8s::controllers {
namespace {

using nlohmann::json;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

constexpr int kBurst = 500;  // most creates in one reconcile
constexpr const char* kJobController = "kubernetes.io/job-controller";

std::optional<int64_t> OptionalInt(const json& object, const char* field) {
  auto it = object.find(field);
  if (it == object.end() || !it->is_number_integer()) return std::nullopt;
  return it->get<int64_t>();
}

std::string PodName(const client::ObjectPtr& pod) { return (*pod)["metadata"].value("name", ""); }

void Wake(milliseconds* wake_after, milliseconds delay) {
  delay = std::max(delay, milliseconds(1));
  if (wake_after->count() == 0 || delay < *wake_after) *wake_after = delay;
}

}  // namespace

struct JobController::PodSets {
  std::vector<client::ObjectPtr> active;       // pending or running, not being deleted
  std::vector<client::ObjectPtr> terminating;  // being deleted, not yet terminal
  std::vector<client::ObjectPtr> succeeded;
  std::vector<client::ObjectPtr> failed;
  std::set<int> succeeded_indexes;  // Indexed jobs: indexes in range with a succeeded pod
  int64_t ready = 0;
  int64_t restarts = 0;  // container restarts of active pods
};

JobController::JobController(const ControllerContext& context)
    : Controller("job", context),
      expectations_(clock()),
      events_(context.client, "job-controller") {}

void JobController::Setup() {
  jobs_ = context_.informers->For(client::kJobs);
  pods_ = context_.informers->For(client::kPods);
  RouteOwnerEvents(this, jobs_, &expectations_);
  RouteOwnedEvents(this, pods_, jobs_, "Job", &expectations_);
}

Status JobController::ClaimPods(const json& job, std::vector<client::ObjectPtr>* owned) {
  ControllerRefManager claims(api(), client::kJobs, job, job["spec"].value("selector", json()));
  ControllerRefManager::Claimed claimed =
      claims.Claim(client::kPods, pods_->ListByNamespace(job["metadata"].value("namespace", "")));
  owned->insert(owned->end(), claimed.objects.begin(), claimed.objects.end());
  return claimed.status;
}

Status JobController::Reconcile(const std::string& key) {
  client::ObjectPtr job_ptr = jobs_->Get(key);
  if (!job_ptr) {
    expectations_.Forget(key);
    return Status::Ok();
  }
  const json& job = *job_ptr;
  const json spec = job.value("spec", json::object());
  if (!JobFinishedType(job).empty()) return DeleteIfExpired(job);
  if (job["metadata"].contains("deletionTimestamp")) return Status::Ok();
  if (spec.value("managedBy", kJobController) != kJobController) return Status::Ok();

  std::vector<client::ObjectPtr> owned;
  if (Status claimed = ClaimPods(job, &owned); !claimed.ok()) return claimed;
  const bool indexed = spec.value("completionMode", "NonIndexed") == "Indexed";
  const std::optional<int64_t> completions = OptionalInt(spec, "completions");
  PodSets pods;
  for (const client::ObjectPtr& pod : owned) {
    const std::string phase = (*pod).value("/status/phase"_json_pointer, std::string());
    if (phase == "Succeeded") {
      pods.succeeded.push_back(pod);
      const int index = CompletionIndex(*pod);
      if (indexed && index >= 0 && completions && index < *completions) {
        pods.succeeded_indexes.insert(index);
      }
    } else if (phase == "Failed") {
      pods.failed.push_back(pod);
    } else if ((*pod)["metadata"].contains("deletionTimestamp")) {
      pods.terminating.push_back(pod);
    } else {
      pods.active.push_back(pod);
      if (IsPodReady(*pod)) ++pods.ready;
      pods.restarts += PodRestarts(*pod);
    }
  }

  const auto now = WallNow();
  const std::string now_text = FormatRfc3339(now);
  const bool suspended = spec.value("suspend", false);
  const int64_t succeeded = indexed ? static_cast<int64_t>(pods.succeeded_indexes.size())
                                    : static_cast<int64_t>(pods.succeeded.size());
  const int64_t failed = static_cast<int64_t>(pods.failed.size());
  const json status = job.value("status", json::object());
  json wanted = status;
  if (!suspended && !wanted.value("startTime", json()).is_string()) wanted["startTime"] = now_text;
  const auto start_time = ParseRfc3339(wanted.value("startTime", json("")).get<std::string>());

  // Has the job met its success or failure criteria? Once it has (the *Target conditions), that
  // verdict stands while its remaining pods are terminated.
  std::string finish_type, reason, message;
  for (const auto& [target, final_type] : {std::pair{"FailureTarget", "Failed"},
                                           std::pair{"SuccessCriteriaMet", "Complete"}}) {
    if (const json* condition = FindCondition(job, target);
        condition != nullptr && condition->value("status", "") == "True") {
      finish_type = final_type;
      reason = condition->value("reason", "");
      message = condition->value("message", "");
      break;
    }
  }
  if (finish_type.empty()) {
    const int64_t restarts =
        spec.value("/template/spec/restartPolicy"_json_pointer, std::string()) == "OnFailure"
            ? pods.restarts
            : 0;
    const std::optional<int64_t> deadline = OptionalInt(spec, "activeDeadlineSeconds");
    if (failed + restarts > spec.value("backoffLimit", int64_t{6})) {
      finish_type = "Failed";
      reason = "BackoffLimitExceeded";
      message = "Job has reached the specified backoff limit";
    } else if (!suspended && deadline && start_time &&
               now >= *start_time + std::chrono::seconds(*deadline)) {
      finish_type = "Failed";
      reason = "DeadlineExceeded";
      message = "Job was active longer than specified deadline";
    } else if ((completions && succeeded >= *completions) ||
               (!completions && succeeded > 0 && pods.active.empty())) {
      finish_type = "Complete";
      reason = "CompletionsReached";
      message = "Reached expected number of succeeded pods";
    }
    if (!finish_type.empty()) {
      SetCondition(wanted, finish_type == "Failed" ? "FailureTarget" : "SuccessCriteriaMet", "True",
                   reason, message, now_text);
      if (finish_type == "Failed") events_.Record(job, "Warning", reason, message);
    }
  }

  int64_t active = static_cast<int64_t>(pods.active.size());
  int64_t terminating = static_cast<int64_t>(pods.terminating.size());
  milliseconds wake_after{0};
  if (!finish_type.empty() || suspended) {
    // Finishing or suspended: no pod may keep running.
    if (!pods.active.empty()) {
      if (Status deleted = DeletePods(job, pods.active); !deleted.ok()) return deleted;
      terminating += active;
      active = 0;
    }
    if (!finish_type.empty() && terminating == 0) {
      SetCondition(wanted, finish_type, "True", reason, message, now_text);
      if (finish_type == "Complete") {
        wanted["completionTime"] = now_text;
        events_.Record(job, "Normal", "Completed", "Job completed");
      }
    } else if (finish_type.empty() && !ConditionTrue(job, "Suspended")) {
      SetCondition(wanted, "Suspended", "True", "JobSuspended", "Job suspended", now_text);
      events_.Record(job, "Normal", "Suspended", "Job suspended");
    }
  } else {
    if (ConditionTrue(job, "Suspended")) {
      SetCondition(wanted, "Suspended", "False", "JobResumed", "Job resumed", now_text);
      wanted["startTime"] = now_text;
      events_.Record(job, "Normal", "Resumed", "Job resumed");
    }
    if (expectations_.Satisfied(key)) {
      if (Status managed = ManagePods(job, pods, &wake_after); !managed.ok()) return managed;
    }
    if (const auto deadline = OptionalInt(spec, "activeDeadlineSeconds"); deadline && start_time) {
      Wake(&wake_after, duration_cast<milliseconds>(*start_time + std::chrono::seconds(*deadline) - now));
    }
  }

  wanted["active"] = active;
  wanted["ready"] = pods.ready;
  wanted["terminating"] = terminating;
  wanted["succeeded"] = succeeded;
  wanted["failed"] = failed;
  if (indexed) wanted["completedIndexes"] = FormatIndexes(pods.succeeded_indexes);
  if (wanted != status) {
    json updated = job;
    updated["status"] = wanted;
    auto result = api().UpdateStatus(client::kJobs, updated);
    if (!result.ok() && !client::IsNotFound(result.error())) return result.status();
  }
  if (wake_after.count() > 0) EnqueueAfter(key, wake_after);
  return Status::Ok();
}

Status JobController::ManagePods(const json& job, const PodSets& pods, milliseconds* wake_after) {
  const json& spec = job["spec"];
  const bool indexed = spec.value("completionMode", "NonIndexed") == "Indexed";
  const std::optional<int64_t> completions = OptionalInt(spec, "completions");
  const int64_t parallelism = spec.value("parallelism", int64_t{1});
  const int64_t succeeded = indexed ? static_cast<int64_t>(pods.succeeded_indexes.size())
                                    : static_cast<int64_t>(pods.succeeded.size());
  // podReplacementPolicy Failed: a terminating pod still holds its slot.
  const int64_t holding = static_cast<int64_t>(pods.active.size()) +
                          (spec.value("podReplacementPolicy", "") == "Failed"
                               ? static_cast<int64_t>(pods.terminating.size())
                               : 0);

  // Failed pods are replaced only after a backoff: 10 s doubling per failure since the last
  // success, counted from the latest failure.
  bool creates_blocked = false;
  std::optional<std::chrono::system_clock::time_point> last_success, last_failure;
  for (const client::ObjectPtr& pod : pods.succeeded) {
    if (auto at = PodFinishTime(*pod); at && (!last_success || *at > *last_success)) last_success = at;
  }
  int64_t recent_failures = 0;
  for (const client::ObjectPtr& pod : pods.failed) {
    auto at = PodFinishTime(*pod);
    if (!at) continue;
    if (!last_success || *at > *last_success) ++recent_failures;
    if (!last_failure || *at > *last_failure) last_failure = at;
  }
  if (last_failure && recent_failures > 0) {
    const auto ready_at = *last_failure + PodFailureBackoff(recent_failures);
    const auto now = WallNow();
    if (now < ready_at) {
      creates_blocked = true;
      Wake(wake_after, duration_cast<milliseconds>(ready_at - now));
    }
  }

  if (!indexed) {
    int64_t want = parallelism;
    if (completions) {
      want = std::min(parallelism, std::max<int64_t>(0, *completions - succeeded));
    } else if (succeeded > 0) {
      want = std::min<int64_t>(parallelism, static_cast<int64_t>(pods.active.size()));
    }
    if (holding > want) {
      std::vector<client::ObjectPtr> victims = pods.active;
      std::stable_sort(victims.begin(), victims.end(), [](const auto& a, const auto& b) {
        return PodDeletionCost(*a) > PodDeletionCost(*b);
      });
      victims.resize(static_cast<size_t>(std::min<int64_t>(holding - want, victims.size())));
      return DeletePods(job, victims);
    }
    if (holding < want && !creates_blocked) {
      return CreatePods(job, std::vector<int>(static_cast<size_t>(std::min<int64_t>(want - holding, kBurst)), -1));
    }
    return Status::Ok();
  }

  // Indexed: one active pod per index still to succeed.
  const int64_t total = completions.value_or(0);
  std::map<int, client::ObjectPtr> active_by_index;
  std::vector<client::ObjectPtr> extra;
  std::vector<client::ObjectPtr> sorted = pods.active;
  std::sort(sorted.begin(), sorted.end(), [](const auto& a, const auto& b) {
    return (*a)["metadata"].value("creationTimestamp", "") < (*b)["metadata"].value("creationTimestamp", "");
  });
  for (const client::ObjectPtr& pod : sorted) {
    const int index = CompletionIndex(*pod);
    if (index < 0 || index >= total || pods.succeeded_indexes.count(index) ||
        !active_by_index.emplace(index, pod).second) {
      extra.push_back(pod);
    }
  }
  const int64_t want = std::min(parallelism, std::max<int64_t>(0, total - succeeded));
  for (auto it = active_by_index.rbegin();
       static_cast<int64_t>(active_by_index.size()) - static_cast<int64_t>(extra.size()) > want &&
       it != active_by_index.rend();
       ++it) {
    extra.push_back(it->second);
  }
  if (!extra.empty()) return DeletePods(job, extra);
  if (creates_blocked) return Status::Ok();
  std::vector<int> indexes;
  for (int index = 0; index < total && static_cast<int64_t>(indexes.size() + active_by_index.size()) < want &&
                      static_cast<int64_t>(indexes.size()) < kBurst;
       ++index) {
    if (!pods.succeeded_indexes.count(index) && !active_by_index.count(index)) indexes.push_back(index);
  }
  return indexes.empty() ? Status::Ok() : CreatePods(job, indexes);
}

Status JobController::CreatePods(const json& job, const std::vector<int>& indexes) {
  const std::string key = client::ObjectKey(job);
  const std::string ns = job["metadata"].value("namespace", "");
  expectations_.Expect(key, static_cast<int>(indexes.size()), 0);
  int failed = 0;
  for (int index : indexes) {
    auto created = api().Create(client::kPods, ns, JobPodFromTemplate(job, index));
    if (!created.ok()) {
      expectations_.CreationObserved(key);  // will not be observed
      if (++failed == 1) {
        events_.Record(job, "Warning", "FailedCreate", "Error creating: " + created.error().message);
      }
      continue;
    }
    events_.Record(job, "Normal", "SuccessfulCreate",
                   "Created pod: " + (*created)["metadata"].value("name", ""));
  }
  if (failed > 0) return Status(Code::kUnavailable, std::to_string(failed) + " pod creates failed");
  return Status::Ok();
}

Status JobController::DeletePods(const json& job, const std::vector<client::ObjectPtr>& victims) {
  const std::string key = client::ObjectKey(job);
  const std::string ns = job["metadata"].value("namespace", "");
  const int deletes = static_cast<int>(victims.size());
  expectations_.Expect(key, 0, deletes);
  for (int i = 0; i < deletes; ++i) {
    const client::ObjectPtr& pod = victims[static_cast<size_t>(i)];
    auto deleted = api().Delete(client::kPods, ns, PodName(pod), {});
    if (!deleted.ok()) {
      if (!client::IsNotFound(deleted.error())) {
        // This delete and the ones not sent will never be observed.
        expectations_.LowerExpectations(key, 0, deletes - i);
        return deleted.status();
      }
      expectations_.DeletionObserved(key);
      continue;
    }
    events_.Record(job, "Normal", "SuccessfulDelete", "Deleted pod: " + PodName(pod));
  }
  return Status::Ok();
}

Status JobController::DeleteIfExpired(const json& job) {
  const std::optional<int64_t> ttl = OptionalInt(job.value("spec", json::object()), "ttlSecondsAfterFinished");
  if (!ttl || job["metadata"].contains("deletionTimestamp")) return Status::Ok();
  std::optional<std::chrono::system_clock::time_point> finished =
      ParseRfc3339(job.value("/status/completionTime"_json_pointer, std::string()));
  if (!finished) {
    if (const json* condition = FindCondition(job, JobFinishedType(job))) {
      finished = ParseRfc3339(condition->value("lastTransitionTime", ""));
    }
  }
  const auto now = WallNow();
  const auto expires = finished.value_or(now) + std::chrono::seconds(*ttl);
  if (now < expires) {
    EnqueueAfter(client::ObjectKey(job), std::max(milliseconds(1), duration_cast<milliseconds>(expires - now)));
    return Status::Ok();
  }
  client::DeleteOptions options;
  options.propagation_policy = "Foreground";
  options.precondition_uid = job["metadata"].value("uid", "");
  auto deleted = api().Delete(client::kJobs, job["metadata"].value("namespace", ""),
                              job["metadata"].value("name", ""), options);
  if (!deleted.ok() && !client::IsNotFound(deleted.error()) && !client::IsConflict(deleted.error())) {
    return deleted.status();
  }
  return Status::Ok();
}

}  // namespace mk8s::controllers
