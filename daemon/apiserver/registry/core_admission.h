// Admission for core/v1 objects that the kubelet consumes: the ServiceAccount token volume every
// pod gets (upstream's ServiceAccount admission plugin) and Secret stringData. Pure functions;
// thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apiserver/api_error.h"

namespace mk8s::apiserver {

// Unless spec.automountServiceAccountToken is false, or a container already mounts something at
// /var/run/secrets/kubernetes.io/serviceaccount: adds the projected volume
// `kube-api-access-<5 random chars>` (a serviceAccountToken of 3607 s at "token", the
// kube-root-ca.crt ConfigMap's ca.crt, and the namespace through the downward API) and mounts it
// read-only there in every init and app container. Call on pod create only.
void MountServiceAccountToken(nlohmann::json& pod_spec);

// Folds stringData into data (base64), as upstream's conversion does: stringData is write-only
// and never stored; its keys win over data's. A non-string value is a cause.
void FoldSecretStringData(nlohmann::json& secret, std::vector<StatusCause>* causes);

// A metav1.LabelSelector's matchExpressions as upstream validates them: a known operator, values
// for In/NotIn and none for Exists/DoesNotExist. `path` names the selector ("spec.selector").
// False when a problem was added to `causes`.
bool ValidateLabelSelector(const nlohmann::json& selector, const std::string& path,
                           std::vector<StatusCause>* causes);

}  // namespace mk8s::apiserver
