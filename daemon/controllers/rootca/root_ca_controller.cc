#include "controllers/rootca/root_ca_controller.h"

#include <nlohmann/json.hpp>

namespace mk8s::controllers {

using nlohmann::json;

constexpr const char* kConfigMapName = "kube-root-ca.crt";

void RootCaController::Setup() {
  namespaces_ = context_.informers->For(client::kNamespaces);
  configmaps_ = context_.informers->For(client::kConfigMaps, "", "",
                                        std::string("metadata.name=") + kConfigMapName);
  namespaces_->AddEventHandler({[this](const client::ObjectPtr& ns) { EnqueueObject(ns); },
                                [this](const client::ObjectPtr&, const client::ObjectPtr& ns) {
                                  EnqueueObject(ns);
                                },
                                nullptr});
  auto enqueue_namespace = [this](const client::ObjectPtr& cm) {
    Enqueue((*cm)["metadata"].value("namespace", ""));
  };
  configmaps_->AddEventHandler(
      {nullptr,
       [enqueue_namespace](const client::ObjectPtr&, const client::ObjectPtr& cm) {
         enqueue_namespace(cm);
       },
       enqueue_namespace});
}

Status RootCaController::Reconcile(const std::string& ns_name) {
  client::ObjectPtr ns = namespaces_->Get(ns_name);
  if (!ns || (*ns).contains("/metadata/deletionTimestamp"_json_pointer)) return Status::Ok();
  const json data = {{"ca.crt", context_.cluster_ca_pem}};
  client::ObjectPtr existing = configmaps_->Get(ns_name, kConfigMapName);
  if (existing) {
    if ((*existing).value("data", json::object()) == data) return Status::Ok();
    json updated = *existing;
    updated["data"] = data;
    auto result = api().Update(client::kConfigMaps, updated);
    if (!result.ok() && !client::IsConflict(result.error())) return result.status();
    return result.ok() ? Status::Ok() : result.status();  // a conflict retries with backoff
  }
  json configmap = {{"apiVersion", "v1"},
                    {"kind", "ConfigMap"},
                    {"metadata", {{"name", kConfigMapName}, {"namespace", ns_name}}},
                    {"data", data}};
  auto created = api().Create(client::kConfigMaps, ns_name, configmap);
  if (!created.ok() && !client::IsAlreadyExists(created.error()) &&
      !client::IsForbidden(created.error())) {
    return created.status();
  }
  return Status::Ok();
}

}  // namespace mk8s::controllers
