#include "scheduler/registry.h"

#include "scheduler/plugins/plugins.h"

namespace mk8s::scheduler {

void DefaultNormalizeScores(std::span<int64_t> scores, bool reverse) {
  int64_t max = 0;
  for (int64_t s : scores) max = std::max(max, s);
  if (max == 0) {
    if (reverse) {
      for (int64_t& s : scores) s = kMaxNodeScore;
    }
    return;
  }
  for (int64_t& s : scores) {
    s = kMaxNodeScore * s / max;
    if (reverse) s = kMaxNodeScore - s;
  }
}

PluginRegistry PluginRegistry::InTree() {
  PluginRegistry r;
  RegisterInTreePlugins(&r);
  return r;
}

Status PluginRegistry::Register(const std::string& name, PluginFactory factory) {
  if (!factory) return Status(Code::kInvalidArgument, "plugin " + name + ": empty factory");
  if (!factories_.emplace(name, std::move(factory)).second) {
    return Status(Code::kAlreadyExists, "scheduler plugin " + name + " is already registered");
  }
  return Status::Ok();
}

Result<std::unique_ptr<Plugin>> PluginRegistry::Create(const std::string& name,
                                                       const nlohmann::json& args) const {
  auto it = factories_.find(name);
  if (it == factories_.end()) {
    return Status(Code::kNotFound, "scheduler plugin " + name + " is not registered");
  }
  std::unique_ptr<Plugin> p = it->second(args);
  if (!p) return Status(Code::kInternal, "scheduler plugin " + name + ": factory returned null");
  return p;
}

Profile Profile::Default() {
  Profile p;
  p.filters = {kNodeUnschedulable, kNodeName,         kTaintToleration,   kNodeAffinity,
               kNodePorts,         kNodeResourcesFit, kPodTopologySpread, kInterPodAffinity};
  p.scorers = {{kTaintToleration, 3},    {kNodeAffinity, 2},  {kNodeResourcesFit, 1},
               {kBalancedAllocation, 1}, {kImageLocality, 1}, {kInterPodAffinity, 2},
               {kPodTopologySpread, 2}};
  return p;
}

}  // namespace mk8s::scheduler
