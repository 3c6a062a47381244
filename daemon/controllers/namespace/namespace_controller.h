// Namespace lifecycle: when a namespace is deleted (Terminating), delete everything in it, then
// finalize the namespace (empty spec.finalizers) so the API server removes it.
#pragma once

#include "controllers/controller.h"

namespace mk8s::controllers {

class NamespaceController final : public Controller {
 public:
  explicit NamespaceController(const ControllerContext& context)
      : Controller("namespace", context) {}
  void Setup() override;

 protected:
  Status Reconcile(const std::string& key) override;

 private:
  client::Informer* namespaces_ = nullptr;
};

}  // namespace mk8s::controllers
