// NodeAffinity: filters on spec.nodeSelector and required node affinity; scores by the summed
// weights of matching preferred node affinity terms.
#include "scheduler/plugins/plugins.h"

namespace mk8s::scheduler {
namespace {

class NodeAffinity final : public Plugin, public FilterPlugin, public ScorePlugin {
 public:
  std::string_view Name() const override { return kNodeAffinity; }
  FilterPlugin* AsFilter() override { return this; }
  ScorePlugin* AsScore() override { return this; }
  bool IsUnresolvable(std::string_view) const override { return true; }

  bool PreFilter(const CycleContext& ctx) override {
    return !ctx.pod.node_selector.empty() || ctx.pod.required_node_affinity.has_value();
  }

  bool Filter(const CycleContext& ctx, const NodeInfo& node, FailureReasons* reasons) override {
    if (!Matches(ctx.pod, node)) {
      reasons->emplace_back("node(s) didn't match Pod's node affinity/selector");
      return false;
    }
    return true;
  }

  // Shared with PodTopologySpread's node inclusion policy.
  static bool Matches(const PodInfo& pod, const NodeInfo& node) {
    for (const auto& [k, v] : pod.node_selector.items()) {
      const std::string* have = node.labels().Find(k);
      if (have == nullptr || *have != v) return false;
    }
    if (pod.required_node_affinity.has_value() &&
        !pod.required_node_affinity->Matches(node.name(), node.labels())) {
      return false;
    }
    return true;
  }

  bool PreScore(const CycleContext& ctx, std::span<const NodeInfo* const>) override {
    return !ctx.pod.preferred_node_affinity.empty();
  }

  int64_t Score(const CycleContext& ctx, const NodeInfo& node) override {
    int64_t sum = 0;
    for (const WeightedNodeTerm& t : ctx.pod.preferred_node_affinity) {
      if (t.weight != 0 && t.term.Matches(node.name(), node.labels())) sum += t.weight;
    }
    return sum;
  }

  void NormalizeScores(std::span<int64_t> scores) override {
    DefaultNormalizeScores(scores, /*reverse=*/false);
  }
};

}  // namespace

bool PodMatchesNodeSelectorAndAffinity(const PodInfo& pod, const NodeInfo& node) {
  return NodeAffinity::Matches(pod, node);
}

std::unique_ptr<Plugin> NewNodeAffinity(const nlohmann::json&) {
  return std::make_unique<NodeAffinity>();
}

}  // namespace mk8s::scheduler
