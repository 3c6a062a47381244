// ClusterPki: the credentials folder of a node (state_dir/credentials), created on first start and
// loaded afterwards, plus kubeconfig rendering.
//
// Files (folder 0700; keys and tokens 0600; certificates 0644; every write is atomic):
//   ca.crt ca.key            self-signed cluster CA (ECDSA P-256, 10 years)
//   server.crt server.key    API server serving cert (serverAuth; SANs below)
//   admin.crt admin.key      admin client cert (CN=admin, O=system:masters)
//   serviceaccount.key       RSA 2048 key that signs ServiceAccount JWTs (RS256)
//   known_tokens.csv         static tokens: one admin line with a random 32-byte hex token
//
// ClusterPki is a plain value (copyable, thread-compatible). LoadOrCreate() must not run
// concurrently on the same folder (mk8sd holds its pid-file lock while it runs).
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "pki/certificates.h"

namespace mk8s::pki {

// SANs of the serving certificate beyond the defaults (typically the node's IPs and hostname).
struct ServingSans {
  std::vector<std::string> dns;
  std::vector<std::string> ips;
};

// localhost, kubernetes, kubernetes.default, kubernetes.default.svc,
// kubernetes.default.svc.cluster.local, 127.0.0.1, 10.152.183.1 plus `extra`, deduplicated.
ServingSans RequiredServingSans(const ServingSans& extra);

class ClusterPki {
 public:
  static constexpr const char* kCaCert = "ca.crt";
  static constexpr const char* kCaKey = "ca.key";
  static constexpr const char* kServerCert = "server.crt";
  static constexpr const char* kServerKey = "server.key";
  static constexpr const char* kAdminCert = "admin.crt";
  static constexpr const char* kAdminKey = "admin.key";
  static constexpr const char* kServiceAccountKey = "serviceaccount.key";
  static constexpr const char* kTokenFile = "known_tokens.csv";

  // First start: creates everything. Later starts: loads; re-issues the serving cert when a
  // required SAN is missing, it expires within 30 days, or it no longer chains to the CA; re-issues
  // the admin cert when it is missing or invalid. A missing CA recreates every certificate.
  static Result<ClusterPki> LoadOrCreate(const std::string& credentials_dir,
                                         const ServingSans& extra_sans);

  const std::string& dir() const { return dir_; }
  const KeyPair& ca() const { return ca_; }
  const KeyPair& server() const { return server_; }
  const KeyPair& admin() const { return admin_; }
  const std::string& service_account_key_pem() const { return sa_key_pem_; }
  const std::string& service_account_public_key_pem() const { return sa_public_pem_; }
  // The token of the first "admin" line of known_tokens.csv; empty if there is none.
  const std::string& admin_token() const { return admin_token_; }
  std::string Path(std::string_view file) const;  // dir()/file

  // What the last LoadOrCreate() did (for logs and tests).
  bool created_ca() const { return created_ca_; }
  bool reissued_server() const { return reissued_server_; }

 private:
  std::string dir_;
  KeyPair ca_, server_, admin_;
  std::string sa_key_pem_, sa_public_pem_, admin_token_;
  bool created_ca_ = false;
  bool reissued_server_ = false;
};

// A kubeconfig (YAML) with embedded base64 CA and client certificate/key, as kubectl expects.
std::string Kubeconfig(std::string_view server_url, std::string_view ca_pem,
                       std::string_view client_cert_pem, std::string_view client_key_pem,
                       std::string_view cluster_name = "mk8s-cluster",
                       std::string_view user_name = "admin",
                       std::string_view context_name = "mk8s");
// The same with a bearer token instead of a client certificate.
std::string KubeconfigWithToken(std::string_view server_url, std::string_view ca_pem,
                                std::string_view token,
                                std::string_view cluster_name = "mk8s-cluster",
                                std::string_view user_name = "admin",
                                std::string_view context_name = "mk8s");

}  // namespace mk8s::pki
