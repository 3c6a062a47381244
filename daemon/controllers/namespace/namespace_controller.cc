#include "controllers/namespace/namespace_controller.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

namespace mk8s::controllers {
namespace {

using nlohmann::json;

// Every namespaced resource the API server stores, in deletion order (workloads before what
// they use, so controllers do not recreate pods while we delete them).
const client::ResourceRef kNamespacedResources[] = {
    client::kCronJobs,
    client::kJobs,
    client::kDeployments,
    client::kStatefulSets,
    client::kDaemonSets,
    client::kReplicaSets,
    client::kControllerRevisions,
    client::kPods,
    client::kServices,
    client::kEndpoints,
    client::kEndpointSlices,
    client::kConfigMaps,
    client::kSecrets,
    client::kServiceAccounts,
    client::kEvents,
    client::kLeases,
    {"rbac.authorization.k8s.io", "v1", "roles", true},
    {"rbac.authorization.k8s.io", "v1", "rolebindings", true},
};

bool Terminating(const json& ns) { return ns.contains("/metadata/deletionTimestamp"_json_pointer); }

}  // namespace

void NamespaceController::Setup() {
  namespaces_ = context_.informers->For(client::kNamespaces);
  auto enqueue_if_terminating = [this](const client::ObjectPtr& ns) {
    if (Terminating(*ns)) EnqueueObject(ns);
  };
  namespaces_->AddEventHandler(
      {enqueue_if_terminating,
       [enqueue_if_terminating](const client::ObjectPtr&, const client::ObjectPtr& ns) {
         enqueue_if_terminating(ns);
       },
       nullptr});
}

Status NamespaceController::Reconcile(const std::string& name) {
  client::ObjectPtr ns = namespaces_->Get(name);
  if (!ns || !Terminating(*ns)) return Status::Ok();

  size_t remaining = 0;
  for (const client::ResourceRef& resource : kNamespacedResources) {
    auto list = api().ListAll(resource, name);
    if (!list.ok()) {
      if (list.error().code == 404) continue;  // a resource this server does not serve
      return list.status();
    }
    for (const client::ObjectPtr& object : list->items) {
      ++remaining;
      if ((*object).contains("/metadata/deletionTimestamp"_json_pointer)) continue;
      client::DeleteOptions options;
      options.propagation_policy = "Background";
      auto deleted = api().Delete(resource, name, (*object)["metadata"].value("name", ""), options);
      if (!deleted.ok() && !client::IsNotFound(deleted.error())) return deleted.status();
    }
  }
  if (remaining > 0) {
    // Deletions are under way (finalizers, graceful pods): look again shortly.
    EnqueueAfter(name, std::chrono::milliseconds(500));
    return Status::Ok();
  }
  json finalized = *ns;
  finalized["spec"]["finalizers"] = json::array();
  client::Request request;
  request.method = "PUT";
  request.path = client::kNamespaces.Path("", name, "finalize");
  request.content_type = "application/json";
  request.body = finalized.dump();
  auto result = api().Do(std::move(request));
  if (!result.ok() && !client::IsNotFound(result.error())) return result.status();
  spdlog::info("namespace {} deleted with everything in it", name);
  return Status::Ok();
}

}  // namespace mk8s::controllers
