// CSR approver ("csr-approving"): approves kubernetes.io/kubelet-serving
// CertificateSigningRequests that a node makes for itself, in the spirit of upstream's
// kubelet serverTLSBootstrap plus an approver: the requester is system:node:<name> (group
// system:nodes), the CSR names exactly that node, follows the signer's rules, and every SAN is
// the node's name or an address of its Node object (pki/csr.h). A node's request that breaks
// a rule is Denied with the reason; a request whose Node is not registered yet waits; requests
// of other users (or for other signers) are left to a human (`kubectl certificate approve`).
//
// Threads: the Controller's workers; informer handlers only enqueue.
#pragma once

#include "controllers/controller.h"

namespace mk8s::controllers {

class CsrApprover final : public Controller {
 public:
  explicit CsrApprover(const ControllerContext& context) : Controller("csr-approving", context) {}
  void Setup() override;

 protected:
  Status Reconcile(const std::string& name) override;

 private:
  client::Informer* csrs_ = nullptr;
  client::Informer* nodes_ = nullptr;
};

}  // namespace mk8s::controllers
