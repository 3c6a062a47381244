#include "hollownode/fake_runtime.h"

#include <cstdlib>

#include "client/json_path.h"

namespace mk8s::hollownode {
namespace {

using nlohmann::json;

std::optional<long long> Annotation(const json& pod, const char* key) {
  const json* value_json = client::FindPath(pod, {"metadata", "annotations", key});
  if (value_json == nullptr || !value_json->is_string()) return std::nullopt;
  const std::string& text = value_json->get_ref<const std::string&>();
  char* end = nullptr;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0') return std::nullopt;
  return value;
}

}  // namespace

std::optional<std::chrono::milliseconds> PlannedRunTime(const json& pod) {
  if (!Annotation(pod, kExitCodeAnnotation)) return std::nullopt;
  const long long run_ms = Annotation(pod, kRunMsAnnotation).value_or(0);
  return std::chrono::milliseconds(run_ms < 0 ? 0 : run_ms);
}

json ExitedStatus(const json& pod, const std::string& now, bool* restarted) {
  const long long exit_code = Annotation(pod, kExitCodeAnnotation).value_or(0);
  const std::string policy = pod.value("/spec/restartPolicy"_json_pointer, std::string("Always"));
  *restarted = policy == "Always" || (policy == "OnFailure" && exit_code != 0);
  json status = pod.value("status", json::object());
  const std::string reason = exit_code == 0 ? "Completed" : "Error";
  for (json& container : status["containerStatuses"]) {
    const json terminated = {{"exitCode", exit_code},
                             {"reason", reason},
                             {"startedAt", container.value("/state/running/startedAt"_json_pointer, now)},
                             {"finishedAt", now},
                             {"containerID", container.value("containerID", "")}};
    if (*restarted) {
      container["lastState"] = {{"terminated", terminated}};
      container["state"] = {{"running", {{"startedAt", now}}}};
      container["restartCount"] = container.value("restartCount", 0) + 1;
    } else {
      container["state"] = {{"terminated", terminated}};
      container["ready"] = false;
      container["started"] = false;
    }
  }
  if (*restarted) return status;
  status["phase"] = exit_code == 0 ? "Succeeded" : "Failed";
  for (json& condition : status["conditions"]) {
    const std::string type = condition.value("type", "");
    if (type == "Ready" || type == "ContainersReady") {
      condition["status"] = "False";
      condition["reason"] = "PodCompleted";
      condition["lastTransitionTime"] = now;
    }
  }
  return status;
}

}  // namespace mk8s::hollownode
