// NodeResourcesFit (filter: requests fit allocatable minus what is already requested; score:
// LeastAllocated over cpu and memory) and NodeResourcesBalancedAllocation (score: cpu and memory
// fractions close to each other).
#include <algorithm>
#include <cmath>

#include "scheduler/plugins/plugins.h"

namespace mk8s::scheduler {
namespace {

int64_t LeastRequested(int64_t requested, int64_t allocatable) {
  if (requested > allocatable) return 0;
  return (allocatable - requested) * kMaxNodeScore / allocatable;
}

class NodeResourcesFit final : public Plugin, public FilterPlugin, public ScorePlugin {
 public:
  std::string_view Name() const override { return kNodeResourcesFit; }
  FilterPlugin* AsFilter() override { return this; }
  ScorePlugin* AsScore() override { return this; }

  bool Filter(const CycleContext& ctx, const NodeInfo& node, FailureReasons* reasons) override {
    const Resource& want = ctx.pod.req.requests;
    const Resource& alloc = node.allocatable();
    const Resource& used = node.requested();
    bool ok = true;
    if (static_cast<int64_t>(node.pods().size()) + 1 > alloc.pods) {
      reasons->emplace_back("Too many pods");
      ok = false;
    }
    if (want.milli_cpu > 0 && want.milli_cpu > alloc.milli_cpu - used.milli_cpu) {
      reasons->emplace_back("Insufficient cpu");
      ok = false;
    }
    if (want.memory > 0 && want.memory > alloc.memory - used.memory) {
      reasons->emplace_back("Insufficient memory");
      ok = false;
    }
    if (want.ephemeral_storage > 0 &&
        want.ephemeral_storage > alloc.ephemeral_storage - used.ephemeral_storage) {
      reasons->emplace_back("Insufficient ephemeral-storage");
      ok = false;
    }
    for (const auto& [name, v] : want.scalar) {
      if (v > 0 && v > alloc.Scalar(name) - used.Scalar(name)) {
        reasons->push_back("Insufficient " + name);
        ok = false;
      }
    }
    return ok;
  }

  int64_t Score(const CycleContext& ctx, const NodeInfo& node) override {
    const Resource& alloc = node.allocatable();
    int64_t sum = 0;
    int64_t weights = 0;
    if (alloc.milli_cpu > 0) {
      sum += LeastRequested(node.non_zero_milli_cpu() + ctx.pod.req.non_zero_milli_cpu,
                            alloc.milli_cpu);
      ++weights;
    }
    if (alloc.memory > 0) {
      sum += LeastRequested(node.non_zero_memory() + ctx.pod.req.non_zero_memory, alloc.memory);
      ++weights;
    }
    return weights == 0 ? 0 : sum / weights;
  }
};

class BalancedAllocation final : public Plugin, public ScorePlugin {
 public:
  std::string_view Name() const override { return kBalancedAllocation; }
  ScorePlugin* AsScore() override { return this; }

  int64_t Score(const CycleContext& ctx, const NodeInfo& node) override {
    const Resource& alloc = node.allocatable();
    double f[2];
    int n = 0;
    if (alloc.milli_cpu > 0) {
      double r = static_cast<double>(node.requested().milli_cpu + ctx.pod.req.requests.milli_cpu);
      f[n++] = std::min(1.0, r / static_cast<double>(alloc.milli_cpu));
    }
    if (alloc.memory > 0) {
      double r = static_cast<double>(node.requested().memory + ctx.pod.req.requests.memory);
      f[n++] = std::min(1.0, r / static_cast<double>(alloc.memory));
    }
    double std_dev = n == 2 ? std::abs(f[0] - f[1]) / 2 : 0.0;
    return static_cast<int64_t>((1.0 - std_dev) * static_cast<double>(kMaxNodeScore));
  }
};

}  // namespace

std::unique_ptr<Plugin> NewNodeResourcesFit(const nlohmann::json&) {
  return std::make_unique<NodeResourcesFit>();
}
std::unique_ptr<Plugin> NewBalancedAllocation(const nlohmann::json&) {
  return std::make_unique<BalancedAllocation>();
}

}  // namespace mk8s::scheduler
