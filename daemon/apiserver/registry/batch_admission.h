// Admission for batch/v1 Jobs and CronJobs: the defaults and validation Kubernetes applies
// (generated selector, restartPolicy, completion mode, schedule syntax, time zone). Pod spec
// checks stay in admission.cc. Pure functions; thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apiserver/api_error.h"

namespace mk8s::apiserver {

// Job defaults: parallelism 1; completions 1 only when parallelism is unset too; backoffLimit 6;
// completionMode NonIndexed; suspend false; podReplacementPolicy TerminatingOrFailed (Failed with
// a podFailurePolicy); manualSelector false.
void DefaultJobSpec(nlohmann::json& spec);

// On create, unless spec.manualSelector is true: label the template with the job's uid and name
// (batch.kubernetes.io/controller-uid, batch.kubernetes.io/job-name and the legacy
// controller-uid, job-name) and set spec.selector to match the uid. A selector supplied without
// manualSelector must be that generated one ("`selector` not auto-generated").
void GenerateJobSelector(nlohmann::json& job, std::vector<StatusCause>* causes);

// Job spec fields other than the pod spec. `path` is "spec" or "spec.jobTemplate.spec".
void ValidateJobSpec(const nlohmann::json& spec, const std::string& path,
                     std::vector<StatusCause>* causes);

// CronJob: name length (52), schedule syntax, timeZone, concurrencyPolicy, non-negative limits,
// and the job template's spec.
void ValidateCronJob(const nlohmann::json& cronjob, std::vector<StatusCause>* causes);

}  // namespace mk8s::apiserver
