// CSR signer ("csr-signing"): issues the certificate of every Approved (not Denied, not Failed)
// kubernetes.io/kubelet-serving CertificateSigningRequest with the cluster CA, as upstream's
// csrsigning controller: the signer's rules are checked again (a request that breaks them gets
// a Failed condition, never a certificate), the certificate carries the CSR's subject and SANs
// with serverAuth only, and lives min(spec.expirationSeconds, 1 year). Written through the
// /status subresource.
//
// The CA comes from ControllerContext::cluster_signing_cert_file/_key_file (read at Setup).
// Without them (a controller manager with no CA key) the controller signs nothing.
// Threads: the Controller's workers; the CA pair is immutable after Setup.
#pragma once

#include <string>

#include "controllers/controller.h"

namespace mk8s::controllers {

class CsrSigner final : public Controller {
 public:
  explicit CsrSigner(const ControllerContext& context) : Controller("csr-signing", context) {}
  void Setup() override;

 protected:
  Status Reconcile(const std::string& name) override;

 private:
  Status Fail(const nlohmann::json& csr, const std::string& reason, const std::string& message);
  client::Informer* csrs_ = nullptr;
  std::string ca_cert_pem_;
  std::string ca_key_pem_;
};

}  // namespace mk8s::controllers
