// The kubelet's eviction manager (upstream's). Every `period` (10 s, upstream's monitoring
// interval) it reads the node's signals (node_pressure.h). A threshold of `--eviction-hard`
// counts at once; one of `--eviction-soft` only once it has been met in every pass for its
// grace period (SoftThresholdTimer, eviction.h; a pass that finds it not met starts it over).
// While a threshold counts, the manager first frees what the node itself holds (on disk
// pressure: images no container uses, through the image GC) and, if the threshold is still met,
// evicts ONE pod per pass: among the pods on the node that are neither finished, being deleted
// nor critical, the first by RankForEviction (eviction.h) over the runtime's usage figures and
// the pods' cgroup process counts. The eviction itself (stop the containers with the grace
// period EvictionGraceSeconds gives, write phase Failed / reason Evicted) is the kubelet's work
// queue's job: the manager only names the pod, the message and the grace period.
//
// Threads: Start() runs the loop on a thread of its own; Stop() joins it. RunOnce() may be
// called directly when the loop is not running (tests). The hooks are called on that thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "kubelet/eviction.h"
#include "kubelet/node_pressure.h"
#include "kubelet/periodic_loop.h"

namespace mk8s::runtime {
class CriClient;
}

namespace mk8s::kubelet {

struct EvictionHooks {
  // The node's signals now (default: ObserveNodeSignals over the options' folders).
  std::function<NodeSignals()> observe;
  // The pods bound to this node, as the API says (the kubelet's informer).
  std::function<std::vector<std::shared_ptr<const nlohmann::json>>()> list_pods;
  // Usage per pod uid, from the runtime (containers' memory and ephemeral storage) and the
  // node's disk (emptyDir volumes). Pods missing from the map used nothing measurable.
  std::function<std::map<std::string, PodUsage>()> read_usage;
  // Frees node-level disk (unused images); returns the bytes freed. May be empty.
  std::function<uint64_t()> reclaim_images;
  // Asks for `pod` to be evicted with `message`, its containers stopped with `grace_seconds`
  // (the kubelet queues it to its workers).
  std::function<void(const nlohmann::json& pod, const std::string& message, int64_t grace_seconds)>
      evict;
  // The clock soft thresholds' grace periods are measured on (default: steady_clock::now).
  std::function<std::chrono::steady_clock::time_point()> now;
};

struct EvictionManagerOptions {
  // Hard and soft thresholds (EvictionThreshold::soft); empty: the manager never acts.
  std::vector<EvictionThreshold> thresholds;
  std::chrono::milliseconds period{10000};
  // --eviction-max-pod-grace-period: caps the pod's own grace period on soft evictions
  // (EvictionGraceSeconds, eviction.h). 0 (upstream's default): soft evictions are immediate.
  int64_t max_pod_grace_seconds = 0;
};

class EvictionManager {
 public:
  EvictionManager(EvictionManagerOptions options, EvictionHooks hooks);
  ~EvictionManager();  // Stop()

  void Start();
  void Stop();

  // What one pass found and did.
  struct Pass {
    std::optional<MetThreshold> threshold;  // the threshold acted on, if any counted
    // Soft thresholds met but still within their grace period (signals).
    std::vector<std::string> soft_waiting;
    uint64_t images_freed = 0;
    std::string evicted;  // "namespace/name" of the pod asked to go; empty if none
    int64_t grace_seconds = 0;  // what the evicted pod's containers get to stop
  };
  Pass RunOnce();

 private:
  const EvictionManagerOptions options_;
  EvictionHooks hooks_;
  // Uids already asked to go; a pod stays out of the candidates until the API shows it
  // finished or gone. Loop thread only (RunOnce).
  std::set<std::string> asked_;
  SoftThresholdTimer soft_timer_;  // loop thread only
  PeriodicLoop loop_;
};

// PodUsage for `pods`, by uid: each container's memory working set and writable layers from
// CRI ListContainerStats (summed over its instances), the size of its log folder under
// `log_root` (PodLogDirectory/<container>), and the size of the pod's disk-backed emptyDir
// volumes (folders named by `empty_dir_path`). A failed CRI call leaves only what the disk says.
// Blocking; any thread.
using EmptyDirPath =
    std::function<std::string(const std::string& pod_uid, const nlohmann::json& volume)>;
std::map<std::string, PodUsage> ReadRuntimeUsage(
    runtime::CriClient& cri, const std::vector<std::shared_ptr<const nlohmann::json>>& pods,
    const std::string& log_root, const EmptyDirPath& empty_dir_path);

// Sets PodUsage::processes of `pods` in `usage` from their pod cgroups' pids.current (tasks:
// processes and their threads, what PIDs are spent on). The pod cgroup is
// PodCgroupParent(pod) (qos.h) under `cgroup_root` (/sys/fs/cgroup): the pids controller's
// hierarchy on cgroup v1 (`<root>/pids<parent>`), the unified one on v2 (`<root><parent>`);
// it holds the sandbox and every container, counted hierarchically. A pod whose cgroup is not
// found keeps 0. Blocking (file reads); any thread.
void ReadPodProcessCounts(const std::string& cgroup_root,
                          const std::vector<std::shared_ptr<const nlohmann::json>>& pods,
                          std::map<std::string, PodUsage>* usage);

}  // namespace mk8s::kubelet
