// Prober: liveness, readiness and startup probes (exec, httpGet, tcpSocket) of running
// containers, with upstream's defaults (periodSeconds 10, timeoutSeconds 1, successThreshold 1,
// failureThreshold 3, initialDelaySeconds 0).
//
//  - readiness: a container with a readiness probe is ready only after a success (then stays
//    ready until failureThreshold failures in a row); without one, running means ready.
//  - startup: liveness and readiness wait until it succeeded; after failureThreshold failures the
//    container is killed like a failed liveness probe.
//  - liveness: after failureThreshold failures in a row the container is stopped (event
//    Unhealthy + Killing); the pod's sync restarts it per restartPolicy.
// Every change of a result calls `on_change(pod key)` so the pod's status is written.
//
// Threads: one worker thread per (container instance, probe kind), as upstream's probe workers;
// Update() (from pod workers) starts and stops them. Results are guarded by mu_.
#pragma once

#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>

#include "kubelet/pod_status.h"
#include "kubelet/runtime_state.h"

namespace mk8s::client {
class EventRecorder;
}
namespace mk8s::runtime {
class CriClient;
}

namespace mk8s::kubelet {

// One probe attempt: exec in the container, HTTP GET or TCP connect to the pod. Returns true on
// success; `output` says why it failed. Blocking up to timeout_seconds.
bool RunProbe(runtime::CriClient& cri, const nlohmann::json& probe, const std::string& container_id,
              const std::string& pod_ip, std::string* output);

class Prober {
 public:
  using OnChange = std::function<void(const std::string& pod_key)>;
  Prober(std::shared_ptr<runtime::CriClient> cri, client::EventRecorder* recorder,
         OnChange on_change);
  ~Prober();  // Stop()
  // Makes the probe workers of `pod` match its running containers. Any thread.
  void Update(const nlohmann::json& pod, const PodRuntimeState& state, const std::string& pod_ip);
  void ForgetPod(const std::string& pod_uid);
  // Results by container id.
  ProbeResults Results(const std::string& container_id);
  void Stop();

 private:
  struct Worker;
  void Run(std::shared_ptr<Worker> worker);
  void SetResult(const Worker& worker, bool value);

  std::shared_ptr<runtime::CriClient> cri_;
  client::EventRecorder* recorder_;
  OnChange on_change_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;                                   // GUARDED_BY(mu_)
  std::map<std::string, std::shared_ptr<Worker>> workers_;  // "<id>/<kind>". GUARDED_BY(mu_)
  std::map<std::string, ProbeResults> results_;             // by container id. GUARDED_BY(mu_)
  std::map<std::string, std::thread> threads_;              // GUARDED_BY(mu_)
};

}  // namespace mk8s::kubelet
