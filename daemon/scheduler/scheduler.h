// Scheduler: picks a node for one pod. Filter plugins remove nodes that cannot run it, score
// plugins rank the rest, the highest weighted total wins (random tie-break). Pure algorithm over
// SchedulerCache: no I/O; the caller binds the pod and tells the cache the outcome.
//
// Cost: O(nodes examined x filter plugins) + O(feasible x score plugins), with upstream's adaptive
// sampling (percentageOfNodesToScore) stopping the filter pass once enough nodes fit. Plugins that
// aggregate over existing pods (pod affinity, topology spread) add O(pods) only for pods that use
// those features.
//
// Threads: Schedule*() may be called from any thread; calls are serialized by an internal mutex
// and each holds the cache's lock for the cycle. The Scheduler does not own the cache, which must
// outlive it.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "scheduler/framework.h"
#include "scheduler/pod_info.h"
#include "scheduler/registry.h"
#include "scheduler/scheduler_cache.h"

namespace mk8s::scheduler {

struct SchedulerOptions {
  // Share of nodes to find feasible before scoring, in percent. 0: upstream's adaptive default
  // (50% at 100 nodes, minus 1% per 125 nodes, at least 5%); clusters under 100 nodes, or 100,
  // examine every node. At least 100 feasible nodes are looked for either way.
  int percentage_of_nodes_to_score = 0;
  // Tie-break seam: returns a uniform value in [0, n); called once per cycle with the number of
  // nodes tied for the highest total, and the value picks among them in the order examined.
  // Default: mt19937_64 seeded with `seed` (0: seeded from std::random_device).
  std::function<uint64_t(uint64_t n)> rand_below;
  uint64_t seed = 0;
  // Record every feasible node's total in ScheduleResult::all_scores (allocates; debugging only).
  bool record_all_scores = false;
  // Append upstream's preemption sentence to ScheduleResult::message (the counts of nodes where
  // evicting pods could help or not, as if no victims were found). The service replaces it with
  // Preempt()'s own outcome.
  bool preemption_message = true;
};

struct ScheduleResult {
  bool ok() const { return !node.empty(); }

  std::string node;  // chosen node; empty when unschedulable
  int64_t total_score = 0;
  // The chosen node's weighted score per score plugin (plugin name, weight x normalized score).
  std::vector<std::pair<std::string, int64_t>> plugin_scores;
  std::vector<std::pair<std::string, int64_t>> all_scores;  // node -> total (if recorded)
  size_t num_nodes = 0;                                     // nodes in the cluster
  size_t evaluated_nodes = 0;                               // nodes run through the filters
  size_t feasible_nodes = 0;

  // When !ok(): the FailedScheduling event message in upstream's format, e.g.
  // "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint
  // {node.kubernetes.io/unreachable: }. preemption: 0/3 nodes are available: 3 Preemption is not
  // helpful for scheduling." and the per-reason node counts behind it.
  std::string message;
  std::string fit_message;  // the same without the preemption sentence
  std::map<std::string, int> reasons;
  // ScheduleAndAssume() only: the outcome of assuming the pod (not OK e.g. if already assumed).
  Status assume_status;
};

// A PodDisruptionBudget as preemption weighs it: victims whose eviction would take a budget
// below zero are avoided when others will do (upstream's PDB handling in DefaultPreemption).
struct DisruptionBudget {
  std::string ns;
  LabelSelector selector;          // policy/v1: an empty selector covers the whole namespace
  int64_t disruptions_allowed = 0; // status.disruptionsAllowed
};

// What evicting pods could do for a pod that fits nowhere (upstream's DefaultPreemption).
struct PreemptionResult {
  // The node where the pod fits once `victims` (pods of lower priority on it) are gone; empty when
  // preemption cannot help.
  std::string node;
  std::vector<std::shared_ptr<const PodInfo>> victims;
  int budget_violations = 0;  // victims whose eviction violates a DisruptionBudget
  // When `node` is empty: upstream's sentence for the FailedScheduling message, e.g.
  // "preemption: 0/3 nodes are available: 1 No preemption victims found for incoming pod, 2
  // Preemption is not helpful for scheduling." or "preemption: not eligible due to
  // preemptionPolicy=Never."
  std::string message;
  // Whether the pod could preempt at all (not preemptionPolicy Never, not waiting for the
  // victims of an earlier preemption). An eligible pod with no `node` loses its nomination.
  bool eligible = false;
};

class Scheduler {
 public:
  // Instantiates the profile's plugins from `registry`. Fails with kNotFound for an unknown plugin
  // and kInvalidArgument for a plugin listed as a filter/scorer that is not one.
  static Result<std::unique_ptr<Scheduler>> Create(SchedulerCache* cache,
                                                   const PluginRegistry& registry,
                                                   const Profile& profile,
                                                   SchedulerOptions options = {});

