// The certificates between the API server and the kubelet, kept in the credentials folder next
// to the cluster CA (ca.crt/ca.key, made by ClusterPki::LoadOrCreate, which must run first):
//
//   kubelet.crt kubelet.key      the kubelet's serving certificate for this node (serverAuth;
//                                SANs: node name, localhost, node IPs, 127.0.0.1)
//   apiserver-kubelet-client.crt/.key
//                                the API server's client certificate towards kubelets
//                                (clientAuth; CN kube-apiserver-kubelet-client, O system:masters)
//
// Each is issued on first use and re-issued when missing, not matching its key, not chaining to
// the CA, expiring within 30 days, or (serving) missing a required SAN. Keys 0600, certs 0644.
// Not safe to call concurrently on the same folder (mk8sd calls them during startup).
#pragma once

#include <string>
#include <vector>

#include "common/status.h"
#include "pki/certificates.h"

namespace mk8s::pki {

inline constexpr const char* kKubeletCert = "kubelet.crt";
inline constexpr const char* kKubeletKey = "kubelet.key";
inline constexpr const char* kKubeletClientCert = "apiserver-kubelet-client.crt";
inline constexpr const char* kKubeletClientKey = "apiserver-kubelet-client.key";
inline constexpr const char* kKubeletClientUser = "kube-apiserver-kubelet-client";

// Paths of a certificate, its key and the CA that verifies peers.
struct CertFiles {
  std::string cert_file;
  std::string key_file;
  std::string ca_file;  // the cluster CA (ca.crt)
};

// The kubelet's serving certificate for `node_name` with `node_ips` (KubeletServerOptions
// takes these paths: cert_file, key_file, and ca_file as client_ca_file).
Result<CertFiles> LoadOrCreateKubeletServingCert(const std::string& credentials_dir,
                                                 const std::string& node_name,
                                                 const std::vector<std::string>& node_ips);

// The API server's client certificate towards kubelets.
Result<CertFiles> LoadOrCreateKubeletClientCert(const std::string& credentials_dir);

}  // namespace mk8s::pki
