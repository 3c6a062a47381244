// PodSync: drives one pod's containers toward its spec on the runtime and reports its status
// (upstream's SyncPod / SyncTerminatingPod / computePodActions, simplified):
//   - sandbox: created when missing or not ready (attempt + 1; the old one is stopped, kept for
//     the last container states, and older ones removed);
//   - init containers in order, each to exit 0; then app containers; restarts per restartPolicy
//     with the per-container CrashLoopBackOff back-off; images pulled per imagePullPolicy;
//   - only the newest two instances of a container are kept (state + lastState);
//   - deletion: containers stopped with the grace period, sandboxes stopped and removed, then the
//     API object deleted with grace 0 and a UID precondition;
//   - status written when it changed.
//
// Threads: Sync/Terminate/CleanUpOrphan for one pod run on one worker at a time (the work
// queue guarantees it); different pods run concurrently. Shared maps are guarded by mu_.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "client/client.h"
#include "client/event_recorder.h"
#include "common/status.h"
#include "kubelet/backoff.h"
#include "kubelet/container_config.h"
#include "kubelet/pod_status.h"
#include "kubelet/prober.h"
#include "kubelet/runtime_state.h"

namespace mk8s::runtime {
class CriClient;
}

namespace mk8s::kubelet {

// Volume and environment hooks (the volume manager); null members fall back to no volumes and
// literal env values only.
struct PodHooks {
  std::function<Status(const nlohmann::json& pod)> set_up_volumes;
  std::function<Result<std::vector<MountSpec>>(const nlohmann::json& pod,
                                               const nlohmann::json& container)>
      mounts_for;
  std::function<void(const std::string& pod_uid)> tear_down_volumes;
  std::function<Result<std::vector<std::pair<std::string, std::string>>>(
      const nlohmann::json& pod, const nlohmann::json& container, const std::string& pod_ip)>
      resolve_env;
};

struct PodSyncOptions {
  std::string root_dir;  // <state>/kubelet (logs/, pods/)
  std::vector<std::string> host_ips;
  int64_t memory_capacity_bytes = 0;
  std::string host_resolv_conf = "/etc/resolv.conf";
  // Asks for a sync of the pod "ns/name" (probe results changed).
  std::function<void(const std::string& pod_key)> enqueue;
  // Admission of a pod the node has not started yet (no sandbox, not finished): nullopt runs
  // it; a text rejects it (phase Failed, reason Evicted, "Pod was rejected: <text>"). Empty:
  // every pod is admitted.
  std::function<std::optional<std::string>(const nlohmann::json& pod)> reject;
};

// Why the node ends a pod itself (PodSync::Fail).
struct PodFailure {
  std::string reason;   // status.reason and the event's reason ("Evicted")
  std::string message;  // status.message and the event's message
  bool disruption = false;  // adds the DisruptionTarget condition (TerminationByKubelet)
  int64_t grace_seconds = 0;  // for stopping its containers
};

// What a sync asks of its caller.
struct SyncOutcome {
  std::optional<std::chrono::milliseconds> requeue_after;  // back-off ends then
};

class PodSync {
 public:
  PodSync(PodSyncOptions options, std::shared_ptr<client::Client> client,
          std::shared_ptr<runtime::CriClient> cri, PodHooks hooks);

  // One pass over a pod that is in the API (not being deleted).
  Result<SyncOutcome> Sync(const nlohmann::json& pod);
  // A pod with deletionTimestamp: stop everything, then delete the API object.
  Status Terminate(const nlohmann::json& pod);
  // Ends a pod the node will not keep running (eviction, admission refused): stops its
  // containers with `why.grace_seconds` and its sandboxes, then writes phase Failed with the
  // reason and message. Later syncs see the terminal phase and keep everything stopped.
  Status Fail(const nlohmann::json& pod, const PodFailure& why);
  // A pod gone from the API whose sandboxes remain: stop (with `grace`, else each container's
  // own terminationGracePeriodSeconds) and remove them.
  Status CleanUpOrphan(const std::string& pod_uid, std::optional<int64_t> grace = std::nullopt);
  // Stops every container (with its grace period, at most 30 s) and sandbox on the runtime
  // (mk8sd stopping).
  void StopAll();
  // Forgets the in-memory state of a pod (back-off, waiting reasons, last status, probes).
  void Forget(const std::string& pod_uid);
  // Ends every probe worker (before StopAll on shutdown).
  void StopProbes();

 private:
  // Starts one container instance; on failure records the waiting reason and returns false.
  bool StartContainer(const nlohmann::json& pod, const nlohmann::json& container, int restart_count,
                      const std::string& sandbox_id, const cri::PodSandboxConfig& sandbox_config,
                      const std::string& pod_ip);
  bool EnsureImage(const nlohmann::json& pod, const nlohmann::json& container,
                   const cri::PodSandboxConfig& sandbox_config);
  // Restarts an exited instance unless backing off. Returns the remaining back-off if any.
  std::optional<std::chrono::milliseconds> Restart(const nlohmann::json& pod,
                                                   const nlohmann::json& container,
                                                   const ContainerInfo& last,
                                                   const std::string& sandbox_id,
                                                   const cri::PodSandboxConfig& sandbox_config,
                                                   const std::string& pod_ip);
  Result<std::string> EnsureSandbox(const nlohmann::json& pod, PodRuntimeState* state,
                                    cri::PodSandboxConfig* config);
  SandboxParams SandboxParamsFor(uint32_t attempt);
  void StopContainers(const std::vector<const ContainerInfo*>& containers, int64_t grace,
                      const nlohmann::json* pod);
  void RemoveOldInstances(const nlohmann::json& pod, const PodRuntimeState& state);
  // Writes the status computed from `state` (retrying conflicts on a fresh read); with
  // `failure`, the pod is marked Failed with its reason, message and condition first.
  Status WriteStatus(const nlohmann::json& pod, const PodRuntimeState& state,
                     const PodFailure* failure = nullptr);
  void SetWaiting(const std::string& uid, const std::string& container, Waiting waiting);
  void ClearWaiting(const std::string& uid, const std::string& container);
  std::map<std::string, Waiting> WaitingFor(const std::string& uid);

  const PodSyncOptions options_;
  std::shared_ptr<client::Client> client_;
  std::shared_ptr<runtime::CriClient> cri_;
  PodHooks hooks_;
  client::EventRecorder recorder_;
  std::unique_ptr<Prober> prober_;
  Backoff crash_backoff_;
  Backoff pull_backoff_;

  std::mutex mu_;
  std::map<std::string, std::map<std::string, Waiting>>
      waiting_;  // uid -> name -> why. GUARDED_BY(mu_)
  // uid -> the status last written, serialized (compact text: a parsed copy per pod cost ~3x
  // the memory for a comparison only). GUARDED_BY(mu_)
  std::map<std::string, std::string> last_status_;
};

// "name_namespace(uid)" as upstream's format.Pod.
std::string PodDescription(const nlohmann::json& pod);
// The grace period for deleting `pod`: metadata.deletionGracePeriodSeconds, else
// spec.terminationGracePeriodSeconds, else 30.
int64_t GracePeriod(const nlohmann::json& pod);

}  // namespace mk8s::kubelet
