#include "controllers/disruption/disruption_controller.h"

#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "common/time_format.h"
#include "controllers/common/pod_util.h"
#include "controllers/deployment/deployment_controller.h"

namespace mk8s::controllers {
namespace {

using nlohmann::json;
using std::chrono::system_clock;

// How long an eviction recorded in status.disruptedPods counts against the budget while the pod
// is still there (upstream's DeletionTimeout).
constexpr auto kDeletionTimeout = std::chrono::minutes(2);

// policy/v1 semantics: a null selector selects nothing, an empty one every pod of the namespace.
bool BudgetSelects(const json& budget, const json& pod) {
  const json* selector = budget.contains("/spec/selector"_json_pointer)
                             ? &budget.at("/spec/selector"_json_pointer)
                             : nullptr;
  if (selector == nullptr || selector->is_null()) return false;
  const bool empty = (!selector->contains("matchLabels") || (*selector)["matchLabels"].empty()) &&
                     (!selector->contains("matchExpressions") ||
                      (*selector)["matchExpressions"].empty());
  return empty || SelectorMatches(*selector, pod);
}

bool Terminating(const json& pod) {
  return pod.contains("/metadata/deletionTimestamp"_json_pointer) &&
         !pod.at("/metadata/deletionTimestamp"_json_pointer).is_null();
}

}  // namespace

DisruptionController::DisruptionController(const ControllerContext& context)
    : Controller("disruption", context), events_(context.client, "controllermanager") {}

void DisruptionController::Setup() {
  budgets_ = context_.informers->For(client::kPodDisruptionBudgets);
  pods_ = context_.informers->For(client::kPods);
  replicasets_ = context_.informers->For(client::kReplicaSets);
  deployments_ = context_.informers->For(client::kDeployments);
  statefulsets_ = context_.informers->For(client::kStatefulSets);
  budgets_->AddEventHandler(
      {[this](const client::ObjectPtr& b) { EnqueueObject(b); },
       [this](const client::ObjectPtr&, const client::ObjectPtr& b) { EnqueueObject(b); },
       nullptr});
  pods_->AddEventHandler(
      {[this](const client::ObjectPtr& pod) { EnqueueBudgetsOf(pod); },
       [this](const client::ObjectPtr& before, const client::ObjectPtr& after) {
         EnqueueBudgetsOf(before);  // labels may have changed: both sides
         EnqueueBudgetsOf(after);
       },
       [this](const client::ObjectPtr& pod) { EnqueueBudgetsOf(pod); }});
}

void DisruptionController::EnqueueBudgetsOf(const client::ObjectPtr& pod) {
  const std::string ns = (*pod)["metadata"].value("namespace", "");
  for (const client::ObjectPtr& budget : budgets_->ListByNamespace(ns)) {
    if (BudgetSelects(*budget, *pod)) EnqueueObject(budget);
  }
}

bool DisruptionController::ControllerScale(const json& pod, std::string* uid,
                                           int64_t* scale) const {
  const json* owner = ControllerRef(pod);
  if (owner == nullptr) return false;
  const std::string ns = pod["metadata"].value("namespace", "");
  const std::string kind = owner->value("kind", "");
  const std::string name = owner->value("name", "");
  auto matches = [&](const client::ObjectPtr& object) {
    return object && (*object)["metadata"].value("uid", "") == owner->value("uid", "");
  };
  if (kind == "ReplicaSet") {
    client::ObjectPtr rs = replicasets_->Get(ns, name);
    if (!matches(rs)) return false;
    // A Deployment's ReplicaSets count as the Deployment (its scale, once).
    if (const json* parent = ControllerRef(*rs); parent != nullptr && parent->value("kind", "") == "Deployment") {
      client::ObjectPtr d = deployments_->Get(ns, parent->value("name", ""));
      if (d && (*d)["metadata"].value("uid", "") == parent->value("uid", "")) {
        *uid = parent->value("uid", "");
        *scale = (*d).value("/spec/replicas"_json_pointer, int64_t{1});
        return true;
      }
    }
    *uid = owner->value("uid", "");
    *scale = (*rs).value("/spec/replicas"_json_pointer, int64_t{1});
    return true;
  }
  if (kind == "StatefulSet") {
    client::ObjectPtr sts = statefulsets_->Get(ns, name);
    if (!matches(sts)) return false;
    *uid = owner->value("uid", "");
    *scale = (*sts).value("/spec/replicas"_json_pointer, int64_t{1});
    return true;
  }
  return false;
}

Status DisruptionController::Reconcile(const std::string& key) {
  client::ObjectPtr budget_ptr = budgets_->Get(key);
  if (!budget_ptr || Terminating(*budget_ptr)) return Status::Ok();
  const json& budget = *budget_ptr;
  const std::string ns = budget["metadata"].value("namespace", "");
  const json spec = budget.value("spec", json::object());
  const json min_available = spec.value("minAvailable", json());
  const json max_unavailable = spec.value("maxUnavailable", json());
  const system_clock::time_point now = WallNow();

  std::vector<client::ObjectPtr> pods;
  for (const client::ObjectPtr& pod : pods_->ListByNamespace(ns)) {
    if (BudgetSelects(budget, *pod)) pods.push_back(pod);
  }

  // Evictions recorded by the API server that still count: the pod is there, not being deleted
  // yet, and the eviction is recent. The earliest expiry wakes this budget again.
  json disrupted = json::object();
  std::optional<system_clock::time_point> next_expiry;
  const json recorded = budget.value("/status/disruptedPods"_json_pointer, json::object());
  std::set<std::string> present;
  for (const client::ObjectPtr& pod : pods) {
    if (!Terminating(*pod)) present.insert((*pod)["metadata"].value("name", ""));
  }
  for (const auto& [name, when] : recorded.items()) {
    const auto at = when.is_string() ? ParseRfc3339(when.get<std::string>()) : std::nullopt;
    if (!at || !present.count(name) || *at + kDeletionTimeout <= now) continue;
    disrupted[name] = when;
    if (!next_expiry || *at + kDeletionTimeout < *next_expiry) next_expiry = *at + kDeletionTimeout;
  }

  int64_t healthy = 0;
  for (const client::ObjectPtr& pod : pods) {
    const std::string name = (*pod)["metadata"].value("name", "");
    if (!Terminating(*pod) && IsPodReady(*pod) && !disrupted.contains(name)) ++healthy;
  }

  int64_t expected = 0;
  int64_t desired = 0;
  bool controllers_known = true;
  const bool by_scale = !max_unavailable.is_null() || min_available.is_string();
  if (by_scale) {
    std::map<std::string, int64_t> scales;  // controller uid -> replicas
    for (const client::ObjectPtr& pod : pods) {
      std::string uid;
      int64_t scale = 0;
      if (!ControllerScale(*pod, &uid, &scale)) {
        controllers_known = false;
        break;
      }
      scales[uid] = scale;
    }
    for (const auto& [uid, scale] : scales) expected += scale;
    if (!max_unavailable.is_null()) {
      desired = std::max<int64_t>(0, expected - ResolveIntOrPercent(max_unavailable, expected, true));
    } else {
      desired = ResolveIntOrPercent(min_available, expected, true);
    }
  } else {
    expected = static_cast<int64_t>(pods.size());
    desired = min_available.is_null() ? 0 : ResolveIntOrPercent(min_available, expected, true);
  }
  int64_t allowed = healthy - desired;
  if (!controllers_known || expected <= 0 || allowed < 0) allowed = 0;
  if (!controllers_known) {
    events_.Record(budget, "Warning", "NoControllers",
                   "found no controllers for a pod the budget covers: a percentage or "
                   "maxUnavailable needs each pod's controller scale (Deployment, ReplicaSet or "
                   "StatefulSet)");
    expected = 0;
  }

  json status = budget.value("status", json::object());
  const bool sufficient = allowed > 0;
  json condition = {{"type", "DisruptionAllowed"},
                    {"status", sufficient ? "True" : "False"},
                    {"reason", sufficient ? "SufficientPods" : "InsufficientPods"},
                    {"message", ""},
                    {"observedGeneration", budget["metadata"].value("generation", int64_t{1})},
                    {"lastTransitionTime", FormatRfc3339(now)}};
  for (const json& old : status.value("conditions", json::array())) {
    if (old.value("type", "") == "DisruptionAllowed" && old.value("status", "") == condition["status"]) {
      condition["lastTransitionTime"] = old.value("lastTransitionTime", condition["lastTransitionTime"]);
    }
  }
  json wanted = {{"observedGeneration", budget["metadata"].value("generation", int64_t{1})},
                 {"disruptionsAllowed", allowed},
                 {"currentHealthy", healthy},
                 {"desiredHealthy", desired},
                 {"expectedPods", expected},
                 {"conditions", json::array({condition})}};
  if (!disrupted.empty()) wanted["disruptedPods"] = disrupted;
  if (next_expiry) {
    EnqueueAfter(key, std::chrono::duration_cast<std::chrono::milliseconds>(*next_expiry - now) +
                          std::chrono::milliseconds(100));
  }
  if (status == wanted) return Status::Ok();
  json updated = budget;
  updated["status"] = wanted;
  auto written = api().UpdateStatus(client::kPodDisruptionBudgets, updated);
  if (!written.ok() && !client::IsNotFound(written.error())) return written.status();
  return Status::Ok();  // a conflict (an eviction wrote meanwhile) comes back as an update event
}

}  // namespace mk8s::controllers
