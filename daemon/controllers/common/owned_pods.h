// Event routing shared by the workload controllers that own pods (ReplicaSet, Job, DaemonSet).
//
//  - Owner events: any change queues the owner; a delete also forgets its expectations.
//  - Pod events: a pod with a controller reference of `owner_kind` counts toward that owner's
//    expectations (creation on add, deletion on delete) and queues it. An orphan queues every
//    owner in its namespace whose selector matches, so one of them may adopt it. A pod whose
//    owner changed (relabelled, released) queues both the old and the new one.
//
// Handlers run on the informers' dispatch threads and only count and enqueue. `controller`,
// `owners` and `expectations` must outlive the handlers (the controller's lifetime).
#pragma once

#include <string>

#include <nlohmann/json_fwd.hpp>

#include "client/informer.h"
#include "controllers/common/expectations.h"
#include "controllers/controller.h"

namespace mk8s::controllers {

// "namespace/name" of the pod's controller owner when it is of `owner_kind`, else "".
std::string ControllerOwnerKey(const nlohmann::json& pod, const std::string& owner_kind);

void RouteOwnerEvents(Controller* controller, client::Informer* owners,
                      Expectations* expectations);

void RouteOwnedPodEvents(Controller* controller, client::Informer* pods,
                         client::Informer* owners, const std::string& owner_kind,
                         Expectations* expectations);

}  // namespace mk8s::controllers
