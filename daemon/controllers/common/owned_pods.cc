#include "controllers/common/owned_pods.h"

#include <nlohmann/json.hpp>

#include "controllers/common/pod_util.h"

namespace mk8s::controllers {

using nlohmann::json;

std::string ControllerOwnerKey(const json& pod, const std::string& owner_kind) {
  const json* owner = ControllerRef(pod);
  if (owner == nullptr || owner->value("kind", "") != owner_kind) return "";
  return pod["metadata"].value("namespace", "") + "/" + owner->value("name", "");
}

void RouteOwnerEvents(Controller* controller, client::Informer* owners,
                      Expectations* expectations) {
  owners->AddEventHandler(
      {[controller](const client::ObjectPtr& owner) { controller->EnqueueObject(owner); },
       [controller](const client::ObjectPtr&, const client::ObjectPtr& owner) {
         controller->EnqueueObject(owner);
       },
       [controller, expectations](const client::ObjectPtr& owner) {
         expectations->Forget(client::ObjectKey(*owner));
         controller->EnqueueObject(owner);
       }});
}

void RouteOwnedPodEvents(Controller* controller, client::Informer* pods,
                         client::Informer* owners, const std::string& owner_kind,
                         Expectations* expectations) {
  auto on_pod = [=](const client::ObjectPtr& pod, bool added, bool deleted) {
    const std::string owner = ControllerOwnerKey(*pod, owner_kind);
    if (!owner.empty()) {
      if (added) expectations->CreationObserved(owner);
      if (deleted) expectations->DeletionObserved(owner);
      controller->Enqueue(owner);
      return;
    }
    const std::string ns = (*pod)["metadata"].value("namespace", "");
    for (const client::ObjectPtr& candidate : owners->ListByNamespace(ns)) {
      if (SelectorMatches((*candidate)["spec"].value("selector", json()), *pod)) {
        controller->EnqueueObject(candidate);
      }
    }
  };
  pods->AddEventHandler(
      {[on_pod](const client::ObjectPtr& pod) { on_pod(pod, true, false); },
       [on_pod, owner_kind](const client::ObjectPtr& old_pod, const client::ObjectPtr& pod) {
         if (ControllerOwnerKey(*old_pod, owner_kind) != ControllerOwnerKey(*pod, owner_kind)) {
           on_pod(old_pod, false, false);
         }
         on_pod(pod, false, false);
       },
       [on_pod](const client::ObjectPtr& pod) { on_pod(pod, false, true); }});
}

}  // namespace mk8s::controllers
