// Kubelet: the node agent on real containerd. It registers and heartbeats the Node
// (node_status.h), watches the pods bound to it, and runs each through PodSync on a work queue
// with N workers (pods sync concurrently, each pod serially). A relist every second (upstream's
// PLEG) notices container state changes and CRI sandboxes of pods gone from the API; a resync
// every 30 s re-checks every pod. Probes run in prober.h.
//
// Adoption: nothing is kept in memory across restarts. Sandboxes and containers carry the pod's
// labels and the restart count annotation, so a restarted mk8sd finds running pods by their uid
// and leaves them running (same container IDs, no restart counted).
//
// Memory: after a burst of syncs, once the queue is quiet, the relist thread hands the freed
// heap back to the OS (heap_trimmer.h).
//
// Images: the image garbage collector (image_gc.h) removes unused images when the image
// filesystem fills up.
//
// Pressure: while a hard eviction threshold is met, or a soft one has been met for its grace
// period, the eviction manager (eviction_manager.h) picks one pod at a time; a worker stops it
// (1 s grace on hard thresholds, the capped pod grace on soft ones) and marks it
// Failed/Evicted. Pods not started yet are refused while the node reports a pressure condition
// (eviction.h RejectUnderPressure).
//
// Threads: `workers` queue workers, one relist thread, the node status thread, the image GC
// thread, the eviction thread, the informer's dispatch thread. Stop() joins them all.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "kubelet/eviction_manager.h"
#include "kubelet/heap_trimmer.h"
#include "kubelet/image_gc.h"
#include "kubelet/node_status.h"
#include "kubelet/pod_sync.h"

namespace mk8s::client {
class Client;
class Informer;
class WorkQueue;
}  // namespace mk8s::client
namespace mk8s::runtime {
class CriClient;
}

namespace mk8s::kubelet {

class VolumeManager;

struct KubeletOptions {
  NodeOptions node;
  std::string root_dir;  // <state>/kubelet
  int workers = 8;
  std::chrono::milliseconds relist_period{1000};
  std::chrono::seconds resync_period{30};
  NodeStatusManager::PodCidrHook on_pod_cidr;  // writes the CNI config for the pod subnet
  ImageGcOptions image_gc;  // image garbage collection (image_gc.h)
  // --eviction-max-pod-grace-period (seconds): caps a pod's grace period on soft evictions
  // (eviction.h EvictionGraceSeconds); the thresholds themselves are in `node`.
  int64_t eviction_max_pod_grace_seconds = 0;
  // Volumes and env; members left empty use the VolumeManager (volumes/) and ResolveEnv.
  PodHooks hooks;
};

class Kubelet {
 public:
  // Registers the node, waits for the pod informer's first list (up to 60 s), then starts.
  static Result<std::unique_ptr<Kubelet>> Start(KubeletOptions options,
                                                std::shared_ptr<client::Client> client,
                                                std::shared_ptr<runtime::CriClient> cri);
  ~Kubelet();  // Stop(false)
  // Stops the loops; with stop_pods, also stops every container (with its grace period) and
  // sandbox (mk8s stop). Idempotent.
  void Stop(bool stop_pods);
  const std::string& node_name() const { return options_.node.node_name; }
  // The uid of the pod ns/name bound to this node, from the informer (any thread).
  std::optional<std::string> PodUid(const std::string& ns, const std::string& name) const;

 private:
  Kubelet(KubeletOptions options, std::shared_ptr<client::Client> client,
          std::shared_ptr<runtime::CriClient> cri);
  void InstallDefaultHooks(PodHooks* hooks);
  void Work();
  void RelistLoop();
  void Relist();
  void StartEvictionManager();
  // An eviction the manager asked for: the status message and the containers' grace period.
  struct Eviction {
    std::string message;
    int64_t grace_seconds = kHardEvictionGraceSeconds;
  };
  // The eviction asked for the pod `uid`, if any.
  std::optional<Eviction> PendingEviction(const std::string& uid);
  RuntimeReadiness ProbeRuntime();

  const KubeletOptions options_;
  std::shared_ptr<client::Client> client_;
  std::shared_ptr<runtime::CriClient> cri_;
  std::unique_ptr<NodeStatusManager> node_;
  std::unique_ptr<PodSync> sync_;
  std::unique_ptr<client::Informer> pods_;
  std::unique_ptr<client::Informer> services_;  // for the containers' service variables
  std::unique_ptr<VolumeManager> volumes_;
  std::unique_ptr<client::WorkQueue> queue_;
  std::unique_ptr<ImageGarbageCollector> image_gc_;
  std::unique_ptr<EvictionManager> eviction_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopping_{false};
  bool stopped_ = false;
  std::mutex mu_;
  std::condition_variable cv_;
  // Grace periods of pods deleted from the API (their last object said), for CleanUpOrphan.
  std::map<std::string, int64_t> orphan_grace_;  // GUARDED_BY(mu_)
  // Pods the eviction manager asked to go: uid -> the message their status will carry and
  // their grace period.
  std::map<std::string, Eviction> evictions_;  // GUARDED_BY(mu_)
  // Relist thread only: pod uid -> signature of its sandboxes' and containers' states.
  std::map<std::string, std::string> last_seen_;
  std::chrono::steady_clock::time_point last_resync_{};
  HeapTrimmer trimmer_{std::chrono::seconds(10)};  // NoteWork: workers; Tick: relist thread
};

}  // namespace mk8s::kubelet
