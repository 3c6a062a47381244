// RS256 JWT signing/verification with OpenSSL EVP; JSON through nlohmann (this file only).
#include "pki/jwt.h"

#include <openssl/err.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

#include "pki/encoding.h"
#include "pki/openssl_util.h"

namespace mk8s::pki {
namespace {

using internal::MdCtxPtr;
using internal::OpenSslError;
using internal::PkeyPtr;
using json = nlohmann::json;

constexpr size_t kMaxTokenSize = 64 * 1024;

Status Bad(const std::string& why) {
  return Status(Code::kInvalidArgument, "invalid token: " + why);
}

int64_t ToUnix(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}
TimePoint FromUnix(int64_t s) { return TimePoint(std::chrono::seconds(s)); }

Result<std::string> KeyIdOf(EVP_PKEY* key) {
  auto der = internal::PublicKeyToDer(key);
  if (!der.ok()) return der.status();
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(der->data(), der->size(), md, &len, EVP_sha256(), nullptr) != 1)
    return Status(Code::kInternal, OpenSslError("SHA-256"));
  return Base64UrlEncode(std::string_view(reinterpret_cast<char*>(md), len));
}

Status CheckRsa(EVP_PKEY* key) {
  if (EVP_PKEY_is_a(key, "RSA") != 1)
    return Status(Code::kInvalidArgument, "ServiceAccount keys must be RSA (RS256)");
  if (EVP_PKEY_get_bits(key) < 2048)
    return Status(Code::kInvalidArgument, "ServiceAccount RSA keys need at least 2048 bits");
  return Status::Ok();
}

// Reads a NumericDate claim; nullopt if absent, error if not a number.
Result<std::optional<int64_t>> NumericDate(const json& claims, const char* name) {
  auto it = claims.find(name);
  if (it == claims.end()) return std::optional<int64_t>();
  if (it->is_number_integer()) return std::optional<int64_t>(it->get<int64_t>());
  if (it->is_number_float() && std::isfinite(it->get<double>()))
    return std::optional<int64_t>(int64_t(std::floor(it->get<double>())));
  return Bad(std::string("claim \"") + name + "\" is not a number");
}

std::string StringAt(const json& obj, const char* key) {
  if (!obj.is_object()) return {};
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : std::string();
}

}  // namespace

std::string ServiceAccountUser(std::string_view ns, std::string_view name) {
  return "system:serviceaccount:" + std::string(ns) + ":" + std::string(name);
}

ServiceAccountClaims MakeServiceAccountClaims(std::string_view ns, std::string_view name,
                                              std::string_view uid, TimePoint now,
                                              std::chrono::seconds ttl) {
  ServiceAccountClaims c;
  c.namespace_name = ns;
  c.service_account_name = name;
  c.service_account_uid = uid;
  c.issued_at = now;
  c.expires_at = now + ttl;
  return c;
}

Result<std::string> KeyId(std::string_view key_pem) {
  auto key = internal::ParsePublicOrPrivateKey(key_pem);
  if (!key.ok()) return key.status();
  return KeyIdOf(key->get());
}

// --- JwtSigner ------------------------------------------------------------------------------

struct JwtSigner::Impl {
  PkeyPtr key;  // read-only after Create(): safe for concurrent signing
  std::string kid;
  std::string header;  // base64url of {"alg":"RS256","kid":...}
};

JwtSigner::JwtSigner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JwtSigner::~JwtSigner() = default;
const std::string& JwtSigner::key_id() const { return impl_->kid; }

Result<std::unique_ptr<JwtSigner>> JwtSigner::Create(std::string_view rsa_private_key_pem) {
  auto key = internal::ParsePrivateKey(rsa_private_key_pem);
  if (!key.ok()) return key.status();
  if (Status s = CheckRsa(key->get()); !s.ok()) return s;
  auto kid = KeyIdOf(key->get());
  if (!kid.ok()) return kid.status();
  auto impl = std::make_unique<Impl>();
  impl->key = std::move(*key);
  impl->kid = *kid;
  impl->header = Base64UrlEncode(json{{"alg", "RS256"}, {"kid", *kid}}.dump());
  return std::unique_ptr<JwtSigner>(new JwtSigner(std::move(impl)));
}

