// Who is calling: x509 client certificates (verified against the cluster CA by the TLS layer),
// static bearer tokens (known_tokens.csv, re-read when it changes) and ServiceAccount JWTs signed
// by the API server. Immutable after construction (the token file reloads itself); thread-safe.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "apiserver/http/http_types.h"
#include "apiserver/registry/rest_storage.h"

namespace mk8s::pki {
class TokenFile;
class JwtVerifier;
}  // namespace mk8s::pki

namespace mk8s::apiserver {

enum class AuthOutcome { kAuthenticated, kAnonymous, kRejected };

class Authenticator {
 public:
  // Pointers are not owned and must outlive the authenticator; either may be null.
  Authenticator(const pki::TokenFile* tokens, const pki::JwtVerifier* service_accounts);

  // kRejected when a bearer token is present but invalid or expired (a 401, never anonymous).
  AuthOutcome Authenticate(const http::Request& request, UserInfo* user) const;

 private:
  const pki::TokenFile* tokens_;
  const pki::JwtVerifier* service_accounts_;
};

}  // namespace mk8s::apiserver
