// RestStorage::Evict: pods/<name>/eviction (policy/v1 Eviction), a delete that honours the
// PodDisruptionBudget covering the pod, as upstream's EvictionREST:
//  - a pod that is terminal, already being deleted, or covered by no budget is deleted at once;
//  - more than one budget: 500 (upstream does not support it either);
//  - a budget the disruption controller has not processed at its generation, or with no
//    disruption allowed: 429 TooManyRequests with a DisruptionBudget cause;
//  - a pod that is not Ready may go when the budget is healthy (unhealthyPodEvictionPolicy
//    IfHealthyBudget, the default) or always (AlwaysAllow), without spending the budget;
//  - otherwise the budget's status is updated first (disruptionsAllowed - 1, the pod noted in
//    disruptedPods; a compare-and-swap, so two evictions never spend one disruption twice), and
//    then the pod is deleted with the Eviction's deleteOptions.
// The answer to a successful eviction is a Status with code 201, as upstream's.
#include <chrono>

#include "apiserver/registry/cached_object.h"
#include "apiserver/registry/object_meta.h"
#include "apiserver/registry/rest_storage.h"
#include "apiserver/registry/watch_cache.h"
#include "apiserver/registry/write_util.h"

namespace mk8s::apiserver {
namespace {

using nlohmann::json;

constexpr const char* kViolation = "Cannot evict pod as it would violate the pod's disruption budget.";

// Passes errors through and turns the delete's object reply into upstream's eviction Status.
struct EvictionReply final : http::Responder {
  std::shared_ptr<http::Responder> inner;
  void Send(http::Response response) override {
    if (response.status >= 300) return inner->Send(std::move(response));
    inner->Send(http::Response{201, "application/json", {},
                               R"({"kind":"Status","apiVersion":"v1","metadata":{},)"
                               R"("status":"Success","code":201})"});
  }
  std::shared_ptr<http::ResponseStream> StartStream(int, std::string,
                                                    std::vector<http::Header>) override {
    return nullptr;
  }
};

// After the budget's status was written: delete the pod; any error ends the eviction.
struct ThenDelete final : http::Responder {
  std::function<void()> next;
  std::shared_ptr<http::Responder> inner;
  void Send(http::Response response) override {
    if (response.status >= 300) return inner->Send(std::move(response));
    next();
  }
  std::shared_ptr<http::ResponseStream> StartStream(int, std::string,
                                                    std::vector<http::Header>) override {
    return nullptr;
  }
};

// policy/v1: a null selector selects nothing, an empty one every pod of the namespace.
bool BudgetSelects(const json& budget, const json& pod) {
  const json* selector = budget.contains("/spec/selector"_json_pointer)
                             ? &budget.at("/spec/selector"_json_pointer)
                             : nullptr;
  if (selector == nullptr || !selector->is_object()) return false;
  const json labels = pod.value("/metadata/labels"_json_pointer, json::object());
  const json match_labels = selector->value("matchLabels", json::object());
  for (const auto& [key, value] : match_labels.items()) {
    if (!labels.contains(key) || labels[key] != value) return false;
  }
  const json expressions = selector->value("matchExpressions", json::array());
  for (const json& expression : expressions) {
    const std::string key = expression.value("key", "");
    const std::string op = expression.value("operator", "");
    const json values = expression.value("values", json::array());
    const bool has = labels.contains(key);
    bool in = false;
    for (const json& v : values) in = in || (has && labels[key] == v);
    if ((op == "In" && !in) || (op == "NotIn" && in) || (op == "Exists" && !has) ||
        (op == "DoesNotExist" && has)) {
      return false;
    }
  }
  return true;
}

bool PodReady(const json& pod) {
  for (const json& c : pod.value("/status/conditions"_json_pointer, json::array())) {
    if (c.value("type", "") == "Ready") return c.value("status", "") == "True";
  }
  return false;
}

ApiError Refusal(const std::string& cause) {
  ApiError error = ApiError::TooManyRequests(kViolation, 0);
  error.causes.push_back({"DisruptionBudget", cause, ""});
  return error;
}

}  // namespace

void RestStorage::Evict(const RestRequest& request, std::shared_ptr<http::Responder> responder) {
  const std::string& ns = request.info.namespace_;
  const std::string& name = request.info.name;
  json eviction = json::object();
  if (!request.http.body.empty()) {
    eviction = json::parse(request.http.body, nullptr, false);
    if (!eviction.is_object()) {
      return SendError(*responder, ApiError::BadRequest("the Eviction must be a JSON object"));
    }
  }
  const json named = eviction.value("/metadata/name"_json_pointer, json(name));
  if (named != json(name)) {
    return SendError(*responder,
                     ApiError::BadRequest("name in URL does not match name in Eviction object"));
  }
  RestRequest deletion = request;
  deletion.info.subresource.clear();
  deletion.info.verb = "delete";
  deletion.http.body = eviction.contains("deleteOptions") && eviction["deleteOptions"].is_object()
                           ? eviction["deleteOptions"].dump()
                           : std::string();
  auto reply = std::make_shared<EvictionReply>();
  reply->inner = responder;

  // A pod the watch cache does not hold (yet: it may lag the store by a moment) is left to the
  // delete, which reads the store and answers 404 for a pod that does not exist.
  CachedObjectPtr pod = cache_->Get(Key(*request.resource, ns, name));
  if (!pod || !pod->object().is_object()) return Delete(deletion, reply);
  const json& object = pod->object();
  const std::string phase = object.value("/status/phase"_json_pointer, std::string());
  const bool terminating = object.contains("/metadata/deletionTimestamp"_json_pointer) &&
                           !object.at("/metadata/deletionTimestamp"_json_pointer).is_null();
  if (phase == "Succeeded" || phase == "Failed" || terminating) return Delete(deletion, reply);

  static const ResourceInfo* const budgets =
      ResourceRegistry::Builtin().Find("policy", "v1", "poddisruptionbudgets");
  std::vector<CachedObjectPtr> covering;
  for (const CachedObjectPtr& item : cache_->List(Prefix(*budgets, ns)).items) {
    if (BudgetSelects(item->object(), object)) covering.push_back(item);
  }
  if (covering.empty()) return Delete(deletion, reply);
  if (covering.size() > 1) {
    return SendError(*responder, ApiError::Internal(
                                     "This pod has more than one PodDisruptionBudget, which the "
                                     "eviction subresource does not support."));
  }
  const json& budget = covering[0]->object();
  const std::string budget_name = budget["metadata"].value("name", "");
  const json status = budget.value("status", json::object());
  if (status.value("observedGeneration", int64_t{0}) <
      budget["metadata"].value("generation", int64_t{1})) {
    return SendError(*responder, Refusal("The disruption budget " + budget_name +
                                         " is still being processed by the server."));
  }
  const int64_t healthy = status.value("currentHealthy", int64_t{0});
  const int64_t desired = status.value("desiredHealthy", int64_t{0});
  if (!PodReady(object)) {
    const std::string policy =
        budget.value("/spec/unhealthyPodEvictionPolicy"_json_pointer, std::string("IfHealthyBudget"));
    if (policy == "AlwaysAllow" || healthy >= desired) return Delete(deletion, reply);
  }

  // Spend one disruption on the budget (compare-and-swap through RunMutation), then delete.
  auto m = std::make_shared<Mutation>();
  m->request = request;
  m->request.resource = budgets;
  m->request.info.name = budget_name;
  m->request.info.resource = "poddisruptionbudgets";
  m->request.info.subresource = "status";
  m->request.info.verb = "update";
  m->request.http.body.clear();
  m->key = Key(*budgets, ns, budget_name);
  m->transform = [name, budget_name](const json* current, json* updated) -> std::optional<ApiError> {
    if (current == nullptr) return Refusal("The disruption budget " + budget_name + " is gone.");
    const json& s = current->value("status", json::object());
    const int64_t allowed = s.value("disruptionsAllowed", int64_t{0});
    if (allowed <= 0) {
      return Refusal("The disruption budget " + budget_name + " needs " +
                     std::to_string(s.value("desiredHealthy", int64_t{0})) +
                     " healthy pods and has " + std::to_string(s.value("currentHealthy", int64_t{0})) +
                     " currently");
    }
    *updated = *current;
    (*updated)["status"]["disruptionsAllowed"] = allowed - 1;
    (*updated)["status"]["disruptedPods"][name] = FormatTime(std::chrono::system_clock::now());
    return std::nullopt;
  };
  auto then = std::make_shared<ThenDelete>();
  then->inner = responder;
  then->next = [this, deletion, reply] { Delete(deletion, reply); };
  m->responder = then;
  RunMutation(m);
}

}  // namespace mk8s::apiserver
