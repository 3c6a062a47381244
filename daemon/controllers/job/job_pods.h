// Pure helpers of the Job controller (also used by the CronJob controller): Job conditions,
// completion indexes, the pods a Job creates, and when a pod finished. No I/O; thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>

namespace mk8s::controllers {

inline constexpr const char* kJobCompletionIndex = "batch.kubernetes.io/job-completion-index";
inline constexpr const char* kCronJobScheduledTimestamp =
    "batch.kubernetes.io/cronjob-scheduled-timestamp";

// The condition of `type` in object.status.conditions, or nullptr.
const nlohmann::json* FindCondition(const nlohmann::json& object, const std::string& type);
bool ConditionTrue(const nlohmann::json& object, const std::string& type);
// Sets (or adds) condition `type` in status.conditions. lastTransitionTime moves only when the
// status changes; lastProbeTime is `now` (RFC 3339).
void SetCondition(nlohmann::json& status, const std::string& type, const std::string& value,
                  const std::string& reason, const std::string& message, const std::string& now);

// "Complete" or "Failed" (a True condition), or "" while the job runs.
std::string JobFinishedType(const nlohmann::json& job);

// The pod's completion index (annotation, then label), or -1.
int CompletionIndex(const nlohmann::json& pod);
// Indexes in upstream's compressed form: "0-2,4,7-8".
std::string FormatIndexes(const std::set<int>& indexes);

// A pod for `job`'s template, owned by the job. Indexed jobs (index >= 0) get the completion
// index annotation and label, the JOB_COMPLETION_INDEX env var in every container, and the
// hostname <job>-<index> (unless the template sets one).
nlohmann::json JobPodFromTemplate(const nlohmann::json& job, int index);

// When a terminated pod finished: the latest container finishedAt, else the Ready condition's
// lastTransitionTime. nullopt if the pod says neither.
std::optional<std::chrono::system_clock::time_point> PodFinishTime(const nlohmann::json& pod);

// Sum of container restarts (OnFailure jobs count them against backoffLimit).
int64_t PodRestarts(const nlohmann::json& pod);

// The retry delay after `failures` consecutive failures: 10 s doubling to a 6 min cap
// (upstream's pod failure backoff).
std::chrono::seconds PodFailureBackoff(int64_t failures);

}  // namespace mk8s::controllers
