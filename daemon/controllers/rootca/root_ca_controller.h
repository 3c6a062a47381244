// Root CA publisher: the "kube-root-ca.crt" ConfigMap (key "ca.crt", the cluster CA) in every
// active namespace, kept equal to the CA, so pods can verify the API server.
#pragma once

#include "controllers/controller.h"

namespace mk8s::controllers {

class RootCaController final : public Controller {
 public:
  explicit RootCaController(const ControllerContext& context) : Controller("root-ca", context) {}
  void Setup() override;

 protected:
  Status Reconcile(const std::string& key) override;

 private:
  client::Informer* namespaces_ = nullptr;
  client::Informer* configmaps_ = nullptr;
};

}  // namespace mk8s::controllers
