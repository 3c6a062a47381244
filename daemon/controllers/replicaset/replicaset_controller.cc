#include "controllers/replicaset/replicaset_controller.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <optional>
#include <nlohmann/json.hpp>

#include "client/json_path.h"
#include "controllers/common/controller_ref_manager.h"
#include "controllers/common/pod_util.h"

namespace mk8s::controllers {
namespace {

using nlohmann::json;

constexpr int kBurst = 500;  // most creates or deletes in one reconcile

}  // namespace

ReplicaSetController::ReplicaSetController(const ControllerContext& context)
    : Controller("replicaset", context),
      expectations_(clock()),
      events_(context.client, "replicaset-controller") {}

void ReplicaSetController::Setup() {
  replicasets_ = context_.informers->For(client::kReplicaSets);
  pods_ = context_.informers->For(client::kPods);
  RouteOwnerEvents(this, replicasets_, &expectations_);
  RouteOwnedEvents(this, pods_, replicasets_, "ReplicaSet", &expectations_);
}

Status ReplicaSetController::Reconcile(const std::string& key) {
  client::ObjectPtr rs_ptr = replicasets_->Get(key);
  if (!rs_ptr) {
    expectations_.Forget(key);
    return Status::Ok();
  }
  const json& rs = *rs_ptr;
  const std::string ns = rs["metadata"].value("namespace", "");
  const json selector = rs["spec"].value("selector", json());
  const bool deleting = rs["metadata"].contains("deletionTimestamp");

  // Claim (upstream's ControllerRefManager): our pods that still match, orphans that match
  // (adopted), ours that no longer match (released).
  ControllerRefManager claims(api(), client::kReplicaSets, rs, selector);
  ControllerRefManager::Claimed claimed = claims.Claim(client::kPods, pods_->ListByNamespace(ns));
  if (!claimed.status.ok()) return claimed.status;
  const std::vector<client::ObjectPtr>& owned = claimed.objects;
  std::vector<client::ObjectPtr> active;
  for (const client::ObjectPtr& pod : owned) {
    if (IsPodActive(*pod)) active.push_back(pod);
  }
  if (!deleting && expectations_.Satisfied(key)) {
    if (Status status = ManageReplicas(rs, active); !status.ok()) return status;
  }
  return UpdateStatus(rs, owned);
}

Status ReplicaSetController::ManageReplicas(const json& rs, std::vector<client::ObjectPtr> active) {
  const std::string key = client::ObjectKey(rs);
  const std::string ns = rs["metadata"].value("namespace", "");
  // Never below 0, whatever is stored (the API server refuses negative counts).
  const int64_t want = std::max<int64_t>(0, client::IntAtPath(rs, {"spec", "replicas"}, 1));
  const int64_t diff = static_cast<int64_t>(active.size()) - want;
  if (diff < 0) {
    const int creates = static_cast<int>(std::min<int64_t>(-diff, kBurst));
    expectations_.Expect(key, creates, 0);
    json pod = PodFromTemplate(rs, rs["metadata"].value("name", "") + "-");
    int failed = 0;
    for (int i = 0; i < creates; ++i) {
      auto created = api().Create(client::kPods, ns, pod);
      if (!created.ok()) {
        expectations_.CreationObserved(key);  // will not be observed
        if (++failed == 1) {
          events_.Record(rs, "Warning", "FailedCreate",
                         "Error creating: " + created.error().message);
        }
        continue;
      }
      events_.Record(rs, "Normal", "SuccessfulCreate",
                     "Created pod: " + (*created)["metadata"].value("name", ""));
    }
    if (failed > 0) {
      return Status(Code::kUnavailable, std::to_string(failed) + " pod creates failed");
    }
  } else if (diff > 0) {
    const int deletes = static_cast<int>(std::min<int64_t>(diff, kBurst));
    // Delete the least useful first: unscheduled, then pending, then not ready (PodDeletionCost;
    // ties in no particular order).
    std::sort(active.begin(), active.end(), [](const client::ObjectPtr& a, const client::ObjectPtr& b) {
      return PodDeletionCost(*a) > PodDeletionCost(*b);
    });
    expectations_.Expect(key, 0, deletes);
    for (int i = 0; i < deletes; ++i) {
      const std::string name = (*active[i])["metadata"].value("name", "");
      auto deleted = api().Delete(client::kPods, ns, name, {});
      if (!deleted.ok()) {
        if (!client::IsNotFound(deleted.error())) {
          // This delete and the ones not sent will never be observed.
          expectations_.LowerExpectations(key, 0, deletes - i);
          return deleted.status();
        }
        expectations_.DeletionObserved(key);
        continue;
      }
      events_.Record(rs, "Normal", "SuccessfulDelete", "Deleted pod: " + name);
    }
  }
  return Status::Ok();
}

Status ReplicaSetController::UpdateStatus(const json& rs, const std::vector<client::ObjectPtr>& pods) {
  int64_t replicas = 0, labeled = 0, ready = 0, available = 0;
  const json template_labels = rs.value("/spec/template/metadata/labels"_json_pointer, json::object());
  const int64_t min_ready = rs["spec"].value("minReadySeconds", 0);
  const auto now = WallNow();
  std::optional<std::chrono::system_clock::time_point> next_available;
  for (const client::ObjectPtr& pod : pods) {
    if (!IsPodActive(*pod)) continue;
    ++replicas;
    bool all_labels = true;
    for (const auto& [k, v] : template_labels.items()) {
      if ((*pod).value("/metadata/labels"_json_pointer, json::object()).value(k, json()) != v) all_labels = false;
    }
    if (all_labels) ++labeled;
    if (IsPodReady(*pod)) {
      ++ready;
      if (IsPodAvailable(*pod, min_ready, now)) {
        ++available;
      } else if (std::chrono::system_clock::time_point since; PodReadySince(*pod, &since)) {
        const auto due = since + std::chrono::seconds(min_ready);
        if (!next_available || due < *next_available) next_available = due;
      }
    }
  }
  // A ready pod turns available minReadySeconds after it became ready, with no event to say so:
  // look again then (on the controller's clock; timestamps have whole seconds, hence + 1 s).
  if (next_available) {
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(*next_available - now);
    EnqueueAfter(client::ObjectKey(rs),
                 std::max(wait, std::chrono::milliseconds(0)) + std::chrono::seconds(1));
  }
  json status = rs.value("status", json::object());
  json wanted = status;
  wanted["replicas"] = replicas;
  wanted["fullyLabeledReplicas"] = labeled;
  wanted["readyReplicas"] = ready;
  wanted["availableReplicas"] = available;
  wanted["observedGeneration"] = rs["metadata"].value("generation", 0);
  if (wanted == status) return Status::Ok();
  json updated = rs;
  updated["status"] = wanted;
  auto result = api().UpdateStatus(client::kReplicaSets, updated);
  if (!result.ok() && !client::IsNotFound(result.error())) return result.status();
  return Status::Ok();
}

}  // namespace mk8s::controllers
