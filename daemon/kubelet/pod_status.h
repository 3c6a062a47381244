// Pod status from what the runtime reports (upstream kubelet's generateAPIPodStatus and
// getPhase): phase, conditions, IPs, container statuses with state / lastState, qosClass.
// Pure functions over plain inputs; thread-safe.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "kubelet/runtime_state.h"

namespace mk8s::kubelet {

// Why a container without a running instance waits, as decided by the last sync
// (CrashLoopBackOff, ErrImagePull, ImagePullBackOff, CreateContainerError, ...).
struct Waiting {
  std::string reason;
  std::string message;
};

// Probe results of one container instance (prober.h).
struct ProbeResults {
  std::optional<bool> ready;    // readiness result; nullopt: no readiness probe
  std::optional<bool> started;  // startup result; nullopt: no startup probe
};

struct StatusInputs {
  const nlohmann::json* pod = nullptr;  // the API object (spec + current status)
  const PodRuntimeState* runtime = nullptr;
  std::map<std::string, Waiting> waiting;      // container name -> reason
  std::map<std::string, ProbeResults> probes;  // container id -> results
  std::vector<std::string> host_ips;           // the node's InternalIPs
  std::string now;                             // RFC 3339, for new transition times
};

// The status to write. Conditions keep their lastTransitionTime while their status is unchanged;
// startTime is kept; PodScheduled is kept; a terminal phase never goes back.
nlohmann::json ComputePodStatus(const StatusInputs& inputs);

// Upstream's getPhase over computed container statuses.
std::string PodPhase(const nlohmann::json& spec, const nlohmann::json& init_statuses,
                     const nlohmann::json& statuses);

// True when the status would change (ignores field order).
bool StatusChanged(const nlohmann::json& old_status, const nlohmann::json& new_status);

// RFC 3339 of a CRI nanosecond timestamp.
std::string FormatNanos(int64_t nanos);

}  // namespace mk8s::kubelet
