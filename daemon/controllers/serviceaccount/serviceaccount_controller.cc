#include "controllers/serviceaccount/serviceaccount_controller.h"

#include <nlohmann/json.hpp>

namespace mk8s::controllers {

using nlohmann::json;

void ServiceAccountController::Setup() {
  namespaces_ = context_.informers->For(client::kNamespaces);
  accounts_ = context_.informers->For(client::kServiceAccounts);
  namespaces_->AddEventHandler({[this](const client::ObjectPtr& ns) { EnqueueObject(ns); },
                                [this](const client::ObjectPtr&, const client::ObjectPtr& ns) {
                                  EnqueueObject(ns);
                                },
                                nullptr});
  // A deleted default account comes back.
  accounts_->AddEventHandler({nullptr, nullptr, [this](const client::ObjectPtr& account) {
                                Enqueue((*account)["metadata"].value("namespace", ""));
                              }});
}

Status ServiceAccountController::Reconcile(const std::string& ns_name) {
  client::ObjectPtr ns = namespaces_->Get(ns_name);
  if (!ns || (*ns).contains("/metadata/deletionTimestamp"_json_pointer)) return Status::Ok();
  if (accounts_->Get(ns_name, "default")) return Status::Ok();
  json account = {{"apiVersion", "v1"},
                  {"kind", "ServiceAccount"},
                  {"metadata", {{"name", "default"}, {"namespace", ns_name}}}};
  auto created = api().Create(client::kServiceAccounts, ns_name, account);
  if (!created.ok() && !client::IsAlreadyExists(created.error()) &&
      !client::IsForbidden(created.error())) {  // forbidden: the namespace is terminating
    return created.status();
  }
  return Status::Ok();
}

}  // namespace mk8s::controllers
