#include "controllers/nodelifecycle/node_lifecycle_controller.h"

#include <spdlog/spdlog.h>

#include <ctime>
#include <utility>
#include <vector>
#include <nlohmann/json.hpp>

#include "client/json_path.h"

namespace mk8s::controllers {
namespace {

using nlohmann::json;
using TimePoint = std::chrono::system_clock::time_point;

constexpr const char* kUnreachable = "node.kubernetes.io/unreachable";
constexpr const char* kNotReady = "node.kubernetes.io/not-ready";
constexpr const char* kUnschedulable = "node.kubernetes.io/unschedulable";
// Node conditions that, when True, keep new pods away (upstream's TaintNodesByCondition).
constexpr std::pair<const char*, const char*> kConditionTaints[] = {
    {"MemoryPressure", "node.kubernetes.io/memory-pressure"},
    {"DiskPressure", "node.kubernetes.io/disk-pressure"},
    {"PIDPressure", "node.kubernetes.io/pid-pressure"},
    {"NetworkUnavailable", "node.kubernetes.io/network-unavailable"},
};

// Taint keys this controller owns: it adds and removes them; other taints are left alone.
bool IsManaged(const std::string& key) {
  if (key == kUnreachable || key == kNotReady || key == kUnschedulable) return true;
  for (const auto& [type, taint_key] : kConditionTaints) {
    if (key == taint_key) return true;
  }
  return false;
}

std::string Format(TimePoint time) {
  const std::time_t t = std::chrono::system_clock::to_time_t(time);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buffer;
}

bool Parse(const std::string& text, TimePoint* out) {
  std::tm tm{};
  if (text.empty() || strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) return false;
  *out = std::chrono::system_clock::from_time_t(timegm(&tm));
  return true;
}

bool Tolerates(const json& pod, const std::string& key, const std::string& effect,
               int64_t* toleration_seconds) {
  *toleration_seconds = -1;  // forever
  const json* tolerations = client::FindPath(pod, {"spec", "tolerations"});
  if (tolerations == nullptr || !tolerations->is_array()) return false;
  for (const json& toleration : *tolerations) {
    const std::string op = toleration.value("operator", "Equal");
    const std::string t_key = toleration.value("key", "");
    const std::string t_effect = toleration.value("effect", "");
    const bool key_matches = (t_key.empty() && op == "Exists") || t_key == key;
    const bool effect_matches = t_effect.empty() || t_effect == effect;
    if (!key_matches || !effect_matches) continue;
    if (toleration.contains("tolerationSeconds")) {
      *toleration_seconds = toleration.value("tolerationSeconds", int64_t{0});
    }
    return true;
  }
  return false;
}

}  // namespace

NodeLifecycleController::NodeLifecycleController(const ControllerContext& context)
    : Controller("node-lifecycle", context), events_(context.client, "node-controller") {}

NodeLifecycleController::~NodeLifecycleController() {
  {
    std::lock_guard lock(monitor_->mu);
    monitor_->stopping = true;
    clock()->Cancel(monitor_->timer);
  }
  Stop();
}

void NodeLifecycleController::Setup() {
  nodes_ = context_.informers->For(client::kNodes);
  // The cluster-wide Lease informer the garbage collector shares (as upstream's shared informer):
  // a namespaced one beside it would take every renewal a second time (another in-process
  // delivery, cache update and thread wakeup per Lease write).
  leases_ = context_.informers->For(client::kLeases);
  pods_ = context_.informers->For(client::kPods);
  nodes_->AddEventHandler(
      {[this](const client::ObjectPtr& n) { EnqueueObject(n); },
       [this](const client::ObjectPtr&, const client::ObjectPtr& n) { EnqueueObject(n); }, nullptr});
  ScheduleMonitor();
}

void NodeLifecycleController::ScheduleMonitor() {
  std::lock_guard lock(monitor_->mu);
  ArmMonitorLocked();
}

void NodeLifecycleController::ArmMonitorLocked() {
  if (monitor_->stopping) return;
  monitor_->timer = clock()->Schedule(
      clock()->Now() + std::max(context_.node_monitor_period, std::chrono::milliseconds(10)),
      [this, state = monitor_] {
        std::lock_guard lock(state->mu);
        if (state->stopping) return;  // `this` may be gone
        for (const client::ObjectPtr& node : nodes_->List()) EnqueueObject(node);
        ArmMonitorLocked();
      });
}

Status NodeLifecycleController::Reconcile(const std::string& name) {
  client::ObjectPtr node_ptr = nodes_->Get(name);
  if (!node_ptr) return Status::Ok();
  const json& node = *node_ptr;
  const TimePoint now = WallNow();

  // The last sign of life: the Lease's renewTime or the Ready condition's heartbeat. This runs
  // for every node every node_monitor_period, so the healthy path only reads (no copies, no
  // throwing lookups); the node's conditions and taints are copied only to change them.
  TimePoint last{};
  if (client::ObjectPtr lease = leases_->Get("kube-node-lease", name)) {
    Parse(client::StringAtPath(*lease, {"spec", "renewTime"}), &last);
  }
  const json* cached_conditions = client::FindPath(node, {"status", "conditions"});
  const json* cached_ready = nullptr;
  if (cached_conditions != nullptr && cached_conditions->is_array()) {
    for (const json& condition : *cached_conditions) {
      if (client::StringAtPath(condition, {"type"}) == "Ready") cached_ready = &condition;
    }
  }
  TimePoint heartbeat{};
  if (cached_ready && Parse(client::StringAtPath(*cached_ready, {"lastHeartbeatTime"}), &heartbeat)) {
    last = std::max(last, heartbeat);
  }
  TimePoint created{};
  Parse(client::StringAtPath(node, {"metadata", "creationTimestamp"}), &created);
  last = std::max(last, created);  // a new node gets a full grace period
  const bool silent = now - last > context_.node_monitor_grace_period;

  // The taints the node's state calls for (upstream's TaintNodesByCondition and taint-based
  // evictions): silent -> unreachable, Ready=False -> not-ready (both NoSchedule and NoExecute);
  // pressure and NetworkUnavailable conditions and spec.unschedulable -> NoSchedule.
  const std::string& ready_status =
      cached_ready != nullptr ? client::StringAtPath(*cached_ready, {"status"}) : std::string();
  std::vector<std::pair<std::string, std::string>> wanted;  // key, effect
  if (silent) {
    wanted.push_back({kUnreachable, "NoSchedule"});
    wanted.push_back({kUnreachable, "NoExecute"});
  } else if (ready_status == "False") {
    wanted.push_back({kNotReady, "NoSchedule"});
    wanted.push_back({kNotReady, "NoExecute"});
  }
  if (cached_conditions != nullptr && cached_conditions->is_array()) {
    for (const json& condition : *cached_conditions) {
      if (client::StringAtPath(condition, {"status"}) != "True") continue;
      const std::string& type = client::StringAtPath(condition, {"type"});
      for (const auto& [condition_type, key] : kConditionTaints) {
        if (type == condition_type) wanted.push_back({key, "NoSchedule"});
      }
    }
  }
  if (client::BoolAtPath(node, {"spec", "unschedulable"}, false)) {
    wanted.push_back({kUnschedulable, "NoSchedule"});
  }
  const json* cached_taints = client::FindPath(node, {"spec", "taints"});
  const bool has_taints = cached_taints != nullptr && cached_taints->is_array() && !cached_taints->empty();
  if (wanted.empty() && !has_taints) return Status::Ok();  // healthy, untainted: the common case

  if (silent && ready_status != "Unknown") {
    json conditions = cached_conditions != nullptr && cached_conditions->is_array()
                          ? *cached_conditions
                          : json::array();
    json* ready = nullptr;
    for (json& condition : conditions) {
      if (condition.value("type", "") == "Ready") ready = &condition;
    }
    json condition = {{"type", "Ready"}, {"status", "Unknown"}, {"reason", "NodeStatusUnknown"},
                      {"message", "Kubelet stopped posting node status."},
                      {"lastHeartbeatTime", ready ? ready->value("lastHeartbeatTime", Format(last)) : Format(last)},
                      {"lastTransitionTime", Format(now)}};
    if (ready) *ready = condition; else conditions.push_back(condition);
    json updated = node;
    updated["status"]["conditions"] = conditions;
    auto result = api().UpdateStatus(client::kNodes, updated);
    if (!result.ok()) return result.status();
    events_.Record(node, "Normal", "NodeNotReady", "Node " + name + " status is now: NodeNotReady");
    return Status::Ok();  // the update event brings us back for the taints
  }

  const json taints = has_taints ? *cached_taints : json::array();
  auto is_wanted = [&](const json& taint) {
    for (const auto& [key, effect] : wanted) {
      if (taint.value("key", "") == key && taint.value("effect", "") == effect) return true;
    }
    return false;
  };
  json kept = json::array();  // the taints of others, and ours that still apply (timeAdded kept)
  bool dropped_unreachable = false;
  for (const json& taint : taints) {
    if (!IsManaged(taint.value("key", "")) || is_wanted(taint)) {
      kept.push_back(taint);
    } else if (taint.value("key", "") == kUnreachable) {
      dropped_unreachable = true;
    }
  }
  json desired = kept;
  for (const auto& [key, effect] : wanted) {
    bool present = false;
    for (const json& taint : kept) {
      present = present || (taint.value("key", "") == key && taint.value("effect", "") == effect);
    }
    if (present) continue;
    json taint = {{"key", key}, {"effect", effect}};
    if (effect == "NoExecute") taint["timeAdded"] = Format(now);
    desired.push_back(taint);
  }
  if (desired != taints) {
    json patch = {{"spec", {{"taints", desired}}},
                  {"metadata", {{"resourceVersion", node["metadata"].value("resourceVersion", "")}}}};
    auto result = api().Patch(client::kNodes, "", name, client::PatchType::kMerge, patch);
    if (!result.ok()) return result.status();
    if (silent) spdlog::warn("node-lifecycle: node {} is unreachable; tainted", name);
    if (dropped_unreachable) {
      events_.Record(node, "Normal", "NodeReady", "Node " + name + " status is now: NodeReady");
    }
    return Status::Ok();  // the update event brings us back for evictions
  }
  for (const json& taint : taints) {
    if (taint.value("effect", "") != "NoExecute") continue;
    const std::string key = taint.value("key", "");
    if (key != kUnreachable && key != kNotReady) continue;
    if (Status evicted = EvictPods(node, key, taint.value("timeAdded", Format(now))); !evicted.ok()) {
      return evicted;
    }
  }
  return Status::Ok();
}

Status NodeLifecycleController::EvictPods(const json& node, const std::string& taint_key,
                                          const std::string& taint_time) {
  const std::string name = node["metadata"].value("name", "");
  TimePoint tainted{};
  Parse(taint_time, &tainted);
  const TimePoint now = WallNow();
  std::chrono::milliseconds next_check{0};
  for (const client::ObjectPtr& pod_ptr : pods_->List()) {
    const json& pod = *pod_ptr;
    if (client::StringAtPath(pod, {"spec", "nodeName"}) != name) continue;
    if (pod["metadata"].contains("deletionTimestamp")) continue;
    int64_t seconds = -1;
    if (Tolerates(pod, taint_key, "NoExecute", &seconds) && seconds < 0) continue;  // forever
    const auto deadline = tainted + std::chrono::seconds(std::max<int64_t>(seconds, 0));
    if (now < deadline) {
      const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
      if (next_check.count() == 0 || wait < next_check) next_check = wait;
      continue;
    }
    auto deleted = api().Delete(client::kPods, pod["metadata"].value("namespace", ""),
                                pod["metadata"].value("name", ""), {});
    if (!deleted.ok() && !client::IsNotFound(deleted.error())) return deleted.status();
    events_.Record(pod, "Normal", "TaintManagerEviction",
                   "Marking for deletion Pod " + pod["metadata"].value("namespace", "") + "/" +
                       pod["metadata"].value("name", ""));
  }
  if (next_check.count() > 0) EnqueueAfter(name, next_check + std::chrono::milliseconds(100));
  return Status::Ok();
}

}  // namespace mk8s::controllers
