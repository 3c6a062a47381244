#include "apiserver/registry/batch_admission.h"

#include "common/cron_schedule.h"
#include "common/time_zone.h"

namespace mk8s::apiserver {
namespace {

using nlohmann::json;

constexpr const char* kControllerUid = "batch.kubernetes.io/controller-uid";
constexpr const char* kJobName = "batch.kubernetes.io/job-name";
// A CronJob's jobs are named <cronjob>-<minutes since the epoch> (11 more characters), and
// job names feed pod labels (63 characters).
constexpr size_t kMaxCronJobNameLength = 52;

void SetDefault(json& object, const char* key, json value) {
  if (!object.contains(key) || object[key].is_null()) object[key] = std::move(value);
}

std::string Quote(const json& value) { return value.is_string() ? "\"" + value.get<std::string>() + "\"" : value.dump(); }

void NonNegative(const json& spec, const char* field, const std::string& path,
                 std::vector<StatusCause>* causes) {
  const json value = spec.value(field, json());
  if (value.is_null()) return;
  if (!value.is_number_integer()) {
    causes->push_back({"FieldValueInvalid", "Invalid value: " + value.dump() + ": must be an integer", path + "." + field});
  } else if (value.get<int64_t>() < 0) {
    causes->push_back({"FieldValueInvalid",
                       "Invalid value: " + value.dump() + ": must be greater than or equal to 0",
                       path + "." + field});
  }
}

void OneOf(const json& spec, const char* field, const std::vector<std::string>& allowed,
           const std::string& path, std::vector<StatusCause>* causes) {
  const json value = spec.value(field, json());
  if (value.is_null()) return;
  for (const std::string& option : allowed) {
    if (value.is_string() && value.get<std::string>() == option) return;
  }
  std::string supported;
  for (const std::string& option : allowed) supported += (supported.empty() ? "" : ", ") + ("\"" + option + "\"");
  causes->push_back({"FieldValueNotSupported", "Unsupported value: " + Quote(value) + ": supported values: " + supported,
                     path + "." + field});
}

}  // namespace

void DefaultJobSpec(json& spec) {
  if (!spec.is_object()) return;
  const bool no_parallelism = !spec.contains("parallelism") || spec["parallelism"].is_null();
  const bool no_completions = !spec.contains("completions") || spec["completions"].is_null();
  if (no_parallelism && no_completions) spec["completions"] = 1;
  SetDefault(spec, "parallelism", 1);
  SetDefault(spec, "backoffLimit", 6);
  SetDefault(spec, "completionMode", "NonIndexed");
  SetDefault(spec, "suspend", false);
  SetDefault(spec, "manualSelector", false);
  const bool failure_policy = spec.contains("podFailurePolicy") && spec["podFailurePolicy"].is_object();
  SetDefault(spec, "podReplacementPolicy", failure_policy ? "Failed" : "TerminatingOrFailed");
}

void GenerateJobSelector(json& job, std::vector<StatusCause>* causes) {
  json& spec = job["spec"];
  if (!spec.is_object() || spec.value("manualSelector", false)) return;
  const std::string uid = job["metadata"].value("uid", "");
  const std::string name = job["metadata"].value("name", "");
  if (uid.empty()) return;
  json& metadata = spec["template"]["metadata"];
  if (!metadata.is_object()) metadata = json::object();
  json& labels = metadata["labels"];
  if (!labels.is_object()) labels = json::object();
  labels[kControllerUid] = uid;
  labels[kJobName] = name;
  labels["controller-uid"] = uid;
  labels["job-name"] = name;
  const json generated = {{"matchLabels", {{kControllerUid, uid}}}};
  if (!spec.contains("selector") || spec["selector"].is_null()) {
    spec["selector"] = generated;
  } else if (spec["selector"] != generated) {
    causes->push_back({"FieldValueInvalid",
                       "Invalid value: " + spec["selector"].dump() + ": `selector` not auto-generated",
                       "spec.selector"});
  }
}

void ValidateJobSpec(const json& spec, const std::string& path, std::vector<StatusCause>* causes) {
  if (!spec.is_object()) {
    causes->push_back({"FieldValueRequired", "Required value", path});
    return;
  }
  for (const char* field : {"parallelism", "completions", "activeDeadlineSeconds", "backoffLimit",
                            "ttlSecondsAfterFinished"}) {
    NonNegative(spec, field, path, causes);
  }
  OneOf(spec, "completionMode", {"NonIndexed", "Indexed"}, path, causes);
  OneOf(spec, "podReplacementPolicy", {"TerminatingOrFailed", "Failed"}, path, causes);
  if (spec.value("completionMode", "") == "Indexed" && !spec.value("completions", json()).is_number_integer()) {
    causes->push_back({"FieldValueRequired", "Required value: when completion mode is Indexed", path + ".completions"});
  }
  const json policy = spec.value("/template/spec/restartPolicy"_json_pointer, json());
  if (!policy.is_string() || (policy != "OnFailure" && policy != "Never")) {
    causes->push_back({"FieldValueNotSupported",
                       "Unsupported value: " + (policy.is_null() ? std::string("\"\"") : Quote(policy)) +
                           ": supported values: \"OnFailure\", \"Never\"",
                       path + ".template.spec.restartPolicy"});
  }
}

void ValidateCronJob(const json& cronjob, std::vector<StatusCause>* causes) {
  const std::string name = cronjob["metadata"].value("name", "");
  if (name.size() > kMaxCronJobNameLength) {
    causes->push_back({"FieldValueInvalid",
                       "Invalid value: \"" + name + "\": must be no more than 52 characters",
                       "metadata.name"});
  }
  const json spec = cronjob.value("spec", json::object());
  const json schedule = spec.value("schedule", json());
  if (!schedule.is_string() || schedule.get<std::string>().empty()) {
    causes->push_back({"FieldValueRequired", "Required value", "spec.schedule"});
  } else if (Result<CronSchedule> parsed = CronSchedule::Parse(schedule.get<std::string>()); !parsed.ok()) {
    causes->push_back({"FieldValueInvalid", "Invalid value: " + Quote(schedule) + ": " + parsed.status().message(),
                       "spec.schedule"});
  }
  const json zone = spec.value("timeZone", json());
  if (!zone.is_null()) {
    if (!zone.is_string() || zone.get<std::string>().empty()) {
      causes->push_back({"FieldValueInvalid", "Invalid value: " + Quote(zone) + ": timeZone must be nil or non-empty string",
                         "spec.timeZone"});
    } else if (Result<TimeZone> loaded = TimeZone::Load(zone.get<std::string>()); !loaded.ok()) {
      causes->push_back({"FieldValueInvalid", "Invalid value: " + Quote(zone) + ": " + loaded.status().message(),
                         "spec.timeZone"});
    }
  }
  OneOf(spec, "concurrencyPolicy", {"Allow", "Forbid", "Replace"}, "spec", causes);
  for (const char* field : {"startingDeadlineSeconds", "successfulJobsHistoryLimit", "failedJobsHistoryLimit"}) {
    NonNegative(spec, field, "spec", causes);
  }
  const json job_spec = spec.value("/jobTemplate/spec"_json_pointer, json());
  if (!job_spec.is_object()) {
    causes->push_back({"FieldValueRequired", "Required value", "spec.jobTemplate.spec"});
    return;
  }
  ValidateJobSpec(job_spec, "spec.jobTemplate.spec", causes);
}

}  // namespace mk8s::apiserver
