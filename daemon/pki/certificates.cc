// X.509 generation, parsing and verification with the OpenSSL 3 EVP/X509 APIs.
#include "pki/certificates.h"

#include <arpa/inet.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <ctime>

#include "pki/encoding.h"
#include "pki/openssl_util.h"

namespace mk8s::pki {
namespace {

using internal::OpenSslError;
using internal::PkeyPtr;
using internal::X509Ptr;

Status Fail(Code code, std::string_view what) { return Status(code, OpenSslError(what)); }

struct StoreFree {
  void operator()(X509_STORE* p) const { X509_STORE_free(p); }
};
struct StoreCtxFree {
  void operator()(X509_STORE_CTX* p) const { X509_STORE_CTX_free(p); }
};
struct GensFree {
  void operator()(GENERAL_NAMES* p) const { GENERAL_NAMES_free(p); }
};
struct BnFree {
  void operator()(BIGNUM* p) const { BN_free(p); }
};

// DNS SAN entries: printable ASCII without spaces or commas (keeps them sane in any tooling).
bool ValidDnsName(const std::string& name) {
  if (name.empty() || name.size() > 253) return false;
  for (char c : name) {
    if (c <= ' ' || c >= 127 || c == ',') return false;
  }
  return true;
}

Status AddConfExtension(X509* cert, X509V3_CTX* ctx, int nid, const char* value) {
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, ctx, nid, value);
  if (!ext) return Fail(Code::kInternal, std::string("cannot build extension ") + OBJ_nid2sn(nid));
  int ok = X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
  if (ok != 1) return Fail(Code::kInternal, "cannot add extension");
  return Status::Ok();
}

Status AddSans(X509* cert, const std::vector<std::string>& dns,
               const std::vector<std::string>& ips) {
  std::unique_ptr<GENERAL_NAMES, GensFree> gens(sk_GENERAL_NAME_new_null());
  if (!gens) return Fail(Code::kInternal, "out of memory");
  for (const std::string& name : dns) {
    if (!ValidDnsName(name))
      return Status(Code::kInvalidArgument, "invalid DNS subjectAltName \"" + name + "\"");
    ASN1_IA5STRING* str = ASN1_IA5STRING_new();
    GENERAL_NAME* gen = GENERAL_NAME_new();
    if (!str || !gen || ASN1_STRING_set(str, name.data(), int(name.size())) != 1) {
      ASN1_IA5STRING_free(str);
      GENERAL_NAME_free(gen);
      return Fail(Code::kInternal, "cannot build DNS name");
    }
    GENERAL_NAME_set0_value(gen, GEN_DNS, str);
    sk_GENERAL_NAME_push(gens.get(), gen);
  }
  for (const std::string& ip : ips) {
    ASN1_OCTET_STRING* bytes = a2i_IPADDRESS(ip.c_str());
    if (!bytes) {
      ERR_clear_error();
      return Status(Code::kInvalidArgument, "invalid IP subjectAltName \"" + ip + "\"");
    }
    GENERAL_NAME* gen = GENERAL_NAME_new();
    if (!gen) {
      ASN1_OCTET_STRING_free(bytes);
      return Fail(Code::kInternal, "out of memory");
    }
    GENERAL_NAME_set0_value(gen, GEN_IPADD, bytes);
    sk_GENERAL_NAME_push(gens.get(), gen);
  }
  if (X509_add1_ext_i2d(cert, NID_subject_alt_name, gens.get(), 0, X509V3_ADD_DEFAULT) != 1)
    return Fail(Code::kInternal, "cannot add subjectAltName");
  return Status::Ok();
}

Status SetRandomSerial(X509* cert) {
  std::string bytes = RandomBytes(16);
  if (bytes.size() != 16) return Fail(Code::kInternal, "no randomness for the serial number");
  bytes[0] = char((uint8_t(bytes[0]) & 0x7f) | 0x40);  // positive, full 127-bit width
  std::unique_ptr<BIGNUM, BnFree> bn(
      BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()), 16, nullptr));
  if (!bn || !BN_to_ASN1_INTEGER(bn.get(), X509_get_serialNumber(cert)))
    return Fail(Code::kInternal, "cannot set serial number");
  return Status::Ok();
}

