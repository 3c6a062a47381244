// SchedulerCache: the scheduler's view of the cluster. Node name -> NodeInfo (parsed node plus
// aggregates of its pods), namespace labels, and assumed pods: pods this scheduler placed whose
// binding the informer has not reported yet. Assumed pods count against their node, so a burst of
// scheduling decisions never overcommits it; they expire after a TTL unless confirmed.
//
// Threads: every public method is thread-safe (one internal mutex). The informer handlers call
// Add/Update/Remove*; the scheduling thread takes mu() for a whole cycle and uses the *Locked()
// accessors, whose results stay valid only while mu() is held.
// Time: assumed-pod deadlines come from the injected `now` function (the Clock seam).
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "scheduler/node_info.h"
#include "scheduler/pod_info.h"

namespace mk8s::scheduler {

class SchedulerCache {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  using Duration = std::chrono::steady_clock::duration;
  using NowFn = std::function<TimePoint()>;

  // `now` defaults to std::chrono::steady_clock::now.
  explicit SchedulerCache(NowFn now = nullptr, Duration assumed_ttl = std::chrono::seconds(30));

  // v1.Node add or update (upsert by metadata.name).
  void UpsertNode(const nlohmann::json& node);
  void RemoveNode(const std::string& name);

  // v1.Pod add or update from the informer. Pods without spec.nodeName are ignored (the queue
  // holds them, not the cache); terminal pods (Succeeded/Failed) are removed. A pod that was
  // assumed is confirmed: it stops expiring and moves to the node the API server reports.
  void UpsertPod(const nlohmann::json& pod);
  void RemovePod(const nlohmann::json& pod);
  void RemovePodByKey(const std::string& key);

  // v1.Namespace add/update/delete, for pod affinity namespaceSelector.
  void UpsertNamespace(const nlohmann::json& ns);
  void RemoveNamespace(const std::string& name);

  // Places `pod` on `node` before the API server confirms it. Deadline = now + TTL.
  // Fails with kAlreadyExists if the pod is already in the cache, kNotFound if the node is unknown.
  Status AssumePod(std::shared_ptr<const PodInfo> pod, const std::string& node);
  // The binding request returned: restart the TTL from now (as upstream's FinishBinding).
  Status FinishBinding(const std::string& key);
  // The binding failed: drop the assumed pod. kNotFound if it is not assumed.
  Status ForgetPod(const std::string& key);
  // Drops assumed pods whose deadline passed; returns how many.
  size_t CleanupExpired();

  // Preemptors waiting for the node they preempted on (status.nominatedNodeName, not bound yet):
  // the scheduling cycle holds their requests on that node against pods of lower priority
  // (upstream's nominator), so the room their victims leave is not taken by others. An empty
  // `node` clears; a pod that is placed (assumed or bound) or removed is cleared too.
  void SetNominated(std::shared_ptr<const PodInfo> pod, const std::string& node);
  void ClearNominated(const std::string& key);
  // Clears the nominations to `node` of pods below `priority` and returns those pods (upstream:
  // the room a preemptor's victims leave is the preemptor's, not theirs; they try again).
  std::vector<std::shared_ptr<const PodInfo>> TakeNominatedBelow(const std::string& node,
                                                                 int64_t priority);

  bool IsAssumed(const std::string& key) const;
  // Node the pod is placed on (assumed or bound), or "" if the cache does not hold it.
  std::string NodeOf(const std::string& key) const;
  size_t NodeCount() const;
  size_t PodCount() const;

  // --- For the scheduling cycle: the caller holds mu() ---
  std::mutex& mu() const { return mu_; }
  // Nodes that exist (not ghosts), in a stable order that changes only on add/remove.
  const std::vector<NodeInfo*>& NodesLocked() const { return nodes_; }
  const NodeInfo* FindNodeLocked(const std::string& name) const;
  const Labels* NamespaceLabelsLocked(const std::string& ns) const;
  // How many nodes hold the (normalized) image.
  int ImageNodeCountLocked(const std::string& image) const;
  Status AssumePodLocked(std::shared_ptr<const PodInfo> pod, const std::string& node);
  size_t CleanupExpiredLocked();
  // Pods nominated to `node` (see SetNominated); empty when none.
  const std::vector<std::shared_ptr<const PodInfo>>& NominatedLocked(const std::string& node) const;
  bool HasNominatedLocked() const { return !nominated_node_of_.empty(); }
  // Pods on nodes (bound or assumed) with any affinity term / with required anti-affinity: the
  // sums of NodeInfo's counters, so a cycle skips walking every node when they are 0.
  int PodsWithAffinityLocked() const { return pods_with_affinity_; }
  int PodsWithRequiredAntiAffinityLocked() const { return pods_with_required_anti_; }

 private:
  struct PodState {
    std::shared_ptr<const PodInfo> pod;
    std::string node;
    bool assumed = false;
    TimePoint deadline;
  };

  NodeInfo* GetOrCreateInfoLocked(const std::string& name);
  void MaybeDropGhostLocked(const std::string& name);
  void AddPodToNodeLocked(const std::shared_ptr<const PodInfo>& pod, const std::string& node);
  void RemovePodLocked(const std::string& key);
  void CountImagesLocked(const NodeInfo& info, int delta);
  void CountAffinityLocked(const PodInfo& pod, int delta);
  void ClearNominatedLocked(const std::string& key);

  NowFn now_;
  const Duration ttl_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, std::unique_ptr<NodeInfo>> infos_;  // GUARDED_BY(mu_)
  std::vector<NodeInfo*> nodes_;                                      // GUARDED_BY(mu_)
  std::unordered_map<std::string, PodState> pods_;                    // GUARDED_BY(mu_)
  std::multimap<TimePoint, std::string> expiry_;        // deadline -> key. GUARDED_BY(mu_)
  std::unordered_map<std::string, Labels> namespaces_;  // GUARDED_BY(mu_)
  std::unordered_map<std::string, int> image_nodes_;    // GUARDED_BY(mu_)
  std::unordered_map<std::string, std::string> nominated_node_of_;  // key -> node. GUARDED_BY(mu_)
  std::unordered_map<std::string, std::vector<std::shared_ptr<const PodInfo>>>
      nominated_by_node_;                               // GUARDED_BY(mu_)
  int pods_with_affinity_ = 0;                          // GUARDED_BY(mu_)
  int pods_with_required_anti_ = 0;                     // GUARDED_BY(mu_)
};

}  // namespace mk8s::scheduler
