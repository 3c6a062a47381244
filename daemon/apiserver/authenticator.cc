#include "apiserver/authenticator.h"

#include "pki/jwt.h"
#include "pki/token_file.h"

namespace mk8s::apiserver {

Authenticator::Authenticator(const pki::TokenFile* tokens, const pki::JwtVerifier* service_accounts)
    : tokens_(tokens), service_accounts_(service_accounts) {}

AuthOutcome Authenticator::Authenticate(const http::Request& request, UserInfo* user) const {
  const std::string_view authorization = request.HeaderValue("authorization");
  if (!authorization.empty()) {
    constexpr std::string_view kBearer = "Bearer ";
    if (authorization.size() <= kBearer.size() ||
        authorization.substr(0, kBearer.size()) != kBearer) {
      return AuthOutcome::kRejected;
    }
    const std::string_view token = authorization.substr(kBearer.size());
    if (tokens_ != nullptr) {
      if (auto found = tokens_->Lookup(token)) {
        *user = UserInfo{found->user, found->uid, found->groups};
        user->groups.push_back("system:authenticated");
        return AuthOutcome::kAuthenticated;
      }
    }
    if (service_accounts_ != nullptr && token.find('.') != std::string_view::npos) {
      auto verified = service_accounts_->Verify(token);
      if (verified.ok()) {
        *user = UserInfo{verified->user.user, verified->user.uid, verified->user.groups};
        user->groups.push_back("system:authenticated");
        return AuthOutcome::kAuthenticated;
      }
    }
    return AuthOutcome::kRejected;
  }
  if (request.peer.verified) {
    *user = UserInfo{request.peer.common_name, "", request.peer.organizations};
    user->groups.push_back("system:authenticated");
    return AuthOutcome::kAuthenticated;
  }
  return AuthOutcome::kAnonymous;
}

}  // namespace mk8s::apiserver
