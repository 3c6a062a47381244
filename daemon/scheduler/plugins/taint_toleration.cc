// TaintToleration: filters nodes with an untolerated NoSchedule/NoExecute taint; scores by the
// number of untolerated PreferNoSchedule taints (fewer is better).
#include "scheduler/plugins/plugins.h"

namespace mk8s::scheduler {
namespace {

class TaintToleration final : public Plugin, public FilterPlugin, public ScorePlugin {
 public:
  std::string_view Name() const override { return kTaintToleration; }
  FilterPlugin* AsFilter() override { return this; }
  ScorePlugin* AsScore() override { return this; }
  bool IsUnresolvable(std::string_view) const override { return true; }

  bool Filter(const CycleContext& ctx, const NodeInfo& node, FailureReasons* reasons) override {
    for (const Taint& t : node.taints()) {
      if (t.effect != TaintEffect::kNoSchedule && t.effect != TaintEffect::kNoExecute) continue;
      if (TolerationsTolerate(ctx.pod.tolerations, t)) continue;
      reasons->push_back("node(s) had untolerated taint {" + t.key + ": " + t.value + "}");
      return false;
    }
    return true;
  }

  bool PreScore(const CycleContext& ctx, std::span<const NodeInfo* const>) override {
    prefer_tols_.clear();
    for (const Toleration& t : ctx.pod.tolerations) {
      if (!t.effect.has_value() || *t.effect == TaintEffect::kPreferNoSchedule) {
        prefer_tols_.push_back(t);
      }
    }
    return true;
  }

  int64_t Score(const CycleContext&, const NodeInfo& node) override {
    int64_t n = 0;
    for (const Taint& t : node.taints()) {
      if (t.effect == TaintEffect::kPreferNoSchedule && !TolerationsTolerate(prefer_tols_, t)) ++n;
    }
    return n;
  }

  void NormalizeScores(std::span<int64_t> scores) override {
    DefaultNormalizeScores(scores, /*reverse=*/true);
  }

 private:
  std::vector<Toleration> prefer_tols_;  // per cycle
};

}  // namespace

std::unique_ptr<Plugin> NewTaintToleration(const nlohmann::json&) {
  return std::make_unique<TaintToleration>();
}

}  // namespace mk8s::scheduler