Result<std::string> JwtSigner::SignJson(std::string_view claims_json) const {
  json claims = json::parse(claims_json, nullptr, false);
  if (claims.is_discarded() || !claims.is_object())
    return Status(Code::kInvalidArgument, "JWT claims must be a JSON object");
  std::string input = impl_->header + "." + Base64UrlEncode(claims.dump());
  ERR_clear_error();
  MdCtxPtr ctx(EVP_MD_CTX_new());
  size_t len = 0;
  if (!ctx ||
      EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, impl_->key.get()) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                     input.size()) != 1)
    return Status(Code::kInternal, OpenSslError("cannot sign JWT"));
  std::string sig(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1)
    return Status(Code::kInternal, OpenSslError("cannot sign JWT"));
  sig.resize(len);
  return input + "." + Base64UrlEncode(sig);
}

Result<std::string> JwtSigner::Sign(const ServiceAccountClaims& c) const {
  if (c.namespace_name.empty() || c.service_account_name.empty())
    return Status(Code::kInvalidArgument, "a ServiceAccount token needs a namespace and a name");
  if (c.expires_at <= c.issued_at)
    return Status(Code::kInvalidArgument, "a ServiceAccount token must expire after it is issued");
  std::string jti = c.jti;
  if (jti.empty()) {
    std::string r = RandomBytes(16);
    if (r.size() != 16) return Status(Code::kInternal, "no randomness for the token id");
    jti = HexEncode(r);
  }
  json k8s = {
      {"namespace", c.namespace_name},
      {"serviceaccount", {{"name", c.service_account_name}, {"uid", c.service_account_uid}}}};
  if (!c.pod_name.empty()) k8s["pod"] = {{"name", c.pod_name}, {"uid", c.pod_uid}};
  json claims = {{"iss", c.issuer},
                 {"sub", ServiceAccountUser(c.namespace_name, c.service_account_name)},
                 {"aud", c.audiences},
                 {"exp", ToUnix(c.expires_at)},
                 {"iat", ToUnix(c.issued_at)},
                 {"nbf", ToUnix(c.issued_at)},
                 {"jti", jti},
                 {"kubernetes.io", k8s}};
  return SignJson(claims.dump());
}

// --- JwtVerifier ----------------------------------------------------------------------------

struct JwtVerifier::Impl {
  struct Key {
    PkeyPtr key;  // read-only after Create()
    std::string kid;
  };
  std::vector<Key> keys;
};

JwtVerifier::JwtVerifier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
JwtVerifier::~JwtVerifier() = default;

Result<std::unique_ptr<JwtVerifier>> JwtVerifier::Create(const std::vector<std::string>& pems) {
  auto impl = std::make_unique<Impl>();
  for (const std::string& pem : pems) {
    auto key = internal::ParsePublicOrPrivateKey(pem);
    if (!key.ok()) return key.status();
    if (Status s = CheckRsa(key->get()); !s.ok()) return s;
    auto kid = KeyIdOf(key->get());
    if (!kid.ok()) return kid.status();
    impl->keys.push_back({std::move(*key), std::move(*kid)});
  }
  if (impl->keys.empty()) return Status(Code::kInvalidArgument, "no ServiceAccount key given");
  return std::unique_ptr<JwtVerifier>(new JwtVerifier(std::move(impl)));
}

Result<std::string> JwtVerifier::VerifySignature(std::string_view token) const {
  if (token.size() > kMaxTokenSize) return Bad("too large");
  size_t d1 = token.find('.');
  size_t d2 = d1 == std::string_view::npos ? d1 : token.find('.', d1 + 1);
  if (d2 == std::string_view::npos || token.find('.', d2 + 1) != std::string_view::npos)
    return Bad("not a compact JWS (header.payload.signature)");
  auto header_text = Base64UrlDecode(token.substr(0, d1));
  auto payload_text = Base64UrlDecode(token.substr(d1 + 1, d2 - d1 - 1));
  auto sig = Base64UrlDecode(token.substr(d2 + 1));
  if (!header_text || !payload_text || !sig) return Bad("bad base64url encoding");
  json header = json::parse(*header_text, nullptr, false);
  if (header.is_discarded() || !header.is_object()) return Bad("header is not a JSON object");
  auto alg = header.find("alg");
  if (alg == header.end() || !alg->is_string() || alg->get<std::string>() != "RS256")
    return Bad("unsupported algorithm (only RS256 is accepted)");
  if (header.contains("crit")) return Bad("unsupported critical header");
  const std::string kid = StringAt(header, "kid");

  std::string_view input = token.substr(0, d2);
  // Keys with a matching kid first, then the rest (a rotated key may carry no kid).
  std::vector<const Impl::Key*> order;
  for (const auto& k : impl_->keys) {
    if (!kid.empty() && k.kid == kid) order.push_back(&k);
  }
  for (const auto& k : impl_->keys) {
    if (kid.empty() || k.kid != kid) order.push_back(&k);
  }
  for (const Impl::Key* k : order) {
    if (sig->size() != size_t(EVP_PKEY_get_size(k->key.get()))) continue;
    MdCtxPtr ctx(EVP_MD_CTX_new());
    if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr, k->key.get()) != 1)
      return Status(Code::kInternal, OpenSslError("cannot verify JWT"));
    int ok = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(sig->data()),
                              sig->size(), reinterpret_cast<const unsigned char*>(input.data()),
                              input.size());
    ERR_clear_error();
    if (ok == 1) return std::move(*payload_text);
  }
  return Bad("signature does not verify with any ServiceAccount key");
}

