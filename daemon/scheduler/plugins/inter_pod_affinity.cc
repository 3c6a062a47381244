// InterPodAffinity: required pod affinity / anti-affinity of the incoming pod, and existing pods'
// required anti-affinity against it (filter); preferred terms both ways (score).
#include <algorithm>

#include "scheduler/plugins/plugins.h"
#include "scheduler/scheduler_cache.h"
#include "scheduler/plugins/topology_counts.h"

namespace mk8s::scheduler {
namespace {

// Upstream's default hardPodAffinityWeight: existing pods' required affinity counts in scoring.
constexpr int64_t kHardPodAffinityWeight = 1;

class InterPodAffinity final : public Plugin, public FilterPlugin, public ScorePlugin {
 public:
  std::string_view Name() const override { return kInterPodAffinity; }
  FilterPlugin* AsFilter() override { return this; }
  ScorePlugin* AsScore() override { return this; }
  bool IsUnresolvable(std::string_view reason) const override {
    return reason == "node(s) didn't match pod affinity rules";
  }

  bool PreFilter(const CycleContext& ctx) override {
    const PodInfo& pod = ctx.pod;
    const NamespaceLabelsFn& nsl = ctx.namespace_labels;
    existing_anti_.Clear();
    affinity_.Clear();
    anti_.Clear();
    bool pod_terms = !pod.required_affinity.empty() || !pod.required_anti_affinity.empty();
    bool any_existing = false;
    // Walking every node is skipped when no placed pod has required anti-affinity (the common
    // case; upstream keeps a list of such nodes in its snapshot for the same reason).
    static const std::vector<NodeInfo*> kNone;
    const std::vector<NodeInfo*>& candidates =
        ctx.cache.PodsWithRequiredAntiAffinityLocked() > 0 ? ctx.all_nodes : kNone;
    for (const NodeInfo* node : candidates) {
      if (node->pods_with_required_anti_affinity() == 0) continue;
      any_existing = true;
      for (const auto& p : node->pods()) {
        for (const AffinityTerm& t : p->required_anti_affinity) {
          const std::string* v = node->labels().Find(t.topology_key);
          if (v != nullptr && t.Matches(pod.ns, pod.labels, nsl)) {
            existing_anti_.Add(t.topology_key, *v, 1);
          }
        }
      }
    }
    if (!pod_terms) return any_existing;
    for (const NodeInfo* node : ctx.all_nodes) {
      for (const auto& p : node->pods()) {
        if (!pod.required_affinity.empty()) {
          bool all =
              std::all_of(pod.required_affinity.begin(), pod.required_affinity.end(),
                          [&](const AffinityTerm& t) { return t.Matches(p->ns, p->labels, nsl); });
          if (all) {
            for (const AffinityTerm& t : pod.required_affinity) {
              const std::string* v = node->labels().Find(t.topology_key);
              if (v != nullptr) affinity_.Add(t.topology_key, *v, 1);
            }
          }
        }
        for (const AffinityTerm& t : pod.required_anti_affinity) {
          const std::string* v = node->labels().Find(t.topology_key);
          if (v != nullptr && t.Matches(p->ns, p->labels, nsl)) anti_.Add(t.topology_key, *v, 1);
        }
      }
    }
    self_match_ =
        std::all_of(pod.required_affinity.begin(), pod.required_affinity.end(),
                    [&](const AffinityTerm& t) { return t.Matches(pod.ns, pod.labels, nsl); });
    return true;
  }

  bool Filter(const CycleContext& ctx, const NodeInfo& node, FailureReasons* reasons) override {
    const PodInfo& pod = ctx.pod;
    if (!SatisfiesAffinity(pod, node)) {
      reasons->emplace_back("node(s) didn't match pod affinity rules");
      return false;
    }
    for (const AffinityTerm& t : pod.required_anti_affinity) {
      const std::string* v = node.labels().Find(t.topology_key);
      if (v != nullptr && anti_.Get(t.topology_key, *v) > 0) {
        reasons->emplace_back("node(s) didn't match pod anti-affinity rules");
        return false;
      }
    }
    if (existing_anti_.AnyPositiveForLabels(node.labels())) {
      reasons->emplace_back("node(s) didn't satisfy existing pods anti-affinity rules");
      return false;
    }
    return true;
  }

