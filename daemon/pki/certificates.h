// X.509 for the cluster: a self-signed CA, serving and client leaf certificates, parsing and
// verification. Keys are ECDSA P-256 (certificates) or RSA (service-account signing key).
//
// Everything crosses this interface as PEM strings in plain structs; OpenSSL stays in the .cc.
// Free functions are thread-safe. CertVerifier is immutable after Create() and may be shared by
// any number of threads (e.g. every TLS connection of the API server).
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

inline constexpr std::chrono::seconds kCaValidity{10LL * 365 * 24 * 3600};
inline constexpr std::chrono::seconds kLeafValidity{365LL * 24 * 3600};
// Certificates start this long before "now" so a peer whose clock lags still accepts them.
inline constexpr std::chrono::seconds kBackdate{5 * 60};

// A certificate and its private key (PKCS#8), both PEM.
struct KeyPair {
  std::string cert_pem;
  std::string key_pem;
};

struct CaOptions {
  std::string common_name = "mk8s-ca";
  std::chrono::seconds validity = kCaValidity;
  std::optional<TimePoint> not_before;  // unset: now - kBackdate
};

struct ServingCertOptions {
  std::string common_name = "kube-apiserver";
  std::vector<std::string> organizations;  // subject O entries (kubelets: {"system:nodes"})
  std::vector<std::string> dns_names;      // subjectAltName DNS entries
  std::vector<std::string> ip_addresses;   // IPv4 or IPv6 text, e.g. "10.152.183.1", "::1"
  std::chrono::seconds validity = kLeafValidity;
  std::optional<TimePoint> not_before;
};

struct ClientCertOptions {
  std::string user;                 // subject CN, e.g. "admin", "system:node:n1"
  std::vector<std::string> groups;  // subject O entries, e.g. {"system:masters"}
  std::chrono::seconds validity = kLeafValidity;
  std::optional<TimePoint> not_before;
};

// Self-signed CA: basicConstraints CA:TRUE (critical), keyUsage keyCertSign+cRLSign (critical).
Result<KeyPair> CreateCa(const CaOptions& options = {});
// serverAuth leaf signed by `ca`. At least one SAN is required.
Result<KeyPair> IssueServingCert(const KeyPair& ca, const ServingCertOptions& options);
// serverAuth leaf signed by `ca` for an existing public key (SubjectPublicKeyInfo PEM, or the
// key of a CSR: see csr.h); returns the certificate PEM. The private key never comes here.
Result<std::string> IssueServingCertForKey(const KeyPair& ca, std::string_view public_key_pem,
                                           const ServingCertOptions& options);
// clientAuth leaf signed by `ca`.
Result<KeyPair> IssueClientCert(const KeyPair& ca, const ClientCertOptions& options);

// New private keys, PKCS#8 PEM.
Result<std::string> GenerateEcKeyPem();  // P-256
Result<std::string> GenerateRsaKeyPem(int bits = 2048);
// The SubjectPublicKeyInfo PEM of a private key PEM.
Result<std::string> PublicKeyPem(std::string_view private_key_pem);
// True when the certificate's public key belongs to the private key.
Result<bool> CertMatchesKey(std::string_view cert_pem, std::string_view key_pem);

struct CertInfo {
  std::string common_name;                 // first subject CN (empty if none)
  std::vector<std::string> organizations;  // every subject O, in order
  std::vector<std::string> dns_names;      // subjectAltName DNS entries
  std::vector<std::string> ip_addresses;   // subjectAltName IPs, canonical text form
  TimePoint not_before;
  TimePoint not_after;
  bool is_ca = false;      // basicConstraints CA:TRUE
  std::string serial_hex;  // upper-case hex, as OpenSSL prints it
};

// Accepts PEM or DER.
Result<CertInfo> ParseCertificate(std::string_view cert_pem_or_der);

enum class Usage { kAny, kServer, kClient };

// Verifies leaf -> CA (signature, validity at `now`, CA flags, and the EKU for `usage`).
Status VerifyCertificate(std::string_view leaf_pem_or_der, std::string_view ca_pem, TimePoint now,
                         Usage usage = Usage::kAny);

// The API server's x509 client-certificate authenticator: verifies against the CA (clientAuth)
// and maps CN -> user, O -> groups, as Kubernetes does. Immutable after Create(); thread-safe.
class CertVerifier {
 public:
  // `ca_bundle_pem` may hold several CA certificates.
  static Result<std::unique_ptr<CertVerifier>> Create(std::string_view ca_bundle_pem);
  ~CertVerifier();
  CertVerifier(const CertVerifier&) = delete;
  CertVerifier& operator=(const CertVerifier&) = delete;

  Status Verify(std::string_view leaf_pem_or_der, TimePoint now, Usage usage) const;
  // kInvalidArgument when the cert is unparsable, rejected, a CA, or has no CN.
  Result<UserInfo> Authenticate(std::string_view client_cert_pem_or_der, TimePoint now) const;

 private:
  struct Impl;
  explicit CertVerifier(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// One-shot form of CertVerifier::Authenticate.
Result<UserInfo> AuthenticateClientCert(std::string_view client_cert_pem_or_der,
                                        std::string_view ca_pem, TimePoint now);

}  // namespace mk8s::pki
