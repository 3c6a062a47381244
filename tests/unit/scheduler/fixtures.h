// Small JSON builders for scheduler tests: nodes and pods shaped as the API server returns them.
#pragma once

#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "scheduler/plugins/plugins.h"
#include "scheduler/registry.h"
#include "scheduler/scheduler.h"
#include "scheduler/scheduler_cache.h"

namespace mk8s::scheduler::testing {

using nlohmann::json;

inline json Node(const std::string& name, const std::string& cpu = "4",
                 const std::string& memory = "8Gi", json labels = json::object(),
                 json extra_allocatable = json::object()) {
  labels["kubernetes.io/hostname"] = name;
  json alloc = {{"cpu", cpu}, {"memory", memory}, {"pods", "110"}};
  alloc.update(extra_allocatable);
  return {{"apiVersion", "v1"},
          {"kind", "Node"},
          {"metadata", {{"name", name}, {"labels", labels}}},
          {"spec", json::object()},
          {"status", {{"allocatable", alloc}, {"capacity", alloc}}}};
}

inline json WithTaint(json node, const std::string& key, const std::string& value,
                      const std::string& effect) {
  json t = {{"key", key}, {"effect", effect}};
  if (!value.empty()) t["value"] = value;
  node["spec"]["taints"].push_back(t);
  return node;
}

inline json Pod(const std::string& name, const std::string& cpu = "",
                const std::string& memory = "", json labels = json::object()) {
  json c = {{"name", "c"}, {"image", "nginx"}};
  json req = json::object();
  if (!cpu.empty()) req["cpu"] = cpu;
  if (!memory.empty()) req["memory"] = memory;
  if (!req.empty()) c["resources"] = {{"requests", req}};
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata",
           {{"name", name}, {"namespace", "default"}, {"uid", "uid-" + name}, {"labels", labels}}},
          {"spec", {{"containers", json::array({c})}}},
          {"status", {{"phase", "Pending"}}}};
}

inline json Bound(json pod, const std::string& node) {
  pod["spec"]["nodeName"] = node;
  pod["status"]["phase"] = "Running";
  return pod;
}

// A scheduler over `cache` with a fixed seed and the default in-tree profile, or a given one.
inline std::unique_ptr<Scheduler> MakeScheduler(SchedulerCache* cache,
                                                Profile profile = Profile::Default(),
                                                uint64_t seed = 42) {
  SchedulerOptions opts;
  opts.seed = seed;
  opts.record_all_scores = true;
  auto s = Scheduler::Create(cache, PluginRegistry::InTree(), profile, opts);
  if (!s.ok()) return nullptr;
  return std::move(s).value();
}

// A profile running only `filter` (no scoring).
inline Profile OnlyFilter(const std::string& filter) {
  Profile p;
  p.filters = {filter};
  return p;
}

// Runs the filter plugin alone; returns the feasible node names (sorted) and the result.
struct FilterOutcome {
  std::vector<std::string> feasible;
  ScheduleResult result;
};

inline FilterOutcome RunFilter(SchedulerCache* cache, const std::string& filter, const json& pod) {
  SchedulerOptions opts;
  opts.seed = 1;
  opts.record_all_scores = true;
  opts.percentage_of_nodes_to_score = 100;
  auto s = Scheduler::Create(cache, PluginRegistry::InTree(), OnlyFilter(filter), opts);
  FilterOutcome out;
  if (!s.ok()) return out;
  out.result = (*s)->Schedule(pod);
  if (out.result.feasible_nodes == 1) {
    out.feasible.push_back(out.result.node);
  } else {
    for (const auto& [n, score] : out.result.all_scores) out.feasible.push_back(n);
  }
  std::sort(out.feasible.begin(), out.feasible.end());
  return out;
}

// Runs one score plugin alone over every node of the cache (all feasible); returns node ->
// normalized score.
inline std::map<std::string, int64_t> RunScore(SchedulerCache* cache, const std::string& plugin,
                                               const json& pod) {
  auto p = PluginRegistry::InTree().Create(plugin, json());
  std::map<std::string, int64_t> out;
  if (!p.ok() || (*p)->AsScore() == nullptr) return out;
  ScorePlugin* sp = (*p)->AsScore();
  std::shared_ptr<const PodInfo> info = PodInfo::Parse(pod);
  std::lock_guard<std::mutex> lock(cache->mu());
  const auto& nodes = cache->NodesLocked();
  NamespaceLabelsFn nsl = [cache](const std::string& ns) {
    return cache->NamespaceLabelsLocked(ns);
  };
  CycleContext ctx{*info, nodes, *cache, nsl};
  std::vector<const NodeInfo*> feasible(nodes.begin(), nodes.end());
  std::vector<int64_t> scores(feasible.size(), 0);
  if (sp->PreScore(ctx, feasible)) {
    for (size_t i = 0; i < feasible.size(); ++i) scores[i] = sp->Score(ctx, *feasible[i]);
    sp->NormalizeScores(scores);
  }
  for (size_t i = 0; i < feasible.size(); ++i) out[feasible[i]->name()] = scores[i];
  return out;
}

}  // namespace mk8s::scheduler::testing
