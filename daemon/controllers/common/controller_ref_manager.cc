#include "controllers/common/controller_ref_manager.h"

#include <memory>

#include "controllers/common/pod_util.h"

namespace mk8s::controllers {

using nlohmann::json;

std::string ControllerOwnerKey(const json& object, const std::string& owner_kind) {
  const json* owner = ControllerRef(object);
  if (owner == nullptr || owner->value("kind", "") != owner_kind) return "";
  return object["metadata"].value("namespace", "") + "/" + owner->value("name", "");
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

void RouteOwnedEvents(Controller* controller, client::Informer* dependents,
                      client::Informer* owners, const std::string& owner_kind,
                      Expectations* expectations) {
  auto on_dependent = [=](const client::ObjectPtr& object, bool added, bool deleted) {
    const std::string owner = ControllerOwnerKey(*object, owner_kind);
    if (!owner.empty()) {
      if (expectations != nullptr && added) expectations->CreationObserved(owner);
      if (expectations != nullptr && deleted) expectations->DeletionObserved(owner);
      controller->Enqueue(owner);
      return;
    }
    if (ControllerRef(*object) != nullptr) return;  // another kind's: not ours to claim
    const std::string ns = (*object)["metadata"].value("namespace", "");
    for (const client::ObjectPtr& candidate : owners->ListByNamespace(ns)) {
      if (SelectorMatches((*candidate)["spec"].value("selector", json()), *object)) {
        controller->EnqueueObject(candidate);
      }
    }
  };
  dependents->AddEventHandler(
      {[on_dependent](const client::ObjectPtr& object) { on_dependent(object, true, false); },
       [on_dependent, owner_kind](const client::ObjectPtr& old_object,
                                  const client::ObjectPtr& object) {
         if (ControllerOwnerKey(*old_object, owner_kind) !=
             ControllerOwnerKey(*object, owner_kind)) {
           on_dependent(old_object, false, false);
         }
         on_dependent(object, false, false);
       },
       [on_dependent](const client::ObjectPtr& object) { on_dependent(object, false, true); }});
}

// A merge patch setting the dependent's ownerReferences, guarded by its uid and resourceVersion
// (the API server refuses it when the object changed or was replaced since it was read).
static json OwnerReferencesPatch(const json& meta, json references) {
  return {{"metadata",
           {{"ownerReferences", std::move(references)},
            {"uid", meta.value("uid", "")},
            {"resourceVersion", meta.value("resourceVersion", "")}}}};
}

Status SetControllerRef(client::Client& api, const client::ResourceRef& resource,
                        const json& object, const json* owner) {
  json references = json::array();
  for (const json& reference :
       object.value("/metadata/ownerReferences"_json_pointer, json::array())) {
    if (!reference.value("controller", false)) references.push_back(reference);
  }
  if (owner != nullptr) references.push_back(MakeControllerRef(*owner));
  const json& meta = object["metadata"];
  auto result = api.Patch(resource, meta.value("namespace", ""), meta.value("name", ""),
                          client::PatchType::kMerge, OwnerReferencesPatch(meta, references));
  if (result.ok() || client::IsNotFound(result.error())) return Status::Ok();
  return result.status();
}

ControllerRefManager::ControllerRefManager(client::Client& api,
                                           const client::ResourceRef& owner_resource,
                                           const json& owner, json selector)
    : api_(api), owner_resource_(owner_resource), owner_(owner), selector_(std::move(selector)) {}

Status ControllerRefManager::CanAdopt() {
  if (can_adopt_) return *can_adopt_;
  const json& meta = owner_["metadata"];
  const std::string ns = meta.value("namespace", "");
  const std::string name = meta.value("name", "");
  auto fresh = api_.Get(owner_resource_, ns, name);
  if (!fresh.ok()) {
    can_adopt_ = Status(Code::kUnavailable, "cannot adopt for " + ns + "/" + name +
                                                ": rechecking it failed: " + fresh.error().message);
  } else if ((*fresh)["metadata"].value("uid", "") != meta.value("uid", "")) {
    can_adopt_ = Status(Code::kNotFound, "original " + ns + "/" + name + " is gone: got uid " +
                                             (*fresh)["metadata"].value("uid", "") + ", wanted " +
                                             meta.value("uid", ""));
  } else if ((*fresh)["metadata"].contains("deletionTimestamp")) {
    can_adopt_ = Status(Code::kConflict, ns + "/" + name + " has just been deleted at " +
                                             (*fresh)["metadata"]["deletionTimestamp"].dump());
  } else {
    can_adopt_ = Status::Ok();
  }
  return *can_adopt_;
}

Status ControllerRefManager::Adopt(const client::ResourceRef& resource, const json& object,
                                   client::ObjectPtr* adopted) {
  if (Status status = CanAdopt(); !status.ok()) return status;
  json references = object.value("/metadata/ownerReferences"_json_pointer, json::array());
  references.push_back(MakeControllerRef(owner_));
  const json& meta = object["metadata"];
  auto result = api_.Patch(resource, meta.value("namespace", ""), meta.value("name", ""),
                           client::PatchType::kMerge, OwnerReferencesPatch(meta, references));
  if (!result.ok()) {
    if (client::IsNotFound(result.error())) return Status::Ok();  // gone: nothing adopted
    return result.status();
  }
  *adopted = std::make_shared<const json>(std::move(*result));
  return Status::Ok();
}

ControllerRefManager::Claimed ControllerRefManager::Claim(
    const client::ResourceRef& resource, const std::vector<client::ObjectPtr>& candidates) {
  Claimed claimed;
  auto note = [&claimed](Status status) {
    if (!status.ok() && claimed.status.ok()) claimed.status = std::move(status);
  };
  const json& owner_meta = owner_["metadata"];
  const std::string uid = owner_meta.value("uid", "");
  const std::string ns = owner_meta.value("namespace", "");
  const bool owner_deleting = owner_meta.contains("deletionTimestamp");
  for (const client::ObjectPtr& candidate : candidates) {
    const json& object = *candidate;
    const json* reference = ControllerRef(object);
    const bool matches = SelectorMatches(selector_, object);
    if (reference != nullptr) {
      if (reference->value("uid", "") != uid) continue;  // someone else's
      if (matches) {
        claimed.objects.push_back(candidate);
      } else if (!owner_deleting) {
        note(SetControllerRef(api_, resource, object, nullptr));
      }
      continue;
    }
    if (owner_deleting || !matches || object["metadata"].contains("deletionTimestamp") ||
        object["metadata"].value("namespace", "") != ns) {
      continue;
    }
    client::ObjectPtr adopted;
    Status status = Adopt(resource, object, &adopted);
    if (adopted) claimed.objects.push_back(std::move(adopted));
    note(std::move(status));
  }
  return claimed;
}

}  // namespace mk8s::controllers
