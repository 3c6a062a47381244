// The plugin framework: the interfaces filter and score plugins implement, and the per-cycle
// context they see. Mirrors the shape of the upstream scheduling framework (PreFilter/Filter,
// PreScore/Score/NormalizeScore) without its Go specifics.
//
// Threads and ownership: a plugin instance belongs to exactly one Scheduler and is called only from
// the thread running Scheduler::Schedule(), one cycle at a time, with the cache's lock held. So a
// plugin keeps its per-cycle state in members (reset by PreFilter/PreScore) and reuses their
// capacity across cycles: no allocation per node.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "scheduler/node_info.h"
#include "scheduler/pod_info.h"

namespace mk8s::scheduler {

class SchedulerCache;

inline constexpr int64_t kMaxNodeScore = 100;

// What a cycle's hooks may look at. Valid for the duration of one Schedule() call.
struct CycleContext {
  const PodInfo& pod;
  // Every node in the cluster (for PreFilter/PreScore aggregates over existing pods).
  const std::vector<NodeInfo*>& all_nodes;
  // Namespace labels, image counts. The cache's lock is held by the caller.
  const SchedulerCache& cache;
  const NamespaceLabelsFn& namespace_labels;
};

// Reasons a node failed a filter, in upstream's wording ("Insufficient cpu"). Reused across nodes
// by the scheduler: Filter() appends, the scheduler clears.
using FailureReasons = std::vector<std::string>;

class FilterPlugin {
 public:
  virtual ~FilterPlugin() = default;
  // Called once per cycle before any Filter(). Return false when the pod needs nothing from this
  // plugin, so Filter() is skipped for every node this cycle.
  virtual bool PreFilter(const CycleContext& ctx) {
    (void)ctx;
    return true;
  }
  // Returns true if `node` passes; otherwise appends at least one reason.
  virtual bool Filter(const CycleContext& ctx, const NodeInfo& node, FailureReasons* reasons) = 0;
  // Whether a failure with this reason cannot be fixed by evicting pods (upstream's
  // UnschedulableAndUnresolvable); only feeds the diagnosis message.
  virtual bool IsUnresolvable(std::string_view reason) const {
    (void)reason;
    return false;
  }
};

class ScorePlugin {
 public:
  virtual ~ScorePlugin() = default;
  // Called once per cycle with the feasible nodes. Return false to contribute 0 for every node.
  virtual bool PreScore(const CycleContext& ctx, std::span<const NodeInfo* const> feasible) {
    (void)ctx;
    (void)feasible;
    return true;
  }
  virtual int64_t Score(const CycleContext& ctx, const NodeInfo& node) = 0;
  // Maps raw scores (one per feasible node, same order) into 0..kMaxNodeScore in place.
  // The default leaves them as they are (for plugins already scoring in 0..100).
  virtual void NormalizeScores(std::span<int64_t> scores) { (void)scores; }
};

// A named plugin; it may be a filter, a scorer, or both (one instance serves both roles, so state
// computed in PreFilter is visible to Score).
class Plugin {
 public:
  virtual ~Plugin() = default;
  virtual std::string_view Name() const = 0;
  virtual FilterPlugin* AsFilter() { return nullptr; }
  virtual ScorePlugin* AsScore() { return nullptr; }
};

// Upstream's DefaultNormalizeScore: scale so the maximum becomes 100; `reverse` flips (100 - s).
void DefaultNormalizeScores(std::span<int64_t> scores, bool reverse);

}  // namespace mk8s::scheduler
