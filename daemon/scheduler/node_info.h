// NodeInfo: one node's parsed fields plus aggregates over the pods placed on it (bound, assumed),
// kept incrementally so a filter or score is O(1) per node. Owned by SchedulerCache; read by
// plugins during a scheduling cycle while the cache's lock is held (see scheduler_cache.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "scheduler/labels.h"
#include "scheduler/pod_info.h"
#include "scheduler/resources.h"

namespace mk8s::scheduler {

struct ImageState {
  std::string name;  // normalized
  int64_t size_bytes = 0;
};

class alignas(64) NodeInfo {
 public:
  explicit NodeInfo(std::string name) : name_(std::move(name)) {}

  // Replaces the node-derived fields from a v1.Node; pod aggregates are kept.
  void SetNode(const nlohmann::json& node);
  // Marks the node object deleted; pods may still reference it until they are removed.
  void ClearNode();
  void AddPod(std::shared_ptr<const PodInfo> pod);
  // Returns false when the pod (by key) is not on this node.
  bool RemovePod(const std::string& key);

  const std::string& name() const { return name_; }
  bool has_node() const { return has_node_; }
  const Labels& labels() const { return labels_; }
  const std::vector<Taint>& taints() const { return taints_; }
  bool unschedulable() const { return unschedulable_; }
  const Resource& allocatable() const { return allocatable_; }
  const Resource& requested() const { return requested_; }
  int64_t non_zero_milli_cpu() const { return non_zero_cpu_; }
  int64_t non_zero_memory() const { return non_zero_mem_; }
  const std::vector<std::shared_ptr<const PodInfo>>& pods() const { return pods_; }
  const std::vector<HostPort>& used_ports() const { return used_ports_; }
  // Sorted by name.
  const std::vector<ImageState>& images() const { return images_; }
  const ImageState* FindImage(const std::string& normalized) const;
  int pods_with_affinity() const { return pods_with_affinity_; }
  int pods_with_required_anti_affinity() const { return pods_with_required_anti_; }

 private:
  // Member order is a memory layout: a scheduling cycle reads ~500 scattered NodeInfos, and the
  // filters and scorers every pod runs (unschedulable, resources fit, balanced allocation, taints)
  // read only the fields up to pods_, which share the object's first three cache lines (the
  // class is cache-line aligned); names, labels, images and ports follow.
  bool unschedulable_ = false;
  bool has_node_ = false;
  int pods_with_affinity_ = 0;
  int pods_with_required_anti_ = 0;
  Resource allocatable_;
  Resource requested_;
  int64_t non_zero_cpu_ = 0;
  int64_t non_zero_mem_ = 0;
  std::vector<Taint> taints_;
  std::vector<std::shared_ptr<const PodInfo>> pods_;
  std::vector<ImageState> images_;  // image locality's score: the fourth line

  std::string name_;
  Labels labels_;
  std::vector<HostPort> used_ports_;

 public:
  // Position in SchedulerCache's node list; maintained by the cache.
  size_t list_index = 0;
};

}  // namespace mk8s::scheduler