Result<VerifiedToken> JwtVerifier::Verify(std::string_view token,
                                          const JwtVerifyOptions& options) const {
  auto payload = VerifySignature(token);
  if (!payload.ok()) return payload.status();
  json claims = json::parse(*payload, nullptr, false);
  if (claims.is_discarded() || !claims.is_object()) return Bad("claims are not a JSON object");

  VerifiedToken out;
  ServiceAccountClaims& c = out.claims;
  c.issuer = StringAt(claims, "iss");
  if (std::find(options.issuers.begin(), options.issuers.end(), c.issuer) == options.issuers.end())
    return Bad("issuer \"" + c.issuer + "\" is not accepted");

  c.audiences.clear();
  if (auto aud = claims.find("aud"); aud != claims.end()) {
    if (aud->is_string()) {
      c.audiences.push_back(aud->get<std::string>());
    } else if (aud->is_array()) {
      for (const json& a : *aud) {
        if (a.is_string()) c.audiences.push_back(a.get<std::string>());
      }
    } else {
      return Bad("claim \"aud\" is neither a string nor an array");
    }
  }
  if (!options.audiences.empty()) {
    bool match = std::any_of(c.audiences.begin(), c.audiences.end(), [&](const std::string& a) {
      return std::find(options.audiences.begin(), options.audiences.end(), a) !=
             options.audiences.end();
    });
    if (!match) return Bad("no accepted audience");
  }

  const int64_t now = ToUnix(options.now ? *options.now : std::chrono::system_clock::now());
  const int64_t leeway = options.leeway.count();
  auto exp = NumericDate(claims, "exp");
  auto nbf = NumericDate(claims, "nbf");
  auto iat = NumericDate(claims, "iat");
  if (!exp.ok()) return exp.status();
  if (!nbf.ok()) return nbf.status();
  if (!iat.ok()) return iat.status();
  if (!*exp) return Bad("no expiry (\"exp\")");
  if (now > **exp + leeway) return Bad("expired");
  if (*nbf && now + leeway < **nbf) return Bad("not valid yet (\"nbf\")");
  if (*iat && now + leeway < **iat) return Bad("issued in the future (\"iat\")");
  c.expires_at = FromUnix(**exp);
  c.issued_at = FromUnix(*iat ? **iat : *nbf ? **nbf : 0);

  auto k8s = claims.find("kubernetes.io");
  if (k8s == claims.end() || !k8s->is_object()) return Bad("no \"kubernetes.io\" claim");
  c.namespace_name = StringAt(*k8s, "namespace");
  auto sa = k8s->find("serviceaccount");
  if (sa != k8s->end()) {
    c.service_account_name = StringAt(*sa, "name");
    c.service_account_uid = StringAt(*sa, "uid");
  }
  if (c.namespace_name.empty() || c.service_account_name.empty())
    return Bad("the \"kubernetes.io\" claim lacks the namespace or ServiceAccount name");
  if (auto pod = k8s->find("pod"); pod != k8s->end()) {
    c.pod_name = StringAt(*pod, "name");
    c.pod_uid = StringAt(*pod, "uid");
  }
  c.jti = StringAt(claims, "jti");
  const std::string user = ServiceAccountUser(c.namespace_name, c.service_account_name);
  if (StringAt(claims, "sub") != user) return Bad("\"sub\" does not match the ServiceAccount");

  out.user.user = user;
  out.user.uid = c.service_account_uid;
  out.user.groups = {"system:serviceaccounts", "system:serviceaccounts:" + c.namespace_name};
  if (!c.pod_name.empty()) {
    out.user.extra[kExtraPodName] = {c.pod_name};
    out.user.extra[kExtraPodUid] = {c.pod_uid};
  }
  if (!c.jti.empty()) out.user.extra[kExtraCredentialId] = {"JTI=" + c.jti};
  return out;
}

}  // namespace mk8s::pki
