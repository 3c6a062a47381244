// serviceaccounts/<name>/token (TokenRequest): short-lived RS256 JWTs for a ServiceAccount,
// optionally bound to a pod, verified later by the API server's own authenticator.
#include "apiserver/body_codec.h"
#include "apiserver/registry/cached_object.h"
#include "apiserver/registry/object_meta.h"
#include "apiserver/registry/rest_storage.h"
#include "pki/jwt.h"
#include "store/store.h"

namespace mk8s::apiserver {
namespace {

using nlohmann::json;

constexpr int64_t kDefaultExpirationSeconds = 3600;
constexpr int64_t kMinExpirationSeconds = 600;
constexpr int64_t kMaxExpirationSeconds = 48 * 3600;

}  // namespace

void RestStorage::CreateToken(const RestRequest& request,
                              std::shared_ptr<http::Responder> responder) {
  const std::string& ns = request.info.namespace_;
  const std::string& name = request.info.name;
  json token_request = json::object();
  if (!request.http.body.empty()) {
    if (auto error = DecodeBody(request.http.HeaderValue("content-type"), request.http.body,
                                &token_request)) {
      return SendError(*responder, *error);
    }
  }
  Result<store::KeyValue> kv = store_->Get(Key(*request.resource, ns, name));
  if (!kv.ok()) return SendError(*responder, ApiError::NotFound("", "serviceaccounts", name));
  const json account = ParseStoredObject(kv->value, kv->mod_rev);
  if (token_signer_ == nullptr) {
    return SendError(*responder, ApiError::ServiceUnavailable("token signing is not configured"));
  }
  const json spec = token_request.value("spec", json::object());
  int64_t expiration = spec.value("expirationSeconds", kDefaultExpirationSeconds);
  if (expiration < kMinExpirationSeconds) {
    return SendError(*responder, ApiError::Invalid("authentication.k8s.io", "TokenRequest", name,
                                                   {{"FieldValueInvalid",
                                                     "may not specify a duration less than 10 minutes",
                                                     "spec.expirationSeconds"}}));
  }
  expiration = std::min(expiration, kMaxExpirationSeconds);
  const auto now = std::chrono::system_clock::now();
  pki::ServiceAccountClaims claims = pki::MakeServiceAccountClaims(
      ns, name, account["metadata"].value("uid", ""), now, std::chrono::seconds(expiration));
  if (spec.contains("audiences") && spec["audiences"].is_array() && !spec["audiences"].empty()) {
    claims.audiences.clear();
    for (const json& audience : spec["audiences"]) {
      if (audience.is_string()) claims.audiences.push_back(audience.get<std::string>());
    }
  }
  const json bound = spec.value("boundObjectRef", json::object());
  if (bound.value("kind", "") == "Pod") {
    claims.pod_name = bound.value("name", "");
    claims.pod_uid = bound.value("uid", "");
  }
  Result<std::string> token = token_signer_->Sign(claims);
  if (!token.ok()) return SendError(*responder, ApiError::Internal(token.status().message()));

  json reply = {{"kind", "TokenRequest"},
                {"apiVersion", "authentication.k8s.io/v1"},
                {"metadata", {{"name", name}, {"namespace", ns},
                              {"creationTimestamp", FormatTime(now)}}},
                {"spec", {{"audiences", claims.audiences}, {"expirationSeconds", expiration},
                          {"boundObjectRef", spec.contains("boundObjectRef") ? spec["boundObjectRef"] : json()}}},
                {"status", {{"token", *token},
                            {"expirationTimestamp", FormatTime(claims.expires_at)}}}};
  SendJson(*responder, 201, reply.dump());
}

}  // namespace mk8s::apiserver
