#include "controllers/daemonset/daemonset_controller.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

#include "controllers/common/controller_ref_manager.h"
#include "controllers/common/pod_util.h"
#include "controllers/daemonset/history.h"
#include "controllers/daemonset/node_eligibility.h"
#include "controllers/deployment/deployment_controller.h"

namespace mk8s::controllers {
namespace {

using nlohmann::json;
using std::chrono::duration_cast;
using std::chrono::milliseconds;

constexpr const char* kHashLabel = "controller-revision-hash";
constexpr const char* kGenerationLabel = "pod-template-generation";
constexpr milliseconds kFailedBackoffBase{1000};
constexpr milliseconds kFailedBackoffMax{15 * 60 * 1000};

bool Terminating(const client::ObjectPtr& pod) { return (*pod)["metadata"].contains("deletionTimestamp"); }
std::string Label(const client::ObjectPtr& pod, const char* key) {
  return (*pod).value("/metadata/labels"_json_pointer, json::object()).value(key, "");
}
std::string Name(const client::ObjectPtr& pod) { return (*pod)["metadata"].value("name", ""); }

// Same template: the hash label matches (or, for pods from before hashes, the generation).
bool IsUpdated(const client::ObjectPtr& pod, const std::string& hash, const json& ds) {
  if (Label(pod, kHashLabel) == hash) return true;
  return Label(pod, kGenerationLabel) == std::to_string(ds["metadata"].value("generation", int64_t{0}));
}

void SortByAge(std::vector<client::ObjectPtr>* pods) {
  std::stable_sort(pods->begin(), pods->end(), [](const client::ObjectPtr& a, const client::ObjectPtr& b) {
    return std::make_pair((*a)["metadata"].value("creationTimestamp", ""), Name(a)) <
           std::make_pair((*b)["metadata"].value("creationTimestamp", ""), Name(b));
  });
}

bool IsRollingUpdate(const json& ds) {
  return ds.value("/spec/updateStrategy/type"_json_pointer, std::string("RollingUpdate")) == "RollingUpdate";
}

json RollingParam(const json& ds, const char* field, json fallback) {
  const json rolling = ds.value("/spec/updateStrategy/rollingUpdate"_json_pointer, json::object());
  const json value = rolling.is_object() ? rolling.value(field, json()) : json();
  return value.is_null() ? fallback : value;
}

bool SurgeEnabled(const json& ds) {
  if (!IsRollingUpdate(ds)) return false;
  const json surge = RollingParam(ds, "maxSurge", 0);
  return ResolveIntOrPercent(surge, 100, true) > 0;
}

}  // namespace

DaemonSetController::DaemonSetController(const ControllerContext& context)
    : Controller("daemonset", context),
      expectations_(clock()),
      events_(context.client, "daemonset-controller") {}

void DaemonSetController::Setup() {
  daemonsets_ = context_.informers->For(client::kDaemonSets);
  pods_ = context_.informers->For(client::kPods);
  nodes_ = context_.informers->For(client::kNodes);
  revisions_ = context_.informers->For(client::kControllerRevisions);
  RouteOwnerEvents(this, daemonsets_, &expectations_);
  // A deleted DaemonSet's or node's failed-pod backoff goes with it (a DaemonSet made again
  // under the same name starts afresh).
  daemonsets_->AddEventHandler({nullptr, nullptr, [this](const client::ObjectPtr& ds) {
                                  ForgetBackoff(client::ObjectKey(*ds) + "/", "");
                                }});
  RouteOwnedEvents(this, pods_, daemonsets_, "DaemonSet", &expectations_);
  // Only what changes eligibility matters: labels, taints, unschedulable (not heartbeats).
  nodes_->AddEventHandler(
      {[this](const client::ObjectPtr&) { EnqueueAll(); },
       [this](const client::ObjectPtr& old_node, const client::ObjectPtr& node) {
         if ((*old_node).value("/metadata/labels"_json_pointer, json()) !=
                 (*node).value("/metadata/labels"_json_pointer, json()) ||
             (*old_node).value("spec", json()) != (*node).value("spec", json())) {
           EnqueueAll();
         }
       },
       [this](const client::ObjectPtr& node) {
         ForgetBackoff("", "/" + (*node)["metadata"].value("name", ""));
         EnqueueAll();
       }});
}

void DaemonSetController::ForgetBackoff(const std::string& ds_prefix,
                                        const std::string& node_suffix) {
  std::lock_guard lock(mu_);
  for (auto it = failed_backoff_.lower_bound(ds_prefix); it != failed_backoff_.end();) {
    const std::string& entry = it->first;
    if (entry.compare(0, ds_prefix.size(), ds_prefix) != 0) break;  // past the prefix's range
    const bool match = entry.size() >= node_suffix.size() &&
                       entry.compare(entry.size() - node_suffix.size(), node_suffix.size(),
                                     node_suffix) == 0;
    it = match ? failed_backoff_.erase(it) : std::next(it);
  }
}

void DaemonSetController::EnqueueAll() {
  for (const client::ObjectPtr& ds : daemonsets_->List()) EnqueueObject(ds);
}

Status DaemonSetController::Reconcile(const std::string& key) {
  client::ObjectPtr ds_ptr = daemonsets_->Get(key);
  if (!ds_ptr) {
    expectations_.Forget(key);
    return Status::Ok();
  }
  const json& ds = *ds_ptr;
  if (ds["metadata"].contains("deletionTimestamp")) return Status::Ok();
  const std::string ns = ds["metadata"].value("namespace", "");
  const json selector = ds["spec"].value("selector", json());

  // Claim (common/controller_ref_manager.h): ours that match, orphans that match (adopted), ours
  // that stopped matching (released).
  ControllerRefManager claims(api(), client::kDaemonSets, ds, selector);
  ControllerRefManager::Claimed claimed = claims.Claim(client::kPods, pods_->ListByNamespace(ns));
  if (!claimed.status.ok()) return claimed.status;
  NodePods by_node;
  std::set<std::string> live_hashes;
  for (const client::ObjectPtr& pod : claimed.objects) {
    by_node[TargetNodeName(*pod)].push_back(pod);
    live_hashes.insert(Label(pod, kHashLabel));
  }
  Result<CurrentRevision> revision = SyncDaemonSetHistory(api(), *revisions_, ds, live_hashes);
  if (!revision.ok()) return revision.status();
  if (revision->collision_raised) return Status::Ok();  // the status write queues us again
  const std::string& hash = revision->hash;

  milliseconds wake_after{0};
  if (expectations_.Satisfied(key)) {
    Plan plan = Manage(ds, hash, by_node, &wake_after);
    if (plan.create_on.empty() && plan.delete_pods.empty() && IsRollingUpdate(ds)) {
      plan = RollingUpdate(ds, hash, by_node);
    }
    if (Status executed = Execute(ds, hash, plan); !executed.ok()) return executed;
  }
  if (Status updated = UpdateStatus(ds, hash, by_node); !updated.ok()) return updated;
  if (wake_after.count() > 0) EnqueueAfter(key, wake_after);
  return Status::Ok();
}

DaemonSetController::Plan DaemonSetController::Manage(const json& ds, const std::string& hash,
                                                      const NodePods& by_node, milliseconds* wake_after) {
  Plan plan;
  const std::string key = client::ObjectKey(ds);
  const json pod_spec = WithDaemonTolerations(ds.value("/spec/template/spec"_json_pointer, json::object()));
  const bool surge = SurgeEnabled(ds);
  const int64_t min_ready = ds["spec"].value("minReadySeconds", int64_t{0});
  const auto wall_now = WallNow();
  std::set<std::string> node_names;
  for (const client::ObjectPtr& node_ptr : nodes_->List()) {
    const std::string node = (*node_ptr)["metadata"].value("name", "");
    node_names.insert(node);
    const NodeVerdict verdict = EvaluateNode(*node_ptr, pod_spec);
    auto found = by_node.find(node);
    std::vector<client::ObjectPtr> running;
    if (found != by_node.end()) {
      for (const client::ObjectPtr& pod : found->second) {
        if (Terminating(pod)) continue;
        if ((*pod).value("/status/phase"_json_pointer, std::string()) != "Failed") {
          running.push_back(pod);
          continue;
        }
        // A failed daemon pod is deleted (and so replaced), at a backoff per node.
        const auto now = clock()->Now();
        std::lock_guard lock(mu_);
        Backoff& backoff = failed_backoff_[key + "/" + node];
        if (backoff.delay.count() > 0 && now < backoff.until) {
          const auto remaining = duration_cast<milliseconds>(backoff.until - now);
          if (wake_after->count() == 0 || remaining < *wake_after) *wake_after = remaining;
          continue;
        }
        backoff.delay = backoff.delay.count() == 0 ? kFailedBackoffBase : std::min(backoff.delay * 2, kFailedBackoffMax);
        backoff.until = now + backoff.delay;
        events_.Record(ds, "Warning", "FailedDaemonPod",
                       "Found failed daemon pod " + (*pod)["metadata"].value("namespace", "") + "/" +
                           Name(pod) + " on node " + node + ", will try to kill it");
        plan.delete_pods.push_back(pod);
      }
    }
    if (verdict.should_run && running.empty()) {
      plan.create_on.push_back(node);
    } else if (!verdict.should_continue_running) {
      plan.delete_pods.insert(plan.delete_pods.end(), running.begin(), running.end());
    } else if (surge) {
      // Surge allows one old and one new pod per node; the old goes once the new is available.
      SortByAge(&running);
      client::ObjectPtr oldest_new, oldest_old;
      for (const client::ObjectPtr& pod : running) {
        client::ObjectPtr& slot = IsUpdated(pod, hash, ds) ? oldest_new : oldest_old;
        if (slot == nullptr) slot = pod;
        else plan.delete_pods.push_back(pod);
      }
      if (oldest_new != nullptr && oldest_old != nullptr &&
          (!IsPodReady(*oldest_old) || IsPodAvailable(*oldest_new, min_ready, wall_now))) {
        plan.delete_pods.push_back(oldest_old);
      }
    } else if (running.size() > 1) {
      SortByAge(&running);
      plan.delete_pods.insert(plan.delete_pods.end(), running.begin() + 1, running.end());
    }
  }
  // Pods pinned to nodes that no longer exist (or to none).
  for (const auto& [node, pods] : by_node) {
    if (node_names.count(node)) continue;
    for (const client::ObjectPtr& pod : pods) {
      if (!Terminating(pod)) plan.delete_pods.push_back(pod);
    }
  }
  return plan;
}

DaemonSetController::Plan DaemonSetController::RollingUpdate(const json& ds, const std::string& hash,
                                                             const NodePods& by_node) {
  Plan plan;
  const json pod_spec = WithDaemonTolerations(ds.value("/spec/template/spec"_json_pointer, json::object()));
  const int64_t min_ready = ds["spec"].value("minReadySeconds", int64_t{0});
  const auto now = WallNow();
  std::vector<std::pair<std::string, std::vector<client::ObjectPtr>>> eligible;
  for (const client::ObjectPtr& node_ptr : nodes_->List()) {
    const std::string node = (*node_ptr)["metadata"].value("name", "");
    if (!EvaluateNode(*node_ptr, pod_spec).should_run) continue;
    std::vector<client::ObjectPtr> live;
    if (auto found = by_node.find(node); found != by_node.end()) {
      for (const client::ObjectPtr& pod : found->second) {
        if (!Terminating(pod)) live.push_back(pod);
      }
    }
    eligible.emplace_back(node, std::move(live));
  }
  const auto desired = static_cast<int64_t>(eligible.size());
  int64_t max_surge = SurgeEnabled(ds) ? ResolveIntOrPercent(RollingParam(ds, "maxSurge", 0), desired, true) : 0;
  int64_t max_unavailable = ResolveIntOrPercent(RollingParam(ds, "maxUnavailable", 1), desired, true);
  if (max_surge == 0 && max_unavailable == 0) max_unavailable = 1;

  int64_t unavailable = 0, surging = 0;
  std::vector<client::ObjectPtr> replace_now, candidates;
  std::vector<std::string> surge_now, surge_candidates;
  for (const auto& [node, pods] : eligible) {
    client::ObjectPtr new_pod, old_pod;
    bool duplicates = false;
    for (const client::ObjectPtr& pod : pods) {
      client::ObjectPtr& slot = IsUpdated(pod, hash, ds) ? new_pod : old_pod;
      duplicates = duplicates || slot != nullptr;
      slot = pod;
    }
    if (max_surge == 0) {
      if (duplicates || (new_pod == nullptr) == (old_pod == nullptr)) {
        ++unavailable;  // missing, or old and new side by side: the manage pass settles it
      } else if (new_pod != nullptr) {
        if (!IsPodAvailable(*new_pod, min_ready, now)) ++unavailable;
      } else if (!IsPodAvailable(*old_pod, min_ready, now)) {
        replace_now.push_back(old_pod);  // not serving anyway
      } else if (unavailable < max_unavailable) {
        candidates.push_back(old_pod);
      }
    } else {
      if (duplicates) {
        ++surging;
      } else if (old_pod == nullptr) {
        // nothing to update here
      } else if (new_pod == nullptr) {
        if (!IsPodAvailable(*old_pod, min_ready, now)) surge_now.push_back(node);
        else if (surging < max_surge) surge_candidates.push_back(node);
      } else if (!IsPodAvailable(*new_pod, min_ready, now)) {
        ++surging;  // waiting for the new pod
      } else {
        plan.delete_pods.push_back(old_pod);
      }
    }
  }
  if (max_surge == 0) {
    const auto room = static_cast<size_t>(std::clamp<int64_t>(max_unavailable - unavailable, 0, candidates.size()));
    plan.delete_pods = replace_now;
    plan.delete_pods.insert(plan.delete_pods.end(), candidates.begin(), candidates.begin() + static_cast<long>(room));
  } else {
    const auto room = static_cast<size_t>(std::clamp<int64_t>(max_surge - surging, 0, surge_candidates.size()));
    plan.create_on = surge_now;
    plan.create_on.insert(plan.create_on.end(), surge_candidates.begin(), surge_candidates.begin() + static_cast<long>(room));
  }
  return plan;
}

Status DaemonSetController::Execute(const json& ds, const std::string& hash, const Plan& plan) {
  if (plan.create_on.empty() && plan.delete_pods.empty()) return Status::Ok();
  const std::string key = client::ObjectKey(ds);
  const std::string ns = ds["metadata"].value("namespace", "");
  expectations_.Expect(key, static_cast<int>(plan.create_on.size()), static_cast<int>(plan.delete_pods.size()));
  json pod = PodFromTemplate(ds, ds["metadata"].value("name", "") + "-");
  pod["metadata"]["labels"][kHashLabel] = hash;
  pod["metadata"]["labels"][kGenerationLabel] = std::to_string(ds["metadata"].value("generation", int64_t{0}));
  const json pod_spec = WithDaemonTolerations(pod["spec"]);
  Status result = Status::Ok();
  for (const std::string& node : plan.create_on) {
    pod["spec"] = PinToNode(pod_spec, node);
    auto created = api().Create(client::kPods, ns, pod);
    if (!created.ok()) {
      expectations_.CreationObserved(key);
      events_.Record(ds, "Warning", "FailedCreate", "Error creating: " + created.error().message);
      result = created.status();
      continue;
    }
    events_.Record(ds, "Normal", "SuccessfulCreate", "Created pod: " + (*created)["metadata"].value("name", ""));
  }
  for (const client::ObjectPtr& victim : plan.delete_pods) {
    auto deleted = api().Delete(client::kPods, ns, Name(victim), {});
    if (!deleted.ok()) {
      expectations_.DeletionObserved(key);
      if (!client::IsNotFound(deleted.error())) result = deleted.status();
      continue;
    }
    events_.Record(ds, "Normal", "SuccessfulDelete", "Deleted pod: " + Name(victim));
  }
  return result;
}

Status DaemonSetController::UpdateStatus(const json& ds, const std::string& hash, const NodePods& by_node) {
  const json pod_spec = WithDaemonTolerations(ds.value("/spec/template/spec"_json_pointer, json::object()));
  const int64_t min_ready = ds["spec"].value("minReadySeconds", int64_t{0});
  const auto now = WallNow();
  int64_t desired = 0, current = 0, misscheduled = 0, ready = 0, available = 0, updated = 0;
  for (const client::ObjectPtr& node_ptr : nodes_->List()) {
    const std::string node = (*node_ptr)["metadata"].value("name", "");
    std::vector<client::ObjectPtr> pods;
    if (auto found = by_node.find(node); found != by_node.end()) {
      for (const client::ObjectPtr& pod : found->second) {
        if (!Terminating(pod)) pods.push_back(pod);
      }
    }
    if (!EvaluateNode(*node_ptr, pod_spec).should_run) {
      if (!pods.empty()) ++misscheduled;
      continue;
    }
    ++desired;
    if (pods.empty()) continue;
    ++current;
    SortByAge(&pods);
    if (IsPodReady(*pods[0])) {
      ++ready;
      if (IsPodAvailable(*pods[0], min_ready, now)) ++available;
    }
    if (IsUpdated(pods[0], hash, ds)) ++updated;
  }
  const json status = ds.value("status", json::object());
  json wanted = status;
  wanted["desiredNumberScheduled"] = desired;
  wanted["currentNumberScheduled"] = current;
  wanted["numberMisscheduled"] = misscheduled;
  wanted["numberReady"] = ready;
  wanted["numberAvailable"] = available;
  wanted["numberUnavailable"] = desired - available;
  wanted["updatedNumberScheduled"] = updated;
  wanted["observedGeneration"] = ds["metadata"].value("generation", int64_t{0});
  if (min_ready > 0 && available < ready) {
    EnqueueAfter(client::ObjectKey(ds), std::chrono::seconds(min_ready));  // to count them available
  }
  if (wanted == status) return Status::Ok();
  json written = ds;
  written["status"] = wanted;
  auto result = api().UpdateStatus(client::kDaemonSets, written);
  if (!result.ok() && !client::IsNotFound(result.error())) return result.status();
  return Status::Ok();
}

}  // namespace mk8s::controllers
