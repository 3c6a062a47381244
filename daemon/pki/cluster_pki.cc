// ClusterPki::LoadOrCreate: the credentials folder life cycle (see cluster_pki.h).
#include "pki/cluster_pki.h"

#include <arpa/inet.h>
#include <sys/stat.h>

#include <algorithm>

#include "pki/encoding.h"
#include "pki/file_util.h"
#include "pki/static_tokens.h"

namespace mk8s::pki {
namespace {

using internal::FileExists;
using internal::ReadFile;
using internal::WriteFileAtomic;

constexpr mode_t kDirMode = 0700;
constexpr mode_t kSecretMode = 0600;
constexpr mode_t kCertMode = 0644;
constexpr std::chrono::seconds kRenewBefore{30LL * 24 * 3600};

// "::0001" -> "::1"; text that is not an IP is returned unchanged (issuance rejects it later).
std::string CanonicalIp(const std::string& ip) {
  unsigned char buf[16];
  char out[INET6_ADDRSTRLEN];
  if (inet_pton(AF_INET, ip.c_str(), buf) == 1 && inet_ntop(AF_INET, buf, out, sizeof(out)))
    return out;
  if (inet_pton(AF_INET6, ip.c_str(), buf) == 1 && inet_ntop(AF_INET6, buf, out, sizeof(out)))
    return out;
  return ip;
}

void AddUnique(std::vector<std::string>& list, const std::string& value) {
  if (!value.empty() && std::find(list.begin(), list.end(), value) == list.end())
    list.push_back(value);
}

bool Contains(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

// Reads a cert/key pair; kNotFound when either file is missing.
Result<KeyPair> ReadPair(const ClusterPki& pki, const char* cert, const char* key) {
  auto c = ReadFile(pki.Path(cert));
  if (!c.ok()) return c.status();
  auto k = ReadFile(pki.Path(key));
  if (!k.ok()) return k.status();
  return KeyPair{std::move(*c), std::move(*k)};
}

Status WritePair(const ClusterPki& pki, const KeyPair& pair, const char* cert, const char* key) {
  // Key first: a crash in between leaves a mismatching pair, which the next start re-issues.
  if (Status s = WriteFileAtomic(pki.Path(key), pair.key_pem, kSecretMode); !s.ok()) return s;
  return WriteFileAtomic(pki.Path(cert), pair.cert_pem, kCertMode);
}

// True when `pair` is usable: key matches, chains to the CA for `usage`, and is not near expiry.
bool PairIsGood(const KeyPair& pair, const std::string& ca_pem, Usage usage, TimePoint now) {
  auto match = CertMatchesKey(pair.cert_pem, pair.key_pem);
  if (!match.ok() || !*match) return false;
  if (!VerifyCertificate(pair.cert_pem, ca_pem, now, usage).ok()) return false;
  auto info = ParseCertificate(pair.cert_pem);
  return info.ok() && info->not_after > now + kRenewBefore;
}

bool HasAllSans(const std::string& cert_pem, const ServingSans& required) {
  auto info = ParseCertificate(cert_pem);
  if (!info.ok()) return false;
  for (const std::string& dns : required.dns) {
    if (!Contains(info->dns_names, dns)) return false;
  }
  for (const std::string& ip : required.ips) {
    if (!Contains(info->ip_addresses, CanonicalIp(ip))) return false;
  }
  return true;
}

}  // namespace

ServingSans RequiredServingSans(const ServingSans& extra) {
  ServingSans out;
  for (const char* dns : {"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                          "kubernetes.default.svc.cluster.local"})
    AddUnique(out.dns, dns);
  for (const std::string& dns : extra.dns) AddUnique(out.dns, dns);
  for (const char* ip : {"127.0.0.1", "10.152.183.1"}) AddUnique(out.ips, ip);
  for (const std::string& ip : extra.ips) AddUnique(out.ips, CanonicalIp(ip));
  return out;
}

std::string ClusterPki::Path(std::string_view file) const { return dir_ + "/" + std::string(file); }

Result<ClusterPki> ClusterPki::LoadOrCreate(const std::string& credentials_dir,
                                            const ServingSans& extra_sans) {
  if (credentials_dir.empty())
    return Status(Code::kInvalidArgument, "credentials folder path is empty");
  if (Status s = internal::EnsureDir(credentials_dir, kDirMode); !s.ok()) return s;
  ClusterPki pki;
  pki.dir_ = credentials_dir;
  const TimePoint now = std::chrono::system_clock::now();
  // Tighten modes of secrets left by an older version or a restore (best effort).
  for (const char* f : {kCaKey, kServerKey, kAdminKey, kServiceAccountKey, kTokenFile}) {
    if (FileExists(pki.Path(f))) ::chmod(pki.Path(f).c_str(), kSecretMode);
  }

  // 1. The CA. Never replaced silently: half a CA is an error the operator must resolve.
  bool have_ca_cert = FileExists(pki.Path(kCaCert));
  bool have_ca_key = FileExists(pki.Path(kCaKey));
  if (have_ca_cert && have_ca_key) {
    auto ca = ReadPair(pki, kCaCert, kCaKey);
    if (!ca.ok()) return ca.status();
    auto match = CertMatchesKey(ca->cert_pem, ca->key_pem);
    if (!match.ok() || !*match)
      return Status(Code::kInternal, pki.Path(kCaCert) + " and " + pki.Path(kCaKey) +
                                         " do not match: restore both from a backup, or delete "
                                         "the whole credentials folder to create a new cluster CA");
    auto info = ParseCertificate(ca->cert_pem);
    if (!info.ok() || !info->is_ca)
      return Status(Code::kInternal, pki.Path(kCaCert) + " is not a CA certificate");
    pki.ca_ = std::move(*ca);
  } else if (!have_ca_cert && !have_ca_key) {
    auto ca = CreateCa();
    if (!ca.ok()) return ca.status();
    if (Status s = WritePair(pki, *ca, kCaCert, kCaKey); !s.ok()) return s;
    pki.ca_ = std::move(*ca);
    pki.created_ca_ = true;
  } else {
    return Status(Code::kInternal,
                  "only one of " + pki.Path(kCaCert) + " and " + pki.Path(kCaKey) +
                      " exists: restore the missing file, or delete the whole credentials folder "
                      "to create a new cluster CA");
  }

  // 2. The serving certificate.
  const ServingSans required = RequiredServingSans(extra_sans);
  {
    auto server = ReadPair(pki, kServerCert, kServerKey);
    bool good = !pki.created_ca_ && server.ok() &&
                PairIsGood(*server, pki.ca_.cert_pem, Usage::kServer, now) &&
                HasAllSans(server->cert_pem, required);
    if (good) {
      pki.server_ = std::move(*server);
    } else {
      ServingCertOptions opts;
      opts.dns_names = required.dns;
      opts.ip_addresses = required.ips;
      auto issued = IssueServingCert(pki.ca_, opts);
      if (!issued.ok()) return issued.status();
      if (Status s = WritePair(pki, *issued, kServerCert, kServerKey); !s.ok()) return s;
      pki.server_ = std::move(*issued);
      pki.reissued_server_ = true;
    }
  }

  // 3. The admin client certificate.
  {
    auto admin = ReadPair(pki, kAdminCert, kAdminKey);
    bool good =
        !pki.created_ca_ && admin.ok() && PairIsGood(*admin, pki.ca_.cert_pem, Usage::kClient, now);
    if (good) {
      pki.admin_ = std::move(*admin);
    } else {
      ClientCertOptions opts;
      opts.user = "admin";
      opts.groups = {"system:masters"};
      auto issued = IssueClientCert(pki.ca_, opts);
      if (!issued.ok()) return issued.status();
      if (Status s = WritePair(pki, *issued, kAdminCert, kAdminKey); !s.ok()) return s;
      pki.admin_ = std::move(*issued);
    }
  }

  // 4. The ServiceAccount signing key (RSA, RS256).
  {
    auto key = ReadFile(pki.Path(kServiceAccountKey));
    if (key.ok()) {
      pki.sa_key_pem_ = std::move(*key);
    } else if (key.status().code() == Code::kNotFound) {
      auto generated = GenerateRsaKeyPem(2048);
      if (!generated.ok()) return generated.status();
      if (Status s = WriteFileAtomic(pki.Path(kServiceAccountKey), *generated, kSecretMode);
          !s.ok())
        return s;
      pki.sa_key_pem_ = std::move(*generated);
    } else {
      return key.status();
    }
    auto pub = PublicKeyPem(pki.sa_key_pem_);
    if (!pub.ok())
      return Status(Code::kInternal, pki.Path(kServiceAccountKey) +
                                         " is not a valid private key: " + pub.status().message());
    pki.sa_public_pem_ = std::move(*pub);
  }

  // 5. The static token file.
  {
    auto csv = ReadFile(pki.Path(kTokenFile));
    if (csv.ok()) {
      auto tokens = StaticTokens::Parse(*csv);
      if (!tokens.ok())
        return Status(Code::kInternal, pki.Path(kTokenFile) + ": " + tokens.status().message());
      for (const StaticToken& t : tokens->entries()) {
        if (t.user == "admin") {
          pki.admin_token_ = t.token;
          break;
        }
      }
    } else if (csv.status().code() == Code::kNotFound) {
      std::string random = RandomBytes(32);
      if (random.size() != 32) return Status(Code::kInternal, "no randomness for the admin token");
      StaticToken admin{HexEncode(random), "admin", "admin", {"system:masters"}};
      if (Status s =
              WriteFileAtomic(pki.Path(kTokenFile), StaticTokens::FormatLine(admin), kSecretMode);
          !s.ok())
        return s;
      pki.admin_token_ = admin.token;
    } else {
      return csv.status();
    }
  }
  return pki;
}

}  // namespace mk8s::pki