struct CertSpec {
  std::string common_name;
  std::vector<std::string> organizations;
  TimePoint not_before;
  std::chrono::seconds validity;
  enum { kCa, kServer, kClient } kind;
  std::vector<std::string> dns, ips;
};

// Builds and signs a certificate for `subject_key`. `issuer`/`issuer_key` null: self-signed.
Result<X509Ptr> BuildCert(const CertSpec& spec, EVP_PKEY* subject_key, X509* issuer,
                          EVP_PKEY* issuer_key) {
  ERR_clear_error();
  if (spec.validity.count() <= 0) return Status(Code::kInvalidArgument, "validity must be > 0");
  X509Ptr cert(X509_new());
  if (!cert || X509_set_version(cert.get(), 2) != 1) return Fail(Code::kInternal, "X509_new");
  if (Status s = SetRandomSerial(cert.get()); !s.ok()) return s;

  time_t nb = std::chrono::system_clock::to_time_t(spec.not_before);
  time_t na = nb + time_t(spec.validity.count());
  if (!ASN1_TIME_set(X509_getm_notBefore(cert.get()), nb) ||
      !ASN1_TIME_set(X509_getm_notAfter(cert.get()), na))
    return Fail(Code::kInternal, "cannot set validity");

  X509_NAME* name = X509_get_subject_name(cert.get());
  for (const std::string& org : spec.organizations) {
    if (X509_NAME_add_entry_by_NID(name, NID_organizationName, MBSTRING_UTF8,
                                   reinterpret_cast<const unsigned char*>(org.data()),
                                   int(org.size()), -1, 0) != 1)
      return Fail(Code::kInvalidArgument, "invalid organization \"" + org + "\"");
  }
  if (X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(spec.common_name.data()),
                                 int(spec.common_name.size()), -1, 0) != 1)
    return Fail(Code::kInvalidArgument, "invalid common name \"" + spec.common_name + "\"");
  X509_NAME* issuer_name = issuer ? X509_get_subject_name(issuer) : name;
  if (X509_set_issuer_name(cert.get(), issuer_name) != 1 ||
      X509_set_pubkey(cert.get(), subject_key) != 1)
    return Fail(Code::kInternal, "cannot set issuer or key");

  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
  X509V3_set_ctx_nodb(&ctx);
  std::vector<std::pair<int, const char*>> exts;
  switch (spec.kind) {
    case CertSpec::kCa:
      exts = {{NID_basic_constraints, "critical,CA:TRUE"},
              {NID_key_usage, "critical,keyCertSign,cRLSign,digitalSignature"}};
      break;
    case CertSpec::kServer:
      exts = {{NID_basic_constraints, "critical,CA:FALSE"},
              {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
              {NID_ext_key_usage, "serverAuth"}};
      break;
    case CertSpec::kClient:
      exts = {{NID_basic_constraints, "critical,CA:FALSE"},
              {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
              {NID_ext_key_usage, "clientAuth"}};
      break;
  }
  // The subject key id must exist before the authority key id (self-signed AKID reads it).
  exts.push_back({NID_subject_key_identifier, "hash"});
  exts.push_back({NID_authority_key_identifier, "keyid:always"});
  for (const auto& [nid, value] : exts) {
    if (Status s = AddConfExtension(cert.get(), &ctx, nid, value); !s.ok()) return s;
  }
  if (spec.kind == CertSpec::kServer || !spec.dns.empty() || !spec.ips.empty()) {
    if (spec.dns.empty() && spec.ips.empty())
      return Status(Code::kInvalidArgument, "a serving certificate needs at least one SAN");
    if (Status s = AddSans(cert.get(), spec.dns, spec.ips); !s.ok()) return s;
  }
  if (X509_sign(cert.get(), issuer_key ? issuer_key : subject_key, EVP_sha256()) <= 0)
    return Fail(Code::kInternal, "cannot sign certificate");
  return cert;
}

// A signing CA, parsed: its certificate and the private key that belongs to it.
struct ParsedCa {
  X509Ptr cert;
  PkeyPtr key;
};

Result<ParsedCa> LoadCa(const KeyPair& ca) {
  auto ca_cert = internal::ParseCert(ca.cert_pem);
  if (!ca_cert.ok()) return ca_cert.status();
  auto ca_key = internal::ParsePrivateKey(ca.key_pem);
  if (!ca_key.ok()) return ca_key.status();
  if (EVP_PKEY_eq(X509_get0_pubkey(ca_cert->get()), ca_key->get()) != 1)
    return Status(Code::kInvalidArgument, "the CA key does not belong to the CA certificate");
  return ParsedCa{std::move(*ca_cert), std::move(*ca_key)};
}

Result<KeyPair> IssueLeaf(const KeyPair& ca, const CertSpec& spec) {
  auto parsed_ca = LoadCa(ca);
  if (!parsed_ca.ok()) return parsed_ca.status();
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return Fail(Code::kInternal, "cannot generate EC key");
  auto cert = BuildCert(spec, key.get(), parsed_ca->cert.get(), parsed_ca->key.get());
  if (!cert.ok()) return cert.status();
  auto cert_pem = internal::CertToPem(cert->get());
  if (!cert_pem.ok()) return cert_pem.status();
  auto key_pem = internal::PrivateKeyToPem(key.get());
  if (!key_pem.ok()) return key_pem.status();
  return KeyPair{std::move(*cert_pem), std::move(*key_pem)};
}

TimePoint DefaultNotBefore(const std::optional<TimePoint>& nb) {
  return nb ? *nb : std::chrono::system_clock::now() - kBackdate;
}

std::string AsnToUtf8(const ASN1_STRING* str) {
  unsigned char* out = nullptr;
  int n = ASN1_STRING_to_UTF8(&out, str);
  if (n < 0) return {};
  std::string s(reinterpret_cast<char*>(out), size_t(n));
  OPENSSL_free(out);
  return s;
}

Result<TimePoint> AsnTime(const ASN1_TIME* t) {
  struct tm tm {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return Status(Code::kInvalidArgument, "invalid time field");
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

int PurposeFor(Usage usage) {
  switch (usage) {
    case Usage::kServer:
      return X509_PURPOSE_SSL_SERVER;
    case Usage::kClient:
      return X509_PURPOSE_SSL_CLIENT;
    case Usage::kAny:
      break;
  }
  return 0;
}

}  // namespace

Result<KeyPair> CreateCa(const CaOptions& options) {
  if (options.common_name.empty()) return Status(Code::kInvalidArgument, "CA needs a common name");
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return Fail(Code::kInternal, "cannot generate EC key");
  CertSpec spec{options.common_name,
                {},
                DefaultNotBefore(options.not_before),
                options.validity,
                CertSpec::kCa,
                {},
                {}};
  auto cert = BuildCert(spec, key.get(), nullptr, nullptr);
  if (!cert.ok()) return cert.status();
  auto cert_pem = internal::CertToPem(cert->get());
  if (!cert_pem.ok()) return cert_pem.status();
  auto key_pem = internal::PrivateKeyToPem(key.get());
  if (!key_pem.ok()) return key_pem.status();
  return KeyPair{std::move(*cert_pem), std::move(*key_pem)};
}

Result<KeyPair> IssueServingCert(const KeyPair& ca, const ServingCertOptions& options) {
  if (options.common_name.empty())
    return Status(Code::kInvalidArgument, "serving certificate needs a common name");
  CertSpec spec{options.common_name, options.organizations, DefaultNotBefore(options.not_before),
                options.validity,    CertSpec::kServer,     options.dns_names,
                options.ip_addresses};
  return IssueLeaf(ca, spec);
}

Result<std::string> IssueServingCertForKey(const KeyPair& ca, std::string_view public_key_pem,
                                           const ServingCertOptions& options) {
  if (options.common_name.empty())
    return Status(Code::kInvalidArgument, "serving certificate needs a common name");
  if (public_key_pem.find("PRIVATE KEY-----") != std::string_view::npos)
    return Status(Code::kInvalidArgument, "expected a public key, got a private key");
  auto parsed_ca = LoadCa(ca);
  if (!parsed_ca.ok()) return parsed_ca.status();
  auto subject_key = internal::ParsePublicOrPrivateKey(public_key_pem);
  if (!subject_key.ok()) return subject_key.status();
  CertSpec spec{options.common_name, options.organizations, DefaultNotBefore(options.not_before),
                options.validity,    CertSpec::kServer,     options.dns_names,
                options.ip_addresses};
  auto cert = BuildCert(spec, subject_key->get(), parsed_ca->cert.get(), parsed_ca->key.get());
  if (!cert.ok()) return cert.status();
  return internal::CertToPem(cert->get());
}

Result<KeyPair> IssueClientCert(const KeyPair& ca, const ClientCertOptions& options) {
  if (options.user.empty())
    return Status(Code::kInvalidArgument, "client certificate needs a user");
  CertSpec spec{options.user,
                options.groups,
                DefaultNotBefore(options.not_before),
                options.validity,
                CertSpec::kClient,
                {},
                {}};
  return IssueLeaf(ca, spec);
}

Result<std::string> GenerateEcKeyPem() {
  PkeyPtr key(EVP_EC_gen("P-256"));
  if (!key) return Fail(Code::kInternal, "cannot generate EC key");
  return internal::PrivateKeyToPem(key.get());
}

Result<std::string> GenerateRsaKeyPem(int bits) {
  if (bits < 2048 || bits > 8192)
    return Status(Code::kInvalidArgument, "RSA bits must be 2048..8192");
  PkeyPtr key(EVP_RSA_gen(static_cast<unsigned int>(bits)));
  if (!key) return Fail(Code::kInternal, "cannot generate RSA key");
  return internal::PrivateKeyToPem(key.get());
}

Result<std::string> PublicKeyPem(std::string_view private_key_pem) {
  auto key = internal::ParsePrivateKey(private_key_pem);
  if (!key.ok()) return key.status();
  return internal::PublicKeyToPem(key->get());
}

Result<bool> CertMatchesKey(std::string_view cert_pem, std::string_view key_pem) {
  auto cert = internal::ParseCert(cert_pem);
  if (!cert.ok()) return cert.status();
  auto key = internal::ParsePrivateKey(key_pem);
  if (!key.ok()) return key.status();
  return EVP_PKEY_eq(X509_get0_pubkey(cert->get()), key->get()) == 1;
}

Result<CertInfo> ParseCertificate(std::string_view cert_pem_or_der) {
  auto cert = internal::ParseCert(cert_pem_or_der);
  if (!cert.ok()) return cert.status();
  X509* x = cert->get();
  CertInfo info;
  const X509_NAME* name = X509_get_subject_name(x);
  for (int i = -1; (i = X509_NAME_get_index_by_NID(name, NID_commonName, i)) >= 0;) {
    if (info.common_name.empty())
      info.common_name = AsnToUtf8(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i)));
  }
  for (int i = -1; (i = X509_NAME_get_index_by_NID(name, NID_organizationName, i)) >= 0;) {
    info.organizations.push_back(AsnToUtf8(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, i))));
  }
  std::unique_ptr<GENERAL_NAMES, GensFree> gens(
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(x, NID_subject_alt_name, nullptr, nullptr)));
  for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens.get()); ++i) {
    const GENERAL_NAME* gen = sk_GENERAL_NAME_value(gens.get(), i);
    if (gen->type == GEN_DNS) {
      const ASN1_STRING* s = gen->d.dNSName;
      info.dns_names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                  size_t(ASN1_STRING_length(s)));
    } else if (gen->type == GEN_IPADD) {
      const ASN1_STRING* s = gen->d.iPAddress;
      int len = ASN1_STRING_length(s);
      char buf[INET6_ADDRSTRLEN] = {};
      int family = len == 4 ? AF_INET : len == 16 ? AF_INET6 : -1;
      if (family > 0 && inet_ntop(family, ASN1_STRING_get0_data(s), buf, sizeof(buf)))
        info.ip_addresses.emplace_back(buf);
    }
  }
  auto nb = AsnTime(X509_get0_notBefore(x));
  if (!nb.ok()) return nb.status();
  auto na = AsnTime(X509_get0_notAfter(x));
  if (!na.ok()) return na.status();
  info.not_before = *nb;
  info.not_after = *na;
  info.is_ca = (X509_get_extension_flags(x) & EXFLAG_CA) != 0;
  std::unique_ptr<BIGNUM, BnFree> bn(ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), nullptr));
  if (bn) {
    char* hex = BN_bn2hex(bn.get());
    if (hex) info.serial_hex = hex;
    OPENSSL_free(hex);
  }
  ERR_clear_error();
  return info;
}

