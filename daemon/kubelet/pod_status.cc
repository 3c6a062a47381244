#include "kubelet/pod_status.h"

#include <chrono>

#include "common/time_format.h"
#include "kubelet/qos.h"

namespace mk8s::kubelet {
namespace {

using nlohmann::json;

json Terminated(const ContainerInfo& c) {
  std::string reason = c.reason;
  if (reason.empty()) reason = c.exit_code == 0 ? "Completed" : "Error";
  json t = {{"exitCode", c.exit_code},
            {"reason", reason},
            {"startedAt", c.started_at_ns ? json(FormatNanos(c.started_at_ns)) : json(nullptr)},
            {"finishedAt", c.finished_at_ns ? json(FormatNanos(c.finished_at_ns)) : json(nullptr)},
            {"containerID", "containerd://" + c.id}};
  if (!c.message.empty()) t["message"] = c.message;
  return t;
}

// One entry of containerStatuses / initContainerStatuses.
json ContainerStatus(const json& spec_container, const PodRuntimeState& runtime,
                     const std::map<std::string, Waiting>& waiting, const std::string& default_wait,
                     const std::map<std::string, ProbeResults>& probes) {
  const std::string name = spec_container.value("name", "");
  json status = {{"name", name},
                 {"image", spec_container.value("image", "")},
                 {"imageID", ""},
                 {"ready", false},
                 {"started", false},
                 {"restartCount", 0},
                 {"lastState", json::object()}};
  const auto instances = runtime.Instances(name);
  const ContainerInfo* latest = instances.empty() ? nullptr : instances[0];
  const ContainerInfo* previous = instances.size() > 1 ? instances[1] : nullptr;
  auto override_it = waiting.find(name);
  if (latest == nullptr) {
    const Waiting w =
        override_it != waiting.end() ? override_it->second : Waiting{default_wait, ""};
    json state = {{"reason", w.reason}};
    if (!w.message.empty()) state["message"] = w.message;
    status["state"] = {{"waiting", state}};
    return status;
  }
  status["restartCount"] = latest->restart_count;
  status["containerID"] = "containerd://" + latest->id;
  status["imageID"] = latest->image_ref;
  if (previous != nullptr && previous->state == ContainerState::kExited) {
    status["lastState"] = {{"terminated", Terminated(*previous)}};
  }
  switch (latest->state) {
    case ContainerState::kRunning:
      status["state"] = {{"running", {{"startedAt", FormatNanos(latest->started_at_ns)}}}};
      {
        // Without probes running means started and ready; a readiness probe starts out false.
        ProbeResults results;
        if (auto it = probes.find(latest->id); it != probes.end()) results = it->second;
        const bool started = results.started.value_or(!spec_container.contains("startupProbe"));
        const bool ready =
            started && results.ready.value_or(!spec_container.contains("readinessProbe"));
        status["ready"] = ready;
        status["started"] = started;
        break;
      }
    case ContainerState::kExited:
      if (override_it != waiting.end()) {
        json state = {{"reason", override_it->second.reason}};
        if (!override_it->second.message.empty()) state["message"] = override_it->second.message;
        status["state"] = {{"waiting", state}};
        status["lastState"] = {{"terminated", Terminated(*latest)}};
      } else {
        status["state"] = {{"terminated", Terminated(*latest)}};
      }
      break;
    default: {
      const Waiting w =
          override_it != waiting.end() ? override_it->second : Waiting{"ContainerCreating", ""};
      json state = {{"reason", w.reason}};
      if (!w.message.empty()) state["message"] = w.message;
      status["state"] = {{"waiting", state}};
    }
  }
  return status;
}

json Condition(const std::string& type, bool value, const std::string& reason,
               const std::string& message) {
  json c = {{"type", type}, {"status", value ? "True" : "False"}, {"lastProbeTime", nullptr}};
  if (!reason.empty()) c["reason"] = reason;
  if (!message.empty()) c["message"] = message;
  return c;
}

std::string NameList(const std::vector<std::string>& names) {
  std::string out = "[";
  for (size_t i = 0; i < names.size(); ++i) out += (i ? " " : "") + names[i];
  return out + "]";
}

bool IsTerminal(const std::string& phase) { return phase == "Succeeded" || phase == "Failed"; }

}  // namespace

std::string FormatNanos(int64_t nanos) {
  return FormatRfc3339(std::chrono::system_clock::time_point(
      std::chrono::duration_cast<std::chrono::system_clock::duration>(
          std::chrono::nanoseconds(nanos))));
}

std::string PodPhase(const json& spec, const json& init_statuses, const json& statuses) {
  const std::string policy = spec.value("restartPolicy", "Always");
  // Init containers: a failed one with restartPolicy Never fails the pod; unfinished ones keep it
  // Pending.
  bool pending_init = false;
  for (const json& s : init_statuses) {
    const json& state = s["state"];
    if (state.contains("terminated")) {
      if (state["terminated"].value("exitCode", 0) != 0) {
        if (policy == "Never") return "Failed";
        pending_init = true;
      }
    } else {
      if (state.contains("waiting") && s["lastState"].contains("terminated") &&
          s["lastState"]["terminated"].value("exitCode", 0) != 0 && policy == "Never") {
        return "Failed";
      }
      pending_init = true;
    }
  }
  int running = 0, waiting = 0, stopped = 0, succeeded = 0;
  for (const json& s : statuses) {
    const json& state = s["state"];
    if (state.contains("running")) {
      ++running;
    } else if (state.contains("terminated")) {
      ++stopped;
      if (state["terminated"].value("exitCode", 0) == 0) ++succeeded;
    } else if (s["lastState"].contains("terminated")) {
      ++stopped;  // waiting to restart
    } else {
      ++waiting;
    }
  }
  if (pending_init) return "Pending";
  if (waiting > 0) return "Pending";
  if (running > 0) return "Running";
  if (stopped > 0) {
    if (policy == "Always") return "Running";
    if (stopped == succeeded) return "Succeeded";
    if (policy == "Never") return "Failed";
    return "Running";
  }
  return "Pending";
}

json ComputePodStatus(const StatusInputs& in) {
  const json& pod = *in.pod;
  const json spec = pod.value("spec", json::object());
  const json old = pod.value("status", json::object());
  const PodRuntimeState& runtime = *in.runtime;

  json init_statuses = json::array();
  bool init_done = true;
  std::vector<std::string> incomplete;
  for (const json& c : spec.value("initContainers", json::array())) {
    json s = ContainerStatus(c, runtime, in.waiting, "PodInitializing", in.probes);
    const bool done =
        s["state"].contains("terminated") && s["state"]["terminated"].value("exitCode", 1) == 0;
    if (!done) {
      init_done = false;
      incomplete.push_back(c.value("name", ""));
    }
    init_statuses.push_back(std::move(s));
  }
  json statuses = json::array();
  std::vector<std::string> unready;
  for (const json& c : spec.value("containers", json::array())) {
    json s = ContainerStatus(c, runtime, in.waiting,
                             init_done ? "ContainerCreating" : "PodInitializing", in.probes);
    if (!s.value("ready", false)) unready.push_back(c.value("name", ""));
    statuses.push_back(std::move(s));
  }

  json status = json::object();
  std::string phase = PodPhase(spec, init_statuses, statuses);
  const std::string old_phase = old.value("phase", "");
  if (IsTerminal(old_phase)) phase = old_phase;
  status["phase"] = phase;
  const bool terminal = IsTerminal(phase);

  const SandboxInfo* sandbox = runtime.Newest();
  const bool host_network = spec.value("hostNetwork", false);
  json conditions = json::array();
  conditions.push_back(
      Condition("PodReadyToStartContainers", sandbox != nullptr && sandbox->ready, "", ""));
  conditions.push_back(
      init_done ? Condition("Initialized", true, terminal ? "PodCompleted" : "", "")
                : Condition("Initialized", false, "ContainersNotInitialized",
                            "containers with incomplete status: " + NameList(incomplete)));
  const bool ready = unready.empty() && init_done && !terminal;
  const std::string not_ready_reason = terminal ? "PodCompleted" : "ContainersNotReady";
  const std::string not_ready_message =
      terminal ? "" : "containers with unready status: " + NameList(unready);
  conditions.push_back(
      ready ? Condition("ContainersReady", true, "", "")
            : Condition("ContainersReady", false, not_ready_reason, not_ready_message));
  conditions.push_back(ready ? Condition("Ready", true, "", "")
                             : Condition("Ready", false, not_ready_reason, not_ready_message));
  json scheduled;
  for (const json& c : old.value("conditions", json::array())) {
    if (c.value("type", "") == "PodScheduled") scheduled = c;
  }
  if (scheduled.is_null()) {
    scheduled = Condition("PodScheduled", true, "", "");
    scheduled["lastTransitionTime"] = in.now;
  }
  conditions.push_back(scheduled);
  // Set by the kubelet when it evicts the pod (pod_sync.cc MarkFailed); kept from then on.
  for (const json& c : old.value("conditions", json::array())) {
    if (c.is_object() && c.value("type", "") == "DisruptionTarget") conditions.push_back(c);
  }
  for (json& c : conditions) {
    if (c.contains("lastTransitionTime")) continue;
    c["lastTransitionTime"] = in.now;
    for (const json& o : old.value("conditions", json::array())) {
      if (o.value("type", "") == c["type"] && o.value("status", "") == c["status"] &&
          o.contains("lastTransitionTime")) {
        c["lastTransitionTime"] = o["lastTransitionTime"];
      }
    }
  }
  status["conditions"] = conditions;

  if (!in.host_ips.empty()) {
    status["hostIP"] = in.host_ips[0];
    json host_ips = json::array();
    for (const std::string& ip : in.host_ips) host_ips.push_back({{"ip", ip}});
    status["hostIPs"] = host_ips;
  }
  std::vector<std::string> pod_ips;
  if (host_network) {
    pod_ips = in.host_ips;
  } else if (sandbox != nullptr) {
    pod_ips = sandbox->ips;
  }
  if (pod_ips.empty() && old.contains("podIP") && terminal) {
    status["podIP"] = old["podIP"];  // keep the last known address of a finished pod
    if (old.contains("podIPs")) status["podIPs"] = old["podIPs"];
  } else if (!pod_ips.empty()) {
    status["podIP"] = pod_ips[0];
    json ips = json::array();
    for (const std::string& ip : pod_ips) ips.push_back({{"ip", ip}});
    status["podIPs"] = ips;
  }
  status["startTime"] = old.contains("startTime") ? old["startTime"] : json(in.now);
  if (!init_statuses.empty()) status["initContainerStatuses"] = init_statuses;
  status["containerStatuses"] = statuses;
  status["qosClass"] = QosClass(pod);
  for (const char* keep : {"nominatedNodeName", "reason", "message"}) {
    if (old.contains(keep)) status[keep] = old[keep];
  }
  return status;
}

bool StatusChanged(const json& old_status, const json& new_status) {
  return old_status != new_status;  // nlohmann objects compare as ordered maps
}

}  // namespace mk8s::kubelet
