// Scheduler::Preempt: upstream's DefaultPreemption (PostFilter) over the scheduler cache. For each
// node whose failure eviction could fix, remove every pod of lower priority, check the pod fits,
// then put back as many as possible (those whose eviction would violate a disruption budget
// first, then the rest, most important first in each group); the rest are the victims. The best
// node is picked as upstream's pickOneNodeForPreemption does, without its start-time criterion
// (ties go to the first node found).
#include <algorithm>
#include <limits>
#include <optional>

#include "scheduler/scheduler.h"

namespace mk8s::scheduler {
namespace {

using PodList = std::vector<std::shared_ptr<const PodInfo>>;

// Splits `pods` (in reprieve order) into those whose eviction would take a budget below zero,
// each budget's allowance spent by the pods it covers in order, and the others (upstream's
// filterPodsWithPDBViolation).
void SplitByBudget(const PodList& pods, const std::vector<DisruptionBudget>& budgets,
                   PodList* violating, PodList* others) {
  std::vector<int64_t> allowed;
  allowed.reserve(budgets.size());
  for (const DisruptionBudget& b : budgets) allowed.push_back(b.disruptions_allowed);
  for (const auto& pod : pods) {
    bool violates = false;
    for (size_t i = 0; i < budgets.size(); ++i) {
      if (budgets[i].ns != pod->ns || !budgets[i].selector.Matches(pod->labels)) continue;
      if (--allowed[i] < 0) violates = true;
    }
    (violates ? violating : others)->push_back(pod);
  }
}

struct Candidate {
  const NodeInfo* node = nullptr;
  std::vector<std::shared_ptr<const PodInfo>> victims;
  int violations = 0;
  int64_t highest_priority = 0;
  int64_t priority_sum = 0;  // each priority offset by 2^31, as upstream, so negatives count

  void Summarize() {
    highest_priority = std::numeric_limits<int64_t>::min();
    priority_sum = 0;
    for (const auto& v : victims) {
      highest_priority = std::max(highest_priority, v->priority);
      priority_sum += v->priority + (int64_t{1} << 31);
    }
  }
  bool BetterThan(const Candidate& other) const {
    if (violations != other.violations) return violations < other.violations;
    if (highest_priority != other.highest_priority) return highest_priority < other.highest_priority;
    if (priority_sum != other.priority_sum) return priority_sum < other.priority_sum;
    return victims.size() < other.victims.size();
  }
};

}  // namespace

PreemptionResult Scheduler::Preempt(const nlohmann::json& pod,
                                    const std::vector<DisruptionBudget>& budgets) {
  return Preempt(PodInfo::Parse(pod), budgets);
}

PreemptionResult Scheduler::Preempt(const std::shared_ptr<const PodInfo>& pod_ptr,
                                    const std::vector<DisruptionBudget>& budgets) {
  std::lock_guard<std::mutex> lock(mu_);
  std::lock_guard<std::mutex> cache_lock(cache_->mu());
  const PodInfo& pod = *pod_ptr;
  PreemptionResult result;
  if (pod.preempt_never) {
    result.message = "preemption: not eligible due to preemptionPolicy=Never.";
    return result;
  }
  // An earlier preemption for this pod is still under way: wait for its victims to go rather
  // than evict more (upstream's PodEligibleToPreemptOthers).
  if (!pod.nominated_node.empty()) {
    if (const NodeInfo* nominated = cache_->FindNodeLocked(pod.nominated_node)) {
      for (const auto& p : nominated->pods()) {
        if (p->terminating && p->priority < pod.priority) {
          result.message =
              "preemption: not eligible due to a terminating pod on the nominated node.";
          return result;
        }
      }
    }
  }
  result.eligible = true;
  const std::vector<NodeInfo*>& nodes = cache_->NodesLocked();
  NamespaceLabelsFn ns_labels = [this](const std::string& ns) {
    return cache_->NamespaceLabelsLocked(ns);
  };
  CycleContext ctx{pod, nodes, *cache_, ns_labels};
  RunPreFilters(ctx);
  // A filter that fails on the trial node; reasons are not needed here.
  auto fails = [&](const NodeInfo& node) {
    FilterPlugin* failed = RunFilters(ctx, node);
    if (failed == nullptr && cache_->HasNominatedLocked()) failed = RunFiltersWithNominated(ctx, node);
    reasons_.clear();
    return failed != nullptr;
  };

  int unresolvable = 0;
  std::optional<Candidate> best;
  std::vector<std::shared_ptr<const PodInfo>> lower;
  for (const NodeInfo* node : nodes) {
    FilterPlugin* failed = RunFilters(ctx, *node);
    const bool unfixable =
        failed != nullptr && !reasons_.empty() && failed->IsUnresolvable(reasons_.front());
    reasons_.clear();
    if (failed == nullptr) continue;  // fits now (the cluster changed): no need to evict here
    if (unfixable) {
      ++unresolvable;
      continue;
    }
    lower.clear();
    for (const auto& p : node->pods()) {
      if (p->priority < pod.priority && !p->terminating) lower.push_back(p);
    }
    if (lower.empty()) continue;
    NodeInfo trial = *node;
    for (const auto& p : lower) trial.RemovePod(p->key);
    if (fails(trial)) continue;
    std::stable_sort(lower.begin(), lower.end(),
                     [](const auto& a, const auto& b) { return a->priority > b->priority; });
    PodList violating, others;
    SplitByBudget(lower, budgets, &violating, &others);
    Candidate candidate;
    candidate.node = node;
    for (const PodList* group : {&violating, &others}) {
      for (const auto& p : *group) {
        trial.AddPod(p);
        if (fails(trial)) {
          trial.RemovePod(p->key);
          candidate.victims.push_back(p);
          if (group == &violating) ++candidate.violations;
        }
      }
    }
    if (candidate.victims.empty()) continue;
    candidate.Summarize();
    if (!best || candidate.BetterThan(*best)) best = std::move(candidate);
  }
  if (!best) {
    result.message = PreemptionMessage(nodes.size(), unresolvable);
    return result;
  }
  result.node = best->node->name();
  result.victims = std::move(best->victims);
  result.budget_violations = best->violations;
  return result;
}

}  // namespace mk8s::scheduler
