// The serving certificate of a kubelet on a worker (a node without the cluster CA key), obtained
// from the cluster as upstream's kubelet does with serverTLSBootstrap: the key is made and kept
// here, a certificates.k8s.io/v1 CertificateSigningRequest (signer kubernetes.io/kubelet-serving,
// CN system:node:<name>, O system:nodes, SANs: the node name and IPs) goes to the API server,
// the controller manager approves and signs it (controllers/certificates), and the issued
// certificate is written next to the key.
//
// Files in `pki_dir` (<state>/kubelet/pki, 0700): kubelet.key (0600, kept across requests
// while it parses), kubelet.crt (0644), ca.crt (0644: the cluster CA from the kubeconfig, which
// verifies the issued certificate and, as the kubelet server's client CA, the API server's
// kubelet-client certificate).
//
// Blocking; call from a thread that may wait (the node agent's bootstrap thread).
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <vector>

#include "common/status.h"
#include "pki/kubelet_certs.h"

namespace mk8s::client {
class Client;
}

namespace mk8s::kubelet {

struct ServingCertBootstrapOptions {
  std::string pki_dir;  // <state>/kubelet/pki
  std::string node_name;
  std::vector<std::string> node_ips;
  std::string cluster_ca_pem;  // the kubeconfig's certificate-authority-data
  std::chrono::milliseconds poll_interval{500};
  std::chrono::milliseconds wait_for_issue{std::chrono::seconds(120)};
};

// The SANs the certificate must carry: {dns names}, {ips} for the node.
void WantedServingSans(const std::string& node_name, const std::vector<std::string>& node_ips,
                       std::vector<std::string>* dns, std::vector<std::string>* ips);

// True when `cert_pem` belongs to `key_pem`, chains to `ca_pem` as a serving certificate at
// `now`, has more than a fifth of its lifetime left, and its SANs are exactly `dns` + `ips`.
bool ServingCertUsable(const std::string& cert_pem, const std::string& key_pem,
                       const std::string& ca_pem, const std::vector<std::string>& dns,
                       const std::vector<std::string>& ips,
                       std::chrono::system_clock::time_point now);

// The stored certificate when usable; otherwise a new CSR, waited on until it is issued.
// Errors: kInvalidArgument (Denied or Failed, with the reason, or a bad answer),
// kDeadlineExceeded (not issued within wait_for_issue: is the controller manager running with
// the CA key?), kUnavailable (stopping() turned true, or the API server failed), others from
// the file system. The caller retries with back-off.
Result<pki::CertFiles> EnsureServingCertFromCluster(client::Client& client,
                                                    const ServingCertBootstrapOptions& options,
                                                    const std::function<bool()>& stopping);

}  // namespace mk8s::kubelet
