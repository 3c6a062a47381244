// PKCS#10 certificate signing requests and the rules of the kubernetes.io/kubelet-serving
// signer (used by the API server's CSR admission, the controller manager's approver and signer,
// and the worker's certificate bootstrap in daemon/kubelet/server).
//
// PEM strings in plain structs; OpenSSL stays in csr.cc. Every function is pure and thread-safe.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace mk8s::pki {

inline constexpr const char* kKubeletServingSigner = "kubernetes.io/kubelet-serving";
inline constexpr const char* kNodeUserPrefix = "system:node:";
inline constexpr const char* kNodesGroup = "system:nodes";

struct CsrOptions {
  std::string common_name;                 // e.g. "system:node:worker"
  std::vector<std::string> organizations;  // e.g. {"system:nodes"}
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;
};

// A CSR PEM ("-----BEGIN CERTIFICATE REQUEST-----") for `key_pem` (a private key PEM), signed by
// it.
Result<std::string> CreateCsr(std::string_view key_pem, const CsrOptions& options);

struct CsrInfo {
  std::string common_name;                 // the subject's first CN ("" if none)
  std::vector<std::string> organizations;  // every subject O, in order
  std::vector<std::string> dns_names;
  std::vector<std::string> ip_addresses;  // canonical text ("10.0.0.1", "::1")
  std::vector<std::string> emails;
  std::vector<std::string> uris;
  int other_names = 0;         // subjectAltName entries of any other type
  std::string public_key_pem;  // SubjectPublicKeyInfo
};

// Parses exactly one PEM block of type CERTIFICATE REQUEST (text around it is ignored) and
// checks its self-signature. Garbage, DER, other block types, a bad signature: kInvalidArgument
// with the reason. Never throws.
Result<CsrInfo> ParseCsr(std::string_view pem);

// The signer's rules (as upstream's kubelet-serving signer): CN "system:node:<name>" with a
// name, O exactly {"system:nodes"}, at least one DNS or IP SAN, no email/URI/other SANs, and
// usages exactly {digital signature, key encipherment, server auth} or {digital signature,
// server auth}. kInvalidArgument naming the broken rule.
Status CheckKubeletServingCsr(const CsrInfo& csr, const std::vector<std::string>& usages);

// The auto-approver's rule on top of the signer's: the request comes from the node it names
// (`username` == CN and `groups` holds system:nodes), and every DNS/IP SAN is one of
// `node_names` (the node's name and the addresses of its Node object). kInvalidArgument naming
// the offending value.
Status CheckCsrFromItsNode(const CsrInfo& csr, const std::string& username,
                           const std::vector<std::string>& groups,
                           const std::vector<std::string>& node_names);

// The node name in a "system:node:<name>" user ("" for any other user).
std::string NodeNameOfUser(std::string_view user);

}  // namespace mk8s::pki