  bool PreScore(const CycleContext& ctx, std::span<const NodeInfo* const>) override {
    const PodInfo& pod = ctx.pod;
    const NamespaceLabelsFn& nsl = ctx.namespace_labels;
    scores_.Clear();
    bool pod_pref = !pod.preferred_affinity.empty() || !pod.preferred_anti_affinity.empty();
    if (!pod_pref && ctx.cache.PodsWithAffinityLocked() == 0) return false;  // nothing to count
    bool any = false;
    for (const NodeInfo* node : ctx.all_nodes) {
      if (!pod_pref && node->pods_with_affinity() == 0) continue;
      for (const auto& p : node->pods()) {
        if (pod_pref) {
          for (const WeightedAffinityTerm& w : pod.preferred_affinity) {
            if (w.term.Matches(p->ns, p->labels, nsl)) Add(*node, w.term, w.weight);
          }
          for (const WeightedAffinityTerm& w : pod.preferred_anti_affinity) {
            if (w.term.Matches(p->ns, p->labels, nsl)) Add(*node, w.term, -w.weight);
          }
        }
        if (!p->HasAffinityTerms()) continue;
        for (const AffinityTerm& t : p->required_affinity) {
          if (t.Matches(pod.ns, pod.labels, nsl)) Add(*node, t, kHardPodAffinityWeight);
        }
        for (const WeightedAffinityTerm& w : p->preferred_affinity) {
          if (w.term.Matches(pod.ns, pod.labels, nsl)) Add(*node, w.term, w.weight);
        }
        for (const WeightedAffinityTerm& w : p->preferred_anti_affinity) {
          if (w.term.Matches(pod.ns, pod.labels, nsl)) Add(*node, w.term, -w.weight);
        }
      }
      any = true;
    }
    return any && !scores_.empty();
  }

  int64_t Score(const CycleContext&, const NodeInfo& node) override {
    return scores_.SumForLabels(node.labels());
  }

  void NormalizeScores(std::span<int64_t> scores) override {
    if (scores.empty()) return;
    auto [mn, mx] = std::minmax_element(scores.begin(), scores.end());
    int64_t lo = *mn;
    int64_t diff = *mx - lo;
    for (int64_t& s : scores) s = diff > 0 ? kMaxNodeScore * (s - lo) / diff : 0;
  }

 private:
  bool SatisfiesAffinity(const PodInfo& pod, const NodeInfo& node) const {
    bool pods_exist = true;
    for (const AffinityTerm& t : pod.required_affinity) {
      const std::string* v = node.labels().Find(t.topology_key);
      if (v == nullptr) return false;  // every topology label must exist on the node
      if (affinity_.Get(t.topology_key, *v) <= 0) pods_exist = false;
    }
    // The first pod of a group with affinity to itself may go anywhere with the topology labels.
    return pods_exist || (affinity_.empty() && self_match_);
  }

  void Add(const NodeInfo& node, const AffinityTerm& t, int64_t weight) {
    const std::string* v = node.labels().Find(t.topology_key);
    if (v != nullptr && weight != 0) scores_.Add(t.topology_key, *v, weight);
  }

  // Per cycle (see framework.h).
  TopologyCounts existing_anti_;  // existing pods' anti terms matching the incoming pod
  TopologyCounts affinity_;       // pods matching all of the incoming pod's affinity terms
  TopologyCounts anti_;           // pods matching one of its anti-affinity terms
  TopologyCounts scores_;
  bool self_match_ = false;
};

}  // namespace

std::unique_ptr<Plugin> NewInterPodAffinity(const nlohmann::json&) {
  return std::make_unique<InterPodAffinity>();
}

}  // namespace mk8s::scheduler
