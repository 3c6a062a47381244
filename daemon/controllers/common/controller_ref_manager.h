// Controller references between the workload controllers and their dependents (pods of a
// ReplicaSet, Job or DaemonSet; ReplicaSets of a Deployment), as upstream's ControllerRefManager.
//
// Event routing (informer handlers; they run on the informers' dispatch threads and only count
// and enqueue; `controller`, the informers and `expectations` must outlive them):
//  - Owner events: any change queues the owner; a delete also forgets its expectations.
//  - Dependent events: a dependent with a controller reference of `owner_kind` queues that
//    owner (and, with `expectations`, counts toward them: creation on add, deletion on delete).
//    An orphan queues every owner in its namespace whose selector matches, so one of them may
//    adopt it. A dependent whose owner changed (relabelled, released) queues both.
//
// Claiming (ControllerRefManager, on a controller's reconcile thread): adopt matching orphans,
// release owned dependents whose labels stopped matching, leave everyone else's alone.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "client/client.h"
#include "client/informer.h"
#include "common/status.h"
#include "controllers/common/expectations.h"
#include "controllers/controller.h"

namespace mk8s::controllers {

// "namespace/name" of the object's controller owner when it is of `owner_kind`, else "".
std::string ControllerOwnerKey(const nlohmann::json& object, const std::string& owner_kind);

void RouteOwnerEvents(Controller* controller, client::Informer* owners, Expectations* expectations);

// `expectations` may be null (an owner that does not count its dependents' creations, such as
// the Deployment controller for ReplicaSets).
void RouteOwnedEvents(Controller* controller, client::Informer* dependents,
                      client::Informer* owners, const std::string& owner_kind,
                      Expectations* expectations);

// Sets (owner != nullptr) or removes the controller reference of `object` (a `resource`),
// keeping its other ownerReferences. A merge patch guarded by the object's resourceVersion and
// carrying its uid, so a concurrent change or a re-created object is not overwritten (Conflict
// comes back as an error; the caller's reconcile retries). NotFound counts as done.
Status SetControllerRef(client::Client& api, const client::ResourceRef& resource,
                        const nlohmann::json& object, const nlohmann::json* owner);

// One claim pass for one owner, made per reconcile (not thread-safe; not kept across reconciles).
//  - `owner`: the controlling object as cached. `owner_resource`: its resource, for the fresh
//    GET before the first adoption (upstream's RecheckDeletionTimestamp: the stored owner must
//    have the same uid and no deletionTimestamp, else nothing is adopted and Claim fails).
//  - `selector`: the owner's label selector (null/empty matches nothing).
class ControllerRefManager {
 public:
  ControllerRefManager(client::Client& api, const client::ResourceRef& owner_resource,
                       const nlohmann::json& owner, nlohmann::json selector);

  // Claims `candidates` (objects of `resource` in the owner's namespace) and returns those the
  // owner controls afterwards, in order:
  //  - controlled by another owner: ignored;
  //  - ours and matching: kept; ours and not matching: released (not while the owner is being
  //    deleted, when it is simply left out);
  //  - an orphan that matches, not being deleted, while the owner is not being deleted: adopted
  //    (the returned object is the patched one, with its new reference).
  // Every candidate is tried; the first failure (the recheck, a Conflict) is returned in
  // `status` with what was claimed anyway, and the caller should retry its reconcile.
  struct Claimed {
    std::vector<client::ObjectPtr> objects;
    Status status;
  };
  Claimed Claim(const client::ResourceRef& resource,
                const std::vector<client::ObjectPtr>& candidates);

 private:
  // The recheck, made once per manager (its outcome is remembered).
  Status CanAdopt();
  Status Adopt(const client::ResourceRef& resource, const nlohmann::json& object,
               client::ObjectPtr* adopted);

  client::Client& api_;
  const client::ResourceRef owner_resource_;
  const nlohmann::json& owner_;  // the caller's; outlives the manager
  nlohmann::json selector_;
  std::optional<Status> can_adopt_;
};

}  // namespace mk8s::controllers
