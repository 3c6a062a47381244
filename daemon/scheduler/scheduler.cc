#include "scheduler/scheduler.h"

#include <algorithm>
#include <optional>

namespace mk8s::scheduler {

Scheduler::Scheduler(SchedulerCache* cache, SchedulerOptions options)
    : cache_(cache), options_(std::move(options)) {
  uint64_t seed = options_.seed;
  if (seed == 0)
    seed = (static_cast<uint64_t>(std::random_device{}()) << 32) ^ std::random_device{}();
  rng_.seed(seed);
  if (!options_.rand_below) {
    options_.rand_below = [this](uint64_t n) {
      return std::uniform_int_distribution<uint64_t>(0, n - 1)(rng_);
    };
  }
}

Result<std::unique_ptr<Scheduler>> Scheduler::Create(SchedulerCache* cache,
                                                     const PluginRegistry& registry,
                                                     const Profile& profile,
                                                     SchedulerOptions options) {
  if (cache == nullptr) return Status(Code::kInvalidArgument, "scheduler: no cache");
  std::unique_ptr<Scheduler> s(new Scheduler(cache, std::move(options)));
  std::map<std::string, Plugin*> by_name;
  auto get = [&](const std::string& name) -> Result<Plugin*> {
    auto it = by_name.find(name);
    if (it != by_name.end()) return it->second;
    auto a = profile.args.find(name);
    static const nlohmann::json kNoArgs;
    Result<std::unique_ptr<Plugin>> p =
        registry.Create(name, a == profile.args.end() ? kNoArgs : a->second);
    if (!p.ok()) return p.status();
    Plugin* raw = p->get();
    s->plugins_.push_back(std::move(*p));
    by_name[name] = raw;
    return raw;
  };
  for (const std::string& name : profile.filters) {
    Result<Plugin*> p = get(name);
    if (!p.ok()) return p.status();
    FilterPlugin* f = (*p)->AsFilter();
    if (f == nullptr) {
      return Status(Code::kInvalidArgument, "scheduler plugin " + name + " is not a filter");
    }
    s->filters_.push_back(f);
  }
  for (const Profile::WeightedPlugin& w : profile.scorers) {
    Result<Plugin*> p = get(w.name);
    if (!p.ok()) return p.status();
    ScorePlugin* sc = (*p)->AsScore();
    if (sc == nullptr) {
      return Status(Code::kInvalidArgument, "scheduler plugin " + w.name + " is not a scorer");
    }
    if (w.weight <= 0) {
      return Status(Code::kInvalidArgument, "scheduler plugin " + w.name + ": weight must be > 0");
    }
    s->scorers_.push_back(ScorerSlot{sc, w.name, w.weight, {}});
  }
  return s;
}

size_t Scheduler::NumFeasibleNodesToFind(int percentage, size_t num_nodes) {
  constexpr size_t kMinFeasible = 100;
  if (num_nodes < kMinFeasible || percentage >= 100) return num_nodes;
  int64_t pct = percentage;
  if (pct <= 0) {
    pct = 50 - static_cast<int64_t>(num_nodes) / 125;
    if (pct < 5) pct = 5;
  }
  size_t n = num_nodes * static_cast<size_t>(pct) / 100;
  return std::max(n, kMinFeasible);
}

ScheduleResult Scheduler::Schedule(const nlohmann::json& pod) {
  return Schedule(PodInfo::Parse(pod));
}

ScheduleResult Scheduler::Schedule(const std::shared_ptr<const PodInfo>& pod) {
  std::lock_guard<std::mutex> lock(mu_);
  std::lock_guard<std::mutex> cache_lock(cache_->mu());
  return ScheduleLocked(pod);
}

ScheduleResult Scheduler::ScheduleAndAssume(const nlohmann::json& pod) {
  std::shared_ptr<const PodInfo> info = PodInfo::Parse(pod);
  std::lock_guard<std::mutex> lock(mu_);
  std::lock_guard<std::mutex> cache_lock(cache_->mu());
  ScheduleResult r = ScheduleLocked(info);
  if (r.ok()) {
    auto placed = std::make_shared<PodInfo>(*info);
    placed->node_name = r.node;
    r.assume_status = cache_->AssumePodLocked(std::move(placed), r.node);
  }
  return r;
}

ScheduleResult Scheduler::ScheduleLocked(const std::shared_ptr<const PodInfo>& pod_ptr) {
  const PodInfo& pod = *pod_ptr;
  cache_->CleanupExpiredLocked();
  const std::vector<NodeInfo*>& nodes = cache_->NodesLocked();
  ScheduleResult result;
  result.num_nodes = nodes.size();
  if (nodes.empty()) {
    result.message = "no nodes available to schedule pods";
    result.fit_message = result.message;
    return result;
  }
  NamespaceLabelsFn ns_labels = [this](const std::string& ns) {
    return cache_->NamespaceLabelsLocked(ns);
  };
  CycleContext ctx{pod, nodes, *cache_, ns_labels};

  // Filter.
  RunPreFilters(ctx);
  const size_t n = nodes.size();
  const size_t want = NumFeasibleNodesToFind(options_.percentage_of_nodes_to_score, n);
  feasible_.clear();
  int unresolvable_nodes = 0;
  size_t start = next_start_index_ % n;
  size_t processed = 0;
  for (; processed < n && feasible_.size() < want; ++processed) {
    const NodeInfo* node = nodes[(start + processed) % n];
    FilterPlugin* failed = RunFilters(ctx, *node);
    if (failed == nullptr && cache_->HasNominatedLocked()) {
      failed = RunFiltersWithNominated(ctx, *node);
    }
    if (failed == nullptr) {
      feasible_.push_back(node);
      continue;
    }
    if (!reasons_.empty() && failed->IsUnresolvable(reasons_.front())) ++unresolvable_nodes;
    for (std::string& r : reasons_) ++result.reasons[std::move(r)];
    reasons_.clear();
  }
  next_start_index_ = (start + processed) % n;
  result.evaluated_nodes = processed;
  result.feasible_nodes = feasible_.size();
  if (feasible_.empty()) {
    result.fit_message = FitMessage(n, result.reasons);
    result.message = result.fit_message;
    if (options_.preemption_message) {
      result.message += " " + (pod.preempt_never
                                   ? std::string("preemption: not eligible due to preemptionPolicy=Never.")
                                   : PreemptionMessage(n, unresolvable_nodes));
    }
    return result;
  }
  if (feasible_.size() == 1) {  // nothing to rank
    result.node = feasible_.front()->name();
    return result;
  }

  // Score.
  const size_t m = feasible_.size();
  totals_.assign(m, 0);
  std::span<const NodeInfo* const> feasible(feasible_.data(), m);
  for (ScorerSlot& slot : scorers_) {
    slot.scores.assign(m, 0);
    if (!slot.plugin->PreScore(ctx, feasible)) continue;
    for (size_t i = 0; i < m; ++i) slot.scores[i] = slot.plugin->Score(ctx, *feasible_[i]);
    slot.plugin->NormalizeScores(slot.scores);
    for (size_t i = 0; i < m; ++i) {
      slot.scores[i] = std::clamp<int64_t>(slot.scores[i], 0, kMaxNodeScore) * slot.weight;
      totals_[i] += slot.scores[i];
    }
  }

  // Select: highest total, uniformly among ties (as upstream's reservoir sampling, with one
  // random draw per cycle instead of one per tie: all nodes often tie).
  int64_t top = totals_[0];
  uint64_t ties = 0;
  for (size_t i = 0; i < m; ++i) {
    if (totals_[i] > top) {
      top = totals_[i];
      ties = 1;
    } else if (totals_[i] == top) {
      ++ties;
    }
  }
  uint64_t pick = ties > 1 ? options_.rand_below(ties) : 0;
  size_t best = 0;
  for (size_t i = 0; i < m; ++i) {
    if (totals_[i] != top) continue;
    if (pick == 0) {
      best = i;
      break;
    }
    --pick;
  }
  result.node = feasible_[best]->name();
  result.total_score = totals_[best];
  for (const ScorerSlot& slot : scorers_)
    result.plugin_scores.emplace_back(slot.name, slot.scores[best]);
  if (options_.record_all_scores) {
    for (size_t i = 0; i < m; ++i) result.all_scores.emplace_back(feasible_[i]->name(), totals_[i]);
  }
  return result;
}

void Scheduler::RunPreFilters(const CycleContext& ctx) {
  active_filters_.clear();
  for (FilterPlugin* f : filters_) {
    if (f->PreFilter(ctx)) active_filters_.push_back(f);
  }
}

FilterPlugin* Scheduler::RunFilters(const CycleContext& ctx, const NodeInfo& node) {
  for (FilterPlugin* f : active_filters_) {
    if (!f->Filter(ctx, node, &reasons_)) return f;
  }
  return nullptr;
}

FilterPlugin* Scheduler::RunFiltersWithNominated(const CycleContext& ctx, const NodeInfo& node) {
  const auto& nominated = cache_->NominatedLocked(node.name());
  std::optional<NodeInfo> with;
  for (const std::shared_ptr<const PodInfo>& p : nominated) {
    if (p->key == ctx.pod.key || p->priority < ctx.pod.priority) continue;
    if (!with) with.emplace(node);
    with->AddPod(p);
  }
  return with ? RunFilters(ctx, *with) : nullptr;
}

std::string Scheduler::FitMessage(size_t num_nodes, const std::map<std::string, int>& reasons) {
  // Upstream (FitError.Error): "0/N nodes are available: " + the "count reason" strings sorted as
  // strings and joined by ", " + "."
  std::vector<std::string> parts;
  parts.reserve(reasons.size());
  for (const auto& [reason, count] : reasons) parts.push_back(std::to_string(count) + " " + reason);
  std::sort(parts.begin(), parts.end());
  std::string msg = "0/" + std::to_string(num_nodes) + " nodes are available:";
  for (size_t i = 0; i < parts.size(); ++i) msg += (i == 0 ? " " : ", ") + parts[i];
  msg += ".";
  return msg;
}

std::string Scheduler::PreemptionMessage(size_t num_nodes, int unresolvable_nodes) {
  std::vector<std::string> pre;
  const int resolvable = static_cast<int>(num_nodes) - unresolvable_nodes;
  if (resolvable > 0) {
    pre.push_back(std::to_string(resolvable) + " No preemption victims found for incoming pod");
  }
  if (unresolvable_nodes > 0) {
    pre.push_back(std::to_string(unresolvable_nodes) + " Preemption is not helpful for scheduling");
  }
  std::sort(pre.begin(), pre.end());
  std::string msg = "preemption: 0/" + std::to_string(num_nodes) + " nodes are available:";
  for (size_t i = 0; i < pre.size(); ++i) msg += (i == 0 ? " " : ", ") + pre[i];
  msg += ".";
  return msg;
}

}  // namespace mk8s::scheduler
