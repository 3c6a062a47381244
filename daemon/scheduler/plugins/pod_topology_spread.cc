// PodTopologySpread: DoNotSchedule constraints filter nodes whose domain would exceed maxSkew over
// the least loaded domain; ScheduleAnyway constraints score nodes in emptier domains higher.
#include <algorithm>
#include <cmath>
#include <limits>
#include <string_view>
#include <unordered_map>

#include "scheduler/plugins/plugins.h"

namespace mk8s::scheduler {
namespace {

// Domain value -> matching pods. Keys view node label strings, which the cache keeps alive (and
// unchanged) while its lock is held for the cycle; no string copies per domain.
using Values = std::unordered_map<std::string_view, int64_t>;

bool Untainted(const PodInfo& pod, const NodeInfo& node) {
  for (const Taint& t : node.taints()) {
    if ((t.effect == TaintEffect::kNoSchedule || t.effect == TaintEffect::kNoExecute) &&
        !TolerationsTolerate(pod.tolerations, t)) {
      return false;
    }
  }
  return true;
}

int64_t CountMatching(const NodeInfo& node, const PodInfo& pod, const SpreadConstraint& c) {
  int64_t n = 0;
  for (const auto& p : node.pods()) {
    if (p->ns == pod.ns && c.selector.Matches(p->labels)) ++n;
  }
  return n;
}

class PodTopologySpread final : public Plugin, public FilterPlugin, public ScorePlugin {
 public:
  std::string_view Name() const override { return kPodTopologySpread; }
  FilterPlugin* AsFilter() override { return this; }
  ScorePlugin* AsScore() override { return this; }
  bool IsUnresolvable(std::string_view reason) const override {
    return reason.find("missing required label") != std::string_view::npos;
  }

  bool PreFilter(const CycleContext& ctx) override {
    int n = Collect(ctx, /*hard=*/true, &hard_, &hard_counts_);
    if (n == 0) return false;
    hard_min_.assign(hard_.size(), 0);
    for (size_t i = 0; i < hard_.size(); ++i) {
      int64_t mn = std::numeric_limits<int64_t>::max();
      for (const auto& kv : hard_counts_[i]) mn = std::min(mn, kv.second);
      if (hard_counts_[i].empty() ||
          static_cast<int64_t>(hard_counts_[i].size()) < hard_[i]->min_domains) {
        mn = 0;  // fewer domains than minDomains: the global minimum is 0
      }
      hard_min_[i] = mn;
    }
    return true;
  }

  bool Filter(const CycleContext& ctx, const NodeInfo& node, FailureReasons* reasons) override {
    for (size_t i = 0; i < hard_.size(); ++i) {
      const SpreadConstraint& c = *hard_[i];
      const std::string* v = node.labels().Find(c.topology_key);
      if (v == nullptr) {
        reasons->emplace_back(
            "node(s) didn't match pod topology spread constraints (missing required label)");
        return false;
      }
      int64_t self = c.selector.Matches(ctx.pod.labels) ? 1 : 0;
      auto it = hard_counts_[i].find(*v);
      int64_t cnt = it == hard_counts_[i].end() ? 0 : it->second;
      if (cnt + self - hard_min_[i] > c.max_skew) {
        reasons->emplace_back("node(s) didn't match pod topology spread constraints");
        return false;
      }
    }
    return true;
  }

  bool PreScore(const CycleContext& ctx, std::span<const NodeInfo* const>) override {
    int n = Collect(ctx, /*hard=*/false, &soft_, &soft_counts_);
    if (n == 0) return false;
    soft_weight_.assign(soft_.size(), 0);
    for (size_t i = 0; i < soft_.size(); ++i) {
      soft_weight_[i] = std::log(static_cast<double>(soft_counts_[i].size()) + 2);
    }
    return true;
  }

  int64_t Score(const CycleContext&, const NodeInfo& node) override {
    double score = 0;
    for (size_t i = 0; i < soft_.size(); ++i) {
      const std::string* v = node.labels().Find(soft_[i]->topology_key);
      if (v == nullptr) return -1;  // ignored node: normalized to 0
      auto it = soft_counts_[i].find(*v);
      int64_t cnt = it == soft_counts_[i].end() ? 0 : it->second;
      score += static_cast<double>(cnt) * soft_weight_[i] + (soft_[i]->max_skew - 1);
    }
    return static_cast<int64_t>(std::llround(score));
  }

  void NormalizeScores(std::span<int64_t> scores) override {
    int64_t mn = std::numeric_limits<int64_t>::max();
    int64_t mx = 0;
    for (int64_t s : scores) {
      if (s < 0) continue;
      mn = std::min(mn, s);
      mx = std::max(mx, s);
    }
    for (int64_t& s : scores) {
      if (s < 0) {
        s = 0;
      } else if (mx == 0) {
        s = kMaxNodeScore;
      } else {
        s = kMaxNodeScore * (mx + mn - s) / mx;
      }
    }
  }

 private:
  // Gathers the pod's constraints of one kind and counts matching pods per domain over the nodes
  // the constraints apply to. Returns the number of constraints.
  static int Collect(const CycleContext& ctx, bool hard, std::vector<const SpreadConstraint*>* cs,
                     std::vector<Values>* counts) {
    cs->clear();
    for (const SpreadConstraint& c : ctx.pod.spread_constraints) {
      if (c.hard == hard && !c.topology_key.empty()) cs->push_back(&c);
    }
    if (counts->size() < cs->size()) counts->resize(cs->size());
    for (size_t i = 0; i < cs->size(); ++i) (*counts)[i].clear();
    if (cs->empty()) return 0;
    for (const NodeInfo* node : ctx.all_nodes) {
      bool has_keys = std::all_of(cs->begin(), cs->end(), [&](const SpreadConstraint* c) {
        return node->labels().Find(c->topology_key) != nullptr;
      });
      if (!has_keys) continue;
      for (size_t i = 0; i < cs->size(); ++i) {
        const SpreadConstraint& c = *(*cs)[i];
        if (c.honor_node_affinity && !PodMatchesNodeSelectorAndAffinity(ctx.pod, *node)) continue;
        if (c.honor_node_taints && !Untainted(ctx.pod, *node)) continue;
        (*counts)[i][*node->labels().Find(c.topology_key)] += CountMatching(*node, ctx.pod, c);
      }
    }
    return static_cast<int>(cs->size());
  }

  // Per cycle (see framework.h). Pointers refer into the cycle's PodInfo.
  std::vector<const SpreadConstraint*> hard_;
  std::vector<Values> hard_counts_;
  std::vector<int64_t> hard_min_;
  std::vector<const SpreadConstraint*> soft_;
  std::vector<Values> soft_counts_;
  std::vector<double> soft_weight_;
};

}  // namespace

std::unique_ptr<Plugin> NewPodTopologySpread(const nlohmann::json&) {
  return std::make_unique<PodTopologySpread>();
}

}  // namespace mk8s::scheduler