// --- CertVerifier ---------------------------------------------------------------------------

struct CertVerifier::Impl {
  std::unique_ptr<X509_STORE, StoreFree> store;  // read-only after Create(); internally locked
};

CertVerifier::CertVerifier(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CertVerifier::~CertVerifier() = default;

Result<std::unique_ptr<CertVerifier>> CertVerifier::Create(std::string_view ca_bundle_pem) {
  ERR_clear_error();
  auto impl = std::make_unique<Impl>();
  impl->store.reset(X509_STORE_new());
  internal::BioPtr bio(BIO_new_mem_buf(ca_bundle_pem.data(), int(ca_bundle_pem.size())));
  if (!impl->store || !bio) return Fail(Code::kInternal, "out of memory");
  int count = 0;
  while (X509* raw = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    X509Ptr cert(raw);
    if ((X509_get_extension_flags(raw) & EXFLAG_CA) == 0)
      return Status(Code::kInvalidArgument, "the CA bundle holds a certificate that is not a CA");
    if (X509_STORE_add_cert(impl->store.get(), raw) != 1)
      return Fail(Code::kInternal, "cannot add CA certificate");
    ++count;
  }
  ERR_clear_error();  // the loop ends on "no start line"
  if (count == 0) return Status(Code::kInvalidArgument, "the CA bundle holds no PEM certificate");
  return std::unique_ptr<CertVerifier>(new CertVerifier(std::move(impl)));
}

Status CertVerifier::Verify(std::string_view leaf_pem_or_der, TimePoint now, Usage usage) const {
  auto leaf = internal::ParseCert(leaf_pem_or_der);
  if (!leaf.ok()) return leaf.status();
  std::unique_ptr<X509_STORE_CTX, StoreCtxFree> ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), impl_->store.get(), leaf->get(), nullptr) != 1)
    return Fail(Code::kInternal, "cannot set up verification");
  X509_STORE_CTX_set_time(ctx.get(), 0, std::chrono::system_clock::to_time_t(now));
  if (int purpose = PurposeFor(usage);
      purpose != 0 && X509_STORE_CTX_set_purpose(ctx.get(), purpose) != 1)
    return Fail(Code::kInternal, "cannot set purpose");
  if (X509_verify_cert(ctx.get()) != 1) {
    int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return Status(Code::kInvalidArgument,
                  std::string("certificate rejected: ") + X509_verify_cert_error_string(err));
  }
  return Status::Ok();
}

