// ServiceAccounts: every active namespace has a "default" ServiceAccount.
#pragma once

#include "controllers/controller.h"

namespace mk8s::controllers {

class ServiceAccountController final : public Controller {
 public:
  explicit ServiceAccountController(const ControllerContext& context)
      : Controller("serviceaccount", context) {}
  void Setup() override;

 protected:
  Status Reconcile(const std::string& key) override;

 private:
  client::Informer* namespaces_ = nullptr;
  client::Informer* accounts_ = nullptr;
};

}  // namespace mk8s::controllers
