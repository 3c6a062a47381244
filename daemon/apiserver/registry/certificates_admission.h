// Admission for certificates.k8s.io/v1 CertificateSigningRequests, as upstream's CSR strategy:
// the API server stamps the requester into spec (username, uid, groups), the spec is immutable,
// Approved/Denied conditions change only through /approval and the certificate only through
// /status (once set it never changes). mk8s also refuses, at create, a
// kubernetes.io/kubelet-serving request that breaks that signer's rules or that a node makes for
// another node (pki/csr.h), so a hostile request fails with a Status at once.
// Pure functions; thread-safe.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "apiserver/api_error.h"

namespace mk8s::apiserver {

struct UserInfo;

// A new CSR from `requester` (null: unknown, refused). Fills spec.username/uid/groups (and
// drops a client-supplied spec.extra), status = {} and validates.
std::optional<ApiError> AdmitCsrCreate(nlohmann::json& csr, const UserInfo* requester);

// An update of `old` through `subresource` ("", "status" or "approval"); `csr` is the object
// about to be stored (the generic storage already kept the spec for the status writes).
std::optional<ApiError> AdmitCsrUpdate(nlohmann::json& csr, const nlohmann::json& old,
                                       const std::string& subresource);

}  // namespace mk8s::apiserver
