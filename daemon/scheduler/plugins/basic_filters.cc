// NodeUnschedulable, NodeName and NodePorts: filters that need no per-cycle state.
#include "scheduler/plugins/plugins.h"
#include "scheduler/registry.h"

namespace mk8s::scheduler {
namespace {

class NodeUnschedulable final : public Plugin, public FilterPlugin {
 public:
  std::string_view Name() const override { return kNodeUnschedulable; }
  FilterPlugin* AsFilter() override { return this; }
  bool IsUnresolvable(std::string_view) const override { return true; }
  bool Filter(const CycleContext& ctx, const NodeInfo& node, FailureReasons* reasons) override {
    if (!node.unschedulable()) return true;
    static const Taint kTaint{"node.kubernetes.io/unschedulable", "", TaintEffect::kNoSchedule};
    if (TolerationsTolerate(ctx.pod.tolerations, kTaint)) return true;
    reasons->emplace_back("node(s) were unschedulable");
    return false;
  }
};

class NodeName final : public Plugin, public FilterPlugin {
 public:
  std::string_view Name() const override { return kNodeName; }
  FilterPlugin* AsFilter() override { return this; }
  bool IsUnresolvable(std::string_view) const override { return true; }
  bool PreFilter(const CycleContext& ctx) override { return !ctx.pod.node_name.empty(); }
  bool Filter(const CycleContext& ctx, const NodeInfo& node, FailureReasons* reasons) override {
    if (ctx.pod.node_name == node.name()) return true;
    reasons->emplace_back("node(s) didn't match the requested node name");
    return false;
  }
};

class NodePorts final : public Plugin, public FilterPlugin {
 public:
  std::string_view Name() const override { return kNodePorts; }
  FilterPlugin* AsFilter() override { return this; }
  bool PreFilter(const CycleContext& ctx) override { return !ctx.pod.host_ports.empty(); }
  bool Filter(const CycleContext& ctx, const NodeInfo& node, FailureReasons* reasons) override {
    for (const HostPort& want : ctx.pod.host_ports) {
      for (const HostPort& used : node.used_ports()) {
        if (want.ConflictsWith(used)) {
          reasons->emplace_back("node(s) didn't have free ports for the requested pod ports");
          return false;
        }
      }
    }
    return true;
  }
};

}  // namespace

std::unique_ptr<Plugin> NewNodeUnschedulable(const nlohmann::json&) {
  return std::make_unique<NodeUnschedulable>();
}
std::unique_ptr<Plugin> NewNodeName(const nlohmann::json&) { return std::make_unique<NodeName>(); }
std::unique_ptr<Plugin> NewNodePorts(const nlohmann::json&) {
  return std::make_unique<NodePorts>();
}

void RegisterInTreePlugins(PluginRegistry* r) {
  // Names are distinct constants, so registration cannot fail here.
  (void)r->Register(kNodeUnschedulable, NewNodeUnschedulable);
  (void)r->Register(kNodeName, NewNodeName);
  (void)r->Register(kNodePorts, NewNodePorts);
  (void)r->Register(kTaintToleration, NewTaintToleration);
  (void)r->Register(kNodeAffinity, NewNodeAffinity);
  (void)r->Register(kNodeResourcesFit, NewNodeResourcesFit);
  (void)r->Register(kBalancedAllocation, NewBalancedAllocation);
  (void)r->Register(kImageLocality, NewImageLocality);
  (void)r->Register(kInterPodAffinity, NewInterPodAffinity);
  (void)r->Register(kPodTopologySpread, NewPodTopologySpread);
}

}  // namespace mk8s::scheduler
