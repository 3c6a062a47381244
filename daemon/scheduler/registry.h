// PluginRegistry: the typed factory registry for in-tree scheduler plugins (DESIGN.md §4: in-tree
// extension points use a factory registry; tests may inject factories). A Profile names the
// filters to run, in order, and the scorers with their weights; the Scheduler instantiates each
// named plugin once from the registry.
//
// Threads: a registry is filled before use and then only read; reads are thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/status.h"
#include "scheduler/framework.h"

namespace mk8s::scheduler {

// Builds a plugin from its arguments (the profile's per-plugin JSON; null when none). The returned
// plugin is owned by the caller (one Scheduler).
using PluginFactory = std::function<std::unique_ptr<Plugin>(const nlohmann::json& args)>;

class PluginRegistry {
 public:
  // A registry holding every in-tree plugin (see plugins/plugins.h).
  static PluginRegistry InTree();

  // Fails with kAlreadyExists if `name` is taken, kInvalidArgument if the factory is empty.
  Status Register(const std::string& name, PluginFactory factory);
  bool Has(const std::string& name) const { return factories_.count(name) != 0; }
  // kNotFound for an unknown name; kInternal if the factory returns null.
  Result<std::unique_ptr<Plugin>> Create(const std::string& name, const nlohmann::json& args) const;

 private:
  std::map<std::string, PluginFactory> factories_;
};

struct Profile {
  struct WeightedPlugin {
    std::string name;
    int64_t weight = 1;
  };
  std::vector<std::string> filters;     // run in this order; a node stops at its first failure
  std::vector<WeightedPlugin> scorers;  // total = sum(weight * normalized score)
  std::map<std::string, nlohmann::json> args;  // plugin name -> factory args

  // Upstream's default profile: filters NodeUnschedulable, NodeName, TaintToleration,
  // NodeAffinity, NodePorts, NodeResourcesFit, PodTopologySpread, InterPodAffinity; scorers
  // TaintToleration 3, NodeAffinity 2, NodeResourcesFit 1, NodeResourcesBalancedAllocation 1,
  // ImageLocality 1, InterPodAffinity 2, PodTopologySpread 2.
  static Profile Default();
};

}  // namespace mk8s::scheduler
