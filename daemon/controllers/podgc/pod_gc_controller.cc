#include "controllers/podgc/pod_gc_controller.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "client/json_path.h"

#include "common/time_format.h"
#include "controllers/podgc/gc_order.h"

namespace mk8s::controllers {
namespace {

using nlohmann::json;

constexpr const char* kSweep = "sweep";
constexpr const char* kNodePrefix = "node/";
constexpr const char* kOutOfService = "node.kubernetes.io/out-of-service";

const std::string& NodeName(const json& pod) { return client::StringAtPath(pod, {"spec", "nodeName"}); }

bool Terminating(const json& pod) {
  return client::FindPath(pod, {"metadata", "deletionTimestamp"}) != nullptr;
}

bool Terminated(const json& pod) {
  const std::string& phase = client::StringAtPath(pod, {"status", "phase"});
  return phase == "Succeeded" || phase == "Failed";
}

// Nothing is left for a force delete to do: the pod ended and its deletion already has grace 0
// (a finalizer holds it; deleting again would change nothing).
bool AlreadyForced(const json& pod) {
  return Terminated(pod) && Terminating(pod) &&
         pod["metadata"].value("deletionGracePeriodSeconds", int64_t{0}) == 0;
}

bool NodeReady(const json& node) {
  const json* conditions = client::FindPath(node, {"status", "conditions"});
  if (conditions == nullptr || !conditions->is_array()) return false;
  for (const json& condition : *conditions) {
    if (client::StringAtPath(condition, {"type"}) == "Ready") {
      return client::StringAtPath(condition, {"status"}) == "True";
    }
  }
  return false;
}

bool OutOfService(const json& node) {
  const json* taints = client::FindPath(node, {"spec", "taints"});
  if (taints == nullptr || !taints->is_array()) return false;
  for (const json& taint : *taints) {
    if (client::StringAtPath(taint, {"key"}) == kOutOfService) return true;
  }
  return false;
}

void KeepFirstError(Status* first, Status status) {
  if (first->ok() && !status.ok()) *first = std::move(status);
}

}  // namespace

PodGcController::PodGcController(const ControllerContext& context)
    : Controller("pod-garbage-collector", context) {}

PodGcController::~PodGcController() {
  {
    std::lock_guard lock(timer_->mu);
    timer_->stopping = true;
    clock()->Cancel(timer_->timer);
  }
  Stop();
}

void PodGcController::Setup() {
  pods_ = context_.informers->For(client::kPods);
  nodes_ = context_.informers->For(client::kNodes);
  pods_->AddEventHandler(
      {[this](const client::ObjectPtr& pod) { OnPod(pod); },
       [this](const client::ObjectPtr&, const client::ObjectPtr& pod) { OnPod(pod); }, nullptr});
  nodes_->AddEventHandler(
      {[this](const client::ObjectPtr& node) { OnNode(node); },
       [this](const client::ObjectPtr&, const client::ObjectPtr& node) { OnNode(node); },
       [this](const client::ObjectPtr& node) {
         EnqueueAfter(kNodePrefix + (*node)["metadata"].value("name", ""),
                      context_.pod_gc_quarantine);
       }});
  Enqueue(kSweep);  // the first pass, once the workers run
  std::lock_guard lock(timer_->mu);
  ArmTimerLocked();
}

void PodGcController::ArmTimerLocked() {
  if (timer_->stopping) return;
  timer_->timer = clock()->Schedule(
      clock()->Now() + std::max(context_.pod_gc_period, std::chrono::milliseconds(10)),
      [this, state = timer_] {
        std::lock_guard lock(state->mu);
        if (state->stopping) return;  // `this` may be gone
        Enqueue(kSweep);
        ArmTimerLocked();
      });
}

void PodGcController::OnPod(const client::ObjectPtr& pod_ptr) {
  const json& pod = *pod_ptr;
  const std::string node_name = NodeName(pod);
  if (node_name.empty()) {
    if (Terminating(pod) && !AlreadyForced(pod)) Enqueue(kSweep);
    return;
  }
  client::ObjectPtr node = nodes_->Get(node_name);
  if (!node) {
    QuarantineIfMissing(node_name);
  } else if (Terminating(pod) && !AlreadyForced(pod) && OutOfService(*node)) {
    Enqueue(kSweep);
  }
}

void PodGcController::OnNode(const client::ObjectPtr& node) {
  if (OutOfService(*node) && !NodeReady(*node)) Enqueue(kSweep);
}

void PodGcController::QuarantineIfMissing(const std::string& node_name) {
  if (nodes_->Get(node_name)) return;
  EnqueueAfter(kNodePrefix + node_name, context_.pod_gc_quarantine);
}

Status PodGcController::Reconcile(const std::string& key) {
  if (key == kSweep) return Sweep();
  if (key.rfind(kNodePrefix, 0) == 0) return CheckNode(key.substr(std::string(kNodePrefix).size()));
  return Status::Ok();  // not ours
}

Status PodGcController::Sweep() {
  const std::vector<client::ObjectPtr> pods = pods_->List();
  Status first = Status::Ok();
  if (context_.terminated_pod_gc_threshold > 0) KeepFirstError(&first, CollectTerminated(pods));
  for (const client::ObjectPtr& pod_ptr : pods) {
    const json& pod = *pod_ptr;
    const std::string node_name = NodeName(pod);
    if (node_name.empty()) {
      if (Terminating(pod) && !AlreadyForced(pod)) {
        KeepFirstError(&first, ForceDelete(pod, nullptr, "unscheduled and terminating"));
      }
      continue;
    }
    client::ObjectPtr node = nodes_->Get(node_name);
    if (!node) {
      QuarantineIfMissing(node_name);
    } else if (Terminating(pod) && !AlreadyForced(pod) && !NodeReady(*node) &&
               OutOfService(*node)) {
      KeepFirstError(&first, ForceDelete(pod, nullptr, "terminating on an out-of-service node"));
    }
  }
  return first;
}

Status PodGcController::CollectTerminated(const std::vector<client::ObjectPtr>& pods) {
  std::vector<client::ObjectPtr> terminated;
  for (const client::ObjectPtr& pod : pods) {
    if (Terminated(*pod)) terminated.push_back(pod);
  }
  const int64_t excess =
      static_cast<int64_t>(terminated.size()) - context_.terminated_pod_gc_threshold;
  if (excess <= 0) return Status::Ok();
  spdlog::info("pod-gc: {} terminated pods, threshold {}: deleting {}", terminated.size(),
               context_.terminated_pod_gc_threshold, excess);
  podgc::SortForDeletion(&terminated);
  Status first = Status::Ok();
  for (int64_t i = 0; i < excess; ++i) {
    KeepFirstError(&first, ForceDelete(*terminated[i], nullptr, "terminated pods over threshold"));
  }
  return first;
}

Status PodGcController::CheckNode(const std::string& node_name) {
  if (nodes_->Get(node_name)) return Status::Ok();
  std::vector<client::ObjectPtr> orphans;
  for (const client::ObjectPtr& pod : pods_->List()) {
    if (NodeName(*pod) == node_name && !AlreadyForced(*pod)) orphans.push_back(pod);
  }
  if (orphans.empty()) return Status::Ok();
  // The cache may lag a node that was just created: only the API server's NotFound counts.
  auto node = api().Get(client::kNodes, "", node_name);
  if (node.ok()) return Status::Ok();
  if (!client::IsNotFound(node.error())) return node.status();
  const json condition = {{"type", "DisruptionTarget"},
                          {"status", "True"},
                          {"reason", "DeletionByPodGC"},
                          {"message", "PodGC: node no longer exists"},
                          {"lastTransitionTime", FormatRfc3339(WallNow())}};
  Status first = Status::Ok();
  for (const client::ObjectPtr& pod : orphans) {
    KeepFirstError(&first, ForceDelete(*pod, &condition, "orphaned: node no longer exists"));
  }
  return first;
}

Status PodGcController::ForceDelete(const json& pod, const json* condition, const char* why) {
  const json& meta = pod["metadata"];
  const std::string ns = meta.value("namespace", "");
  const std::string name = meta.value("name", "");
  if (!Terminated(pod)) {
    json status = {{"phase", "Failed"}};
    if (condition != nullptr) {
      json conditions = pod.value("/status/conditions"_json_pointer, json::array());
      bool replaced = false;
      for (json& existing : conditions) {
        if (existing.value("type", "") != (*condition)["type"]) continue;
        json updated = *condition;
        if (existing.value("status", "") == (*condition)["status"] &&
            existing.contains("lastTransitionTime")) {
          updated["lastTransitionTime"] = existing["lastTransitionTime"];
        }
        existing = std::move(updated);
        replaced = true;
      }
      if (!replaced) conditions.push_back(*condition);
      status["conditions"] = std::move(conditions);
    }
    // Guarded by the cached resourceVersion: a conflict retries on a fresher cache.
    const json patch = {{"metadata", {{"resourceVersion", meta.value("resourceVersion", "")}}},
                        {"status", std::move(status)}};
    auto patched = api().Patch(client::kPods, ns, name, client::PatchType::kMerge, patch, "status");
    if (!patched.ok()) {
      if (client::IsNotFound(patched.error())) return Status::Ok();
      return patched.status();
    }
  }
  client::DeleteOptions options;
  options.grace_period_seconds = 0;
  options.precondition_uid = meta.value("uid", "");
  auto deleted = api().Delete(client::kPods, ns, name, options);
  if (!deleted.ok()) {
    // NotFound: gone already. Conflict: the UID precondition failed, a newer pod has the name.
    if (client::IsNotFound(deleted.error()) || client::IsConflict(deleted.error())) {
      return Status::Ok();
    }
    return deleted.status();
  }
  spdlog::info("pod-gc: force-deleted pod {}/{} ({})", ns, name, why);
  return Status::Ok();
}

}  // namespace mk8s::controllers