Result<UserInfo> CertVerifier::Authenticate(std::string_view client_cert_pem_or_der,
                                            TimePoint now) const {
  if (Status s = Verify(client_cert_pem_or_der, now, Usage::kClient); !s.ok()) return s;
  auto info = ParseCertificate(client_cert_pem_or_der);
  if (!info.ok()) return info.status();
  if (info->is_ca)
    return Status(Code::kInvalidArgument, "a CA certificate is not a client identity");
  if (info->common_name.empty())
    return Status(Code::kInvalidArgument, "client certificate has no common name");
  UserInfo user;
  user.user = info->common_name;
  user.groups = info->organizations;
  return user;
}

Result<UserInfo> AuthenticateClientCert(std::string_view client_cert_pem_or_der,
                                        std::string_view ca_pem, TimePoint now) {
  auto verifier = CertVerifier::Create(ca_pem);
  if (!verifier.ok()) return verifier.status();
  return (*verifier)->Authenticate(client_cert_pem_or_der, now);
}

Status VerifyCertificate(std::string_view leaf_pem_or_der, std::string_view ca_pem, TimePoint now,
                         Usage usage) {
  auto verifier = CertVerifier::Create(ca_pem);
  if (!verifier.ok()) return verifier.status();
  return (*verifier)->Verify(leaf_pem_or_der, now, usage);
}

}  // namespace mk8s::pki