  // Decides where `pod` (a v1.Pod) would go, without changing the cache.
  ScheduleResult Schedule(const nlohmann::json& pod);
  ScheduleResult Schedule(const std::shared_ptr<const PodInfo>& pod);
  // Schedule and, on success, assume the pod on the chosen node in the same critical section, so
  // a burst of calls cannot overcommit a node. The caller then binds, and calls
  // cache->FinishBinding(key) on success or cache->ForgetPod(key) on failure.
  ScheduleResult ScheduleAndAssume(const nlohmann::json& pod);

  // For a pod no node can take now: finds the node where evicting the fewest and least important
  // pods of lower priority lets it fit, as upstream picks it (fewest victims that violate a
  // disruption budget, then lowest highest victim priority, then lowest sum of priorities, then
  // fewest victims). Victims are reprieved while the pod still fits: those whose eviction would
  // violate a budget first, then the rest, most important first in each group. Nodes failing for a reason eviction cannot fix (taints,
  // selectors, affinity to nodes) are skipped. Not eligible: preemptionPolicy Never, or a pod
  // whose nominated node still has terminating victims (it waits for them). Changes nothing; the
  // caller nominates the pod (SchedulerCache::SetNominated) and deletes the victims.
  PreemptionResult Preempt(const nlohmann::json& pod,
                           const std::vector<DisruptionBudget>& budgets = {});
  PreemptionResult Preempt(const std::shared_ptr<const PodInfo>& pod,
                           const std::vector<DisruptionBudget>& budgets = {});

  // How many nodes the filter pass looks for, given the cluster size (upstream's
  // numFeasibleNodesToFind).
  static size_t NumFeasibleNodesToFind(int percentage, size_t num_nodes);

 private:
  struct ScorerSlot {
    ScorePlugin* plugin;
    std::string name;
    int64_t weight;
    std::vector<int64_t> scores;  // per cycle, one per feasible node
  };

  Scheduler(SchedulerCache* cache, SchedulerOptions options);
  ScheduleResult ScheduleLocked(const std::shared_ptr<const PodInfo>& pod);
  // Sets active_filters_: the filters whose PreFilter says the cycle's pod needs them.
  void RunPreFilters(const CycleContext& ctx);
  // Runs active_filters_ on `node`: nullptr if it passes, else the filter that failed (its
  // reasons appended to reasons_).
  FilterPlugin* RunFilters(const CycleContext& ctx, const NodeInfo& node);
  // As RunFilters, on `node` plus the pods nominated to it with a priority at least the cycle
  // pod's (nullptr at once when there are none).
  FilterPlugin* RunFiltersWithNominated(const CycleContext& ctx, const NodeInfo& node);
  static std::string FitMessage(size_t num_nodes, const std::map<std::string, int>& reasons);
  static std::string PreemptionMessage(size_t num_nodes, int unresolvable_nodes);

  SchedulerCache* const cache_;
  SchedulerOptions options_;
  std::mutex mu_;  // serializes cycles; guards everything below
  std::vector<std::unique_ptr<Plugin>> plugins_;
  std::vector<FilterPlugin*> filters_;
  std::vector<ScorerSlot> scorers_;
  std::mt19937_64 rng_;
  size_t next_start_index_ = 0;  // rotates the filter pass over the node list
  // Per-cycle scratch, reused.
  std::vector<FilterPlugin*> active_filters_;
  std::vector<const NodeInfo*> feasible_;
  std::vector<int64_t> totals_;
  FailureReasons reasons_;
};

}  // namespace mk8s::scheduler
