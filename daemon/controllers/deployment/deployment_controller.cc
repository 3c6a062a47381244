#include "controllers/deployment/deployment_controller.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <optional>
#include <nlohmann/json.hpp>

#include "controllers/common/controller_ref_manager.h"
#include "controllers/common/pod_util.h"
#include "controllers/common/template_hash.h"

namespace mk8s::controllers {
namespace {

using nlohmann::json;

constexpr const char* kHashLabel = "pod-template-hash";
constexpr const char* kRevision = "deployment.kubernetes.io/revision";

std::string FormatTime(std::chrono::system_clock::time_point time) {
  const std::time_t t = std::chrono::system_clock::to_time_t(time);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buffer;
}

bool ParseTime(const std::string& text, std::chrono::system_clock::time_point* out) {
  std::tm tm{};
  if (text.empty() || strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) return false;
  *out = std::chrono::system_clock::from_time_t(timegm(&tm));
  return true;
}

int64_t Revision(const json& rs) {
  try {
    return std::stoll(rs.value("/metadata/annotations"_json_pointer, json::object()).value(kRevision, "0"));
  } catch (...) {
    return 0;
  }
}

// Older first: creationTimestamp (RFC 3339 in UTC sorts as text), then name.
bool CreatedBefore(const json& a, const json& b) {
  const std::string a_time = a["metadata"].value("creationTimestamp", "");
  const std::string b_time = b["metadata"].value("creationTimestamp", "");
  if (a_time != b_time) return a_time < b_time;
  return a["metadata"].value("name", "") < b["metadata"].value("name", "");
}

int64_t Replicas(const json& object) { return object.value("/spec/replicas"_json_pointer, int64_t{1}); }
int64_t StatusCount(const json& object, const char* field) {
  return object.value("status", json::object()).value(field, int64_t{0});
}

}  // namespace

int64_t ResolveIntOrPercent(const json& value, int64_t total, bool round_up) {
  if (value.is_number_integer()) return value.get<int64_t>();
  if (value.is_string()) {
    std::string text = value.get<std::string>();
    if (!text.empty() && text.back() == '%') {
      const int64_t percent = std::atoll(text.substr(0, text.size() - 1).c_str());
      return round_up ? (total * percent + 99) / 100 : (total * percent) / 100;
    }
    return std::atoll(text.c_str());
  }
  return 0;
}

DeploymentController::DeploymentController(const ControllerContext& context)
    : Controller("deployment", context), events_(context.client, "deployment-controller") {}

void DeploymentController::Setup() {
  deployments_ = context_.informers->For(client::kDeployments);
  replicasets_ = context_.informers->For(client::kReplicaSets);
  deployments_->AddEventHandler(
      {[this](const client::ObjectPtr& d) { EnqueueObject(d); },
       [this](const client::ObjectPtr&, const client::ObjectPtr& d) { EnqueueObject(d); },
       [this](const client::ObjectPtr& d) { EnqueueObject(d); }});
  // A ReplicaSet queues its Deployment; an orphan queues every Deployment that may adopt it.
  RouteOwnedEvents(this, replicasets_, deployments_, "Deployment", /*expectations=*/nullptr);
}

Status DeploymentController::ScaleReplicaSet(const json& deployment, const json& rs,
                                             int64_t replicas) {
  if (Replicas(rs) == replicas) return Status::Ok();
  json patch = {{"spec", {{"replicas", replicas}}}};
  auto result = api().Patch(client::kReplicaSets, rs["metadata"].value("namespace", ""),
                            rs["metadata"].value("name", ""), client::PatchType::kMerge, patch);
  if (!result.ok()) return result.status();
  events_.Record(deployment, "Normal", "ScalingReplicaSet",
                 std::string(replicas > Replicas(rs) ? "Scaled up" : "Scaled down") +
                     " replica set " + rs["metadata"].value("name", "") + " from " +
                     std::to_string(Replicas(rs)) + " to " + std::to_string(replicas));
  return Status::Ok();
}

Status DeploymentController::Reconcile(const std::string& key) {
  client::ObjectPtr d_ptr = deployments_->Get(key);
  if (!d_ptr) return Status::Ok();
  const json& d = *d_ptr;
  if (d["metadata"].contains("deletionTimestamp")) return Status::Ok();
  const std::string ns = d["metadata"].value("namespace", "");
  const json pod_template = d.value("/spec/template"_json_pointer, json::object());
  // Names only a ReplicaSet still to be made: existing ones are matched by template below.
  const std::string hash = PodTemplateHash(pod_template, CollisionCount(d));
  const int64_t replicas = Replicas(d);

  // Claim first (upstream's ControllerRefManager): adopt matching orphans, release ours whose
  // labels stopped matching. An adopted ReplicaSet with the current template is the new one.
  ControllerRefManager claims(api(), client::kDeployments, d,
                              d.value("/spec/selector"_json_pointer, json()));
  ControllerRefManager::Claimed claimed = claims.Claim(client::kReplicaSets,
                                                       replicasets_->ListByNamespace(ns));
  if (!claimed.status.ok()) return claimed.status;
  const std::vector<client::ObjectPtr>& owned = claimed.objects;
  const json* new_rs = nullptr;
  int64_t max_revision = 0;
  for (const client::ObjectPtr& rs : owned) {
    max_revision = std::max(max_revision, Revision(*rs));
    if (EquivalentPodTemplates((*rs).value("/spec/template"_json_pointer, json::object()),
                               pod_template) &&
        (new_rs == nullptr || CreatedBefore(*rs, *new_rs))) {
      new_rs = rs.get();  // several (an adopted twin): the oldest, as upstream; the rest are old
    }
  }
  if (d.value("/spec/paused"_json_pointer, false)) return SyncStatus(d, new_rs, owned, true);

  const std::string strategy = d.value("/spec/strategy/type"_json_pointer, std::string("RollingUpdate"));
  int64_t old_active = 0;
  for (const client::ObjectPtr& rs : owned) {
    if (rs.get() != new_rs) old_active += StatusCount(*rs, "replicas") + Replicas(*rs);
  }

  if (new_rs == nullptr) {
    // A new template: a new ReplicaSet (or, for a rollback, an old one matched above).
    json labels = pod_template.value("/metadata/labels"_json_pointer, json::object());
    labels[kHashLabel] = hash;
    json rs_template = pod_template;
    rs_template["metadata"]["labels"] = labels;
    json selector = d.value("/spec/selector"_json_pointer, json::object());
    selector["matchLabels"][kHashLabel] = hash;
    int64_t initial = 0;
    if (strategy != "Recreate") {
      const int64_t surge = ResolveIntOrPercent(
          d.value("/spec/strategy/rollingUpdate/maxSurge"_json_pointer, json("25%")), replicas, true);
      int64_t total = 0;
      for (const client::ObjectPtr& rs : owned) total += Replicas(*rs);
      initial = std::clamp<int64_t>(replicas + surge - total, 0, replicas);
    } else if (old_active == 0) {
      initial = replicas;
    }
    json rs = {{"apiVersion", "apps/v1"},
               {"kind", "ReplicaSet"},
               {"metadata",
                {{"name", d["metadata"].value("name", "") + "-" + hash},
                 {"namespace", ns},
                 {"labels", labels},
                 {"annotations", {{kRevision, std::to_string(max_revision + 1)},
                                  {"deployment.kubernetes.io/desired-replicas", std::to_string(replicas)}}},
                 {"ownerReferences", json::array({MakeControllerRef(d)})}}},
               {"spec", {{"replicas", initial},
                         {"minReadySeconds", d["spec"].value("minReadySeconds", 0)},
                         {"selector", selector},
                         {"template", rs_template}}}};
    auto created = api().Create(client::kReplicaSets, ns, rs);
    if (!created.ok()) {
      if (!client::IsAlreadyExists(created.error())) return created.status();
      return OnNameTaken(d, rs["metadata"].value("name", ""));
    }
    events_.Record(d, "Normal", "ScalingReplicaSet",
                   "Scaled up replica set " + rs["metadata"].value("name", "") + " to " +
                       std::to_string(initial));
    return Status::Ok();  // the ReplicaSet's informer event brings us back
  }
  // The current template's ReplicaSet carries the newest revision (a rollback re-numbers it).
  if (Revision(*new_rs) < max_revision) {
    json patch = {{"metadata", {{"annotations", {{kRevision, std::to_string(max_revision + 1)}}}}}};
    auto result = api().Patch(client::kReplicaSets, ns, (*new_rs)["metadata"].value("name", ""),
                              client::PatchType::kMerge, patch);
    if (!result.ok()) return result.status();
  }

  // The Deployment carries its current revision (kubectl rollout history/undo read it).
  const std::string revision = std::to_string(std::max(Revision(*new_rs), max_revision));
  if (d.value("/metadata/annotations"_json_pointer, json::object()).value(kRevision, "") != revision) {
    json patch = {{"metadata", {{"annotations", {{kRevision, revision}}}}}};
    auto result = api().Patch(client::kDeployments, ns, d["metadata"].value("name", ""),
                              client::PatchType::kMerge, patch);
    if (!result.ok()) return result.status();
  }

  if (strategy == "Recreate") {
    for (const client::ObjectPtr& rs : owned) {
      if (rs.get() == new_rs) continue;
      if (Status status = ScaleReplicaSet(d, *rs, 0); !status.ok()) return status;
    }
    if (old_active == 0) {
      if (Status status = ScaleReplicaSet(d, *new_rs, replicas); !status.ok()) return status;
    }
  } else {
    const int64_t surge = ResolveIntOrPercent(
        d.value("/spec/strategy/rollingUpdate/maxSurge"_json_pointer, json("25%")), replicas, true);
    int64_t unavailable = ResolveIntOrPercent(
        d.value("/spec/strategy/rollingUpdate/maxUnavailable"_json_pointer, json("25%")), replicas,
        false);
    if (surge == 0 && unavailable == 0) unavailable = 1;
    int64_t total = 0, available = 0;
    for (const client::ObjectPtr& rs : owned) {
      total += Replicas(*rs);
      available += StatusCount(*rs, "availableReplicas");
    }
    // Scale the new ReplicaSet up as far as the surge allows (or down if the Deployment shrank).
    int64_t new_replicas = Replicas(*new_rs);
    if (new_replicas > replicas) {
      new_replicas = replicas;
    } else if (total < replicas + surge) {
      new_replicas = std::min(replicas, new_replicas + (replicas + surge - total));
    }
    if (Status status = ScaleReplicaSet(d, *new_rs, new_replicas); !status.ok()) return status;
    total += new_replicas - Replicas(*new_rs);
    // Scale old ReplicaSets down without ever going below replicas - maxUnavailable available
    // pods (counting the new ReplicaSet's unavailable pods against the budget), as upstream
    // does: unhealthy old pods go first, then healthy ones while availability allows.
    const int64_t min_available = replicas - unavailable;
    const int64_t new_unavailable =
        std::max<int64_t>(0, new_replicas - StatusCount(*new_rs, "availableReplicas"));
    int64_t cleanup_budget = total - min_available - new_unavailable;
    int64_t availability_budget = available - min_available;
    std::vector<client::ObjectPtr> old;
    for (const client::ObjectPtr& rs : owned) {
      if (rs.get() != new_rs && Replicas(*rs) > 0) old.push_back(rs);
    }
    std::sort(old.begin(), old.end(), [](const client::ObjectPtr& a, const client::ObjectPtr& b) {
      return Revision(*a) < Revision(*b);
    });
    for (const client::ObjectPtr& rs : old) {
      if (cleanup_budget <= 0) break;
      const int64_t unhealthy =
          std::max<int64_t>(0, Replicas(*rs) - StatusCount(*rs, "availableReplicas"));
      const int64_t from_unhealthy = std::min(unhealthy, cleanup_budget);
      cleanup_budget -= from_unhealthy;
      const int64_t healthy = Replicas(*rs) - unhealthy;
      const int64_t from_healthy =
          std::min(healthy, std::max<int64_t>(0, std::min(availability_budget, cleanup_budget)));
      availability_budget -= from_healthy;
      cleanup_budget -= from_healthy;
      const int64_t cut = from_unhealthy + from_healthy;
      if (cut <= 0) continue;
      if (Status status = ScaleReplicaSet(d, *rs, Replicas(*rs) - cut); !status.ok()) return status;
    }
  }

  // History: keep revisionHistoryLimit old ReplicaSets that have scaled to zero.
  const int64_t limit = d["spec"].value("revisionHistoryLimit", 10);
  std::vector<client::ObjectPtr> idle;
  for (const client::ObjectPtr& rs : owned) {
    if (rs.get() != new_rs && Replicas(*rs) == 0 && StatusCount(*rs, "replicas") == 0) idle.push_back(rs);
  }
  std::sort(idle.begin(), idle.end(), [](const client::ObjectPtr& a, const client::ObjectPtr& b) {
    return Revision(*a) < Revision(*b);
  });
  for (size_t i = 0; i + limit < idle.size(); ++i) {
    auto deleted = api().Delete(client::kReplicaSets, ns, (*idle[i])["metadata"].value("name", ""), {});
    if (!deleted.ok() && !client::IsNotFound(deleted.error())) return deleted.status();
  }
  return SyncStatus(d, new_rs, owned, false);
}

Status DeploymentController::OnNameTaken(const json& d, const std::string& name) {
  const std::string ns = d["metadata"].value("namespace", "");
  auto existing = api().Get(client::kReplicaSets, ns, name);
  if (!existing.ok()) {
    // Gone meanwhile (NotFound): the retry creates it.
    return existing.status();
  }
  const json* owner = ControllerRef(*existing);
  if (owner != nullptr && owner->value("uid", "") == d["metadata"].value("uid", "") &&
      EquivalentPodTemplates((*existing).value("/spec/template"_json_pointer, json::object()),
                             d.value("/spec/template"_json_pointer, json::object()))) {
    return Status::Ok();  // ours, made by an earlier attempt: its informer event brings us back
  }
  return RaiseCollisionCount(api(), client::kDeployments, d, name);
}

Status DeploymentController::SyncStatus(const json& d, const json* new_rs,
                                        const std::vector<client::ObjectPtr>& all, bool paused) {
  const int64_t replicas = Replicas(d);
  int64_t current = 0, ready = 0, available = 0;
  for (const client::ObjectPtr& rs : all) {
    current += StatusCount(*rs, "replicas");
    ready += StatusCount(*rs, "readyReplicas");
    available += StatusCount(*rs, "availableReplicas");
  }
  const int64_t updated = new_rs ? StatusCount(*new_rs, "replicas") : 0;
  const int64_t max_unavailable = ResolveIntOrPercent(
      d.value("/spec/strategy/rollingUpdate/maxUnavailable"_json_pointer, json("25%")), replicas, false);
  json status = d.value("status", json::object());
  json wanted = status;
  wanted["observedGeneration"] = d["metadata"].value("generation", 0);
  wanted["replicas"] = current;
  wanted["updatedReplicas"] = updated;
  wanted["readyReplicas"] = ready;
  wanted["availableReplicas"] = available;
  wanted["unavailableReplicas"] = std::max<int64_t>(0, replicas - available);
  const bool is_available = available >= replicas - max_unavailable;
  const bool complete = new_rs != nullptr && updated == replicas && available == replicas &&
                        current == replicas;
  const auto now = WallNow();
  const std::string now_text = FormatTime(now);
  // Sets a condition. lastTransitionTime moves when the status changes; lastUpdateTime when the
  // status or reason changes, or always with `touch` (Progressing on progress, as upstream).
  auto set_condition = [&](const std::string& type, const std::string& value,
                           const std::string& reason, const std::string& message, bool touch) {
    json conditions = wanted.value("conditions", json::array());
    for (json& condition : conditions) {
      if (condition.value("type", "") != type) continue;
      if (condition.value("status", "") != value) condition["lastTransitionTime"] = now_text;
      if (touch || condition.value("reason", "") != reason || condition.value("status", "") != value) {
        condition["lastUpdateTime"] = now_text;
      }
      condition["status"] = value;
      condition["reason"] = reason;
      condition["message"] = message;
      wanted["conditions"] = conditions;
      return;
    }
    conditions.push_back({{"type", type}, {"status", value}, {"reason", reason},
                          {"message", message}, {"lastUpdateTime", now_text},
                          {"lastTransitionTime", now_text}});
    wanted["conditions"] = conditions;
  };
  set_condition("Available", is_available ? "True" : "False",
                is_available ? "MinimumReplicasAvailable" : "MinimumReplicasUnavailable",
                is_available ? "Deployment has minimum availability."
                             : "Deployment does not have minimum availability.",
                false);

  // Progressing, with progressDeadlineSeconds (upstream syncRolloutStatus): progress (more
  // updated/ready/available pods, fewer old ones, or a new rollout) refreshes lastUpdateTime;
  // no progress for the deadline turns it False/ProgressDeadlineExceeded. Paused: Unknown.
  const std::string rs_name = new_rs ? (*new_rs)["metadata"].value("name", "") : "";
  const std::string rs_quoted = "ReplicaSet \"" + rs_name + "\"";
  const int64_t deadline = d["spec"].value("progressDeadlineSeconds", int64_t{600});
  json progressing;
  for (const json& condition : status.value("conditions", json::array())) {
    if (condition.value("type", "") == "Progressing") progressing = condition;
  }
  const std::string reason = progressing.is_object() ? progressing.value("reason", "") : "";
  const bool new_rollout = progressing.is_object() &&
                           progressing.value("message", "").find(rs_quoted) == std::string::npos;
  const bool progress =
      updated > StatusCount(d, "updatedReplicas") ||
      current - updated < StatusCount(d, "replicas") - StatusCount(d, "updatedReplicas") ||
      ready > StatusCount(d, "readyReplicas") || available > StatusCount(d, "availableReplicas");
  std::chrono::system_clock::time_point last_update{};
  ParseTime(progressing.is_object() ? progressing.value("lastUpdateTime", "") : "", &last_update);
  const auto expires = last_update + std::chrono::seconds(deadline);
  // When the deadline counts from, if it is being watched (nullopt: not watched).
  std::optional<std::chrono::system_clock::time_point> since;
  if (paused) {
    set_condition("Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", false);
  } else if (complete) {
    set_condition("Progressing", "True", "NewReplicaSetAvailable",
                  rs_quoted + " has successfully progressed.", false);
  } else if (!progressing.is_object() || progress || new_rollout || reason == "DeploymentPaused") {
    set_condition("Progressing", "True", "ReplicaSetUpdated", rs_quoted + " is progressing.", true);
    since = now;
  } else if (reason == "ProgressDeadlineExceeded") {
    // Stays failed until progress or a new rollout.
  } else if (now > expires) {
    set_condition("Progressing", "False", "ProgressDeadlineExceeded",
                  rs_quoted + " has timed out progressing.", false);
    events_.Record(d, "Warning", "ProgressDeadlineExceeded",
                   rs_quoted + " has timed out progressing.");
  } else {
    since = last_update;
  }
  if (since) {
    // Look again just after the deadline would pass without progress (progress re-enqueues
    // sooner through the ReplicaSet informer). Timestamps have whole seconds, hence the +1 s.
    const auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(
        *since + std::chrono::seconds(deadline) - now);
    EnqueueAfter(client::ObjectKey(d),
                 std::max(wait, std::chrono::milliseconds(0)) + std::chrono::seconds(1));
  }
  if (wanted == status) return Status::Ok();
  json object = d;
  object["status"] = wanted;
  auto result = api().UpdateStatus(client::kDeployments, object);
  if (!result.ok() && !client::IsNotFound(result.error())) return result.status();
  return Status::Ok();
}

}  // namespace mk8s::controllers
