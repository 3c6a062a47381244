// ServiceAccount tokens: RS256 JWTs (RFC 7519 / 7515 compact form) as Kubernetes issues them.
//
// Header {"alg":"RS256","kid":<KeyId>}; claims iss, sub, aud (array), exp, iat, nbf, jti and
//   "kubernetes.io": {"namespace", "serviceaccount": {"name","uid"}, "pod": {"name","uid"}?}.
// JwtSigner and JwtVerifier are immutable after Create() and thread-safe.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "pki/user_info.h"

namespace mk8s::pki {

using TimePoint = std::chrono::system_clock::time_point;

inline constexpr const char* kDefaultIssuer = "https://kubernetes.default.svc.cluster.local";
// Extra keys Kubernetes puts into user.Info for pod-bound tokens.
inline constexpr const char* kExtraPodName = "authentication.kubernetes.io/pod-name";
inline constexpr const char* kExtraPodUid = "authentication.kubernetes.io/pod-uid";
inline constexpr const char* kExtraCredentialId = "authentication.kubernetes.io/credential-id";

struct ServiceAccountClaims {
  std::string issuer = kDefaultIssuer;
  std::vector<std::string> audiences = {kDefaultIssuer};
  std::string namespace_name;
  std::string service_account_name;
  std::string service_account_uid;
  std::string pod_name;  // optional: empty = not bound to a pod
  std::string pod_uid;
  TimePoint issued_at;   // iat and nbf
  TimePoint expires_at;  // exp
  std::string jti;       // token id; Sign() generates one when empty
};

// "system:serviceaccount:<ns>:<name>"
std::string ServiceAccountUser(std::string_view ns, std::string_view name);

// Claims for a new token valid from `now` for `ttl` (Kubernetes' default is 1 hour).
ServiceAccountClaims MakeServiceAccountClaims(std::string_view ns, std::string_view name,
                                              std::string_view uid, TimePoint now,
                                              std::chrono::seconds ttl = std::chrono::hours(1));

// The Kubernetes key id: base64url(SHA-256(SubjectPublicKeyInfo DER)). Takes a public or private
// key PEM.
Result<std::string> KeyId(std::string_view key_pem);

class JwtSigner {
 public:
  // `rsa_private_key_pem`: RSA, at least 2048 bits (e.g. serviceaccount.key).
  static Result<std::unique_ptr<JwtSigner>> Create(std::string_view rsa_private_key_pem);
  ~JwtSigner();
  JwtSigner(const JwtSigner&) = delete;
  JwtSigner& operator=(const JwtSigner&) = delete;

  const std::string& key_id() const;
  Result<std::string> Sign(const ServiceAccountClaims& claims) const;
  // Signs an arbitrary claims object given as JSON text (must be an object).
  Result<std::string> SignJson(std::string_view claims_json) const;

 private:
  struct Impl;
  explicit JwtSigner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

struct JwtVerifyOptions {
  std::vector<std::string> issuers = {kDefaultIssuer};    // iss must be one of these
  std::vector<std::string> audiences = {kDefaultIssuer};  // aud must share one; empty: no check
  std::optional<TimePoint> now;                           // unset: the system clock (test seam)
  std::chrono::seconds leeway{60};                        // clock skew allowed for exp/nbf/iat
};

struct VerifiedToken {
  UserInfo user;  // system:serviceaccount:<ns>:<name>, groups system:serviceaccounts[:<ns>]
  ServiceAccountClaims claims;
};

class JwtVerifier {
 public:
  // Public or private RSA key PEMs; a token is accepted if any key verifies it (keys whose kid
  // matches the token's kid are tried first).
  static Result<std::unique_ptr<JwtVerifier>> Create(const std::vector<std::string>& key_pems);
  ~JwtVerifier();
  JwtVerifier(const JwtVerifier&) = delete;
  JwtVerifier& operator=(const JwtVerifier&) = delete;

  // kInvalidArgument for a malformed, forged, expired or misdirected token (message says which).
  Result<VerifiedToken> Verify(std::string_view token, const JwtVerifyOptions& options = {}) const;
  // Checks the header (alg RS256 only) and the signature; returns the claims JSON text.
  Result<std::string> VerifySignature(std::string_view token) const;

 private:
  struct Impl;
  explicit JwtVerifier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace mk8s::pki
