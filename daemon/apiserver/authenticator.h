// Who is calling: x509 client certificates (verified against the cluster CA by the TLS layer),
// static bearer tokens (known_tokens.csv) and ServiceAccount JWTs signed by the API server.
// Immutable after construction; thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "apiserver/http/http_types.h"
#include "apiserver/registry/rest_storage.h"

namespace mk8s::pki {
class StaticTokens;
class JwtVerifier;
}  // namespace mk8s::pki

namespace mk8s::apiserver {

enum class AuthOutcome { kAuthenticated, kAnonymous, kRejected };

class Authenticator {
 public:
  // Pointers are not owned and must outlive the authenticator; either may be null.
  Authenticator(const pki::StaticTokens* tokens, const pki::JwtVerifier* service_accounts);

  // kRejected when a bearer token is present but invalid or expired (a 401, never anonymous).
  AuthOutcome Authenticate(const http::Request& request, UserInfo* user) const;

 private:
  const pki::StaticTokens* tokens_;
  const pki::JwtVerifier* service_accounts_;
};

}  // namespace mk8s::apiserver
