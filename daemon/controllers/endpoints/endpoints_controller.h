// Endpoints and EndpointSlices for Services with a selector: every matching pod with an IP is an
// address, in `addresses` when Ready (or when the Service publishes not-ready addresses) and in
// `notReadyAddresses` otherwise; named target ports resolve per pod. kube-proxy and the dns addon
// read these. Services without a selector keep the Endpoints their users write. When a Service is
// gone its Endpoints and slices are deleted; at start, those of Services deleted while no
// controller ran are found and deleted too (but never default/kubernetes, which the API server
// keeps, nor leader-election records).
#pragma once

#include "controllers/controller.h"

namespace mk8s::controllers {

class EndpointsController final : public Controller {
 public:
  explicit EndpointsController(const ControllerContext& context)
      : Controller("endpoints", context) {}
  void Setup() override;

 protected:
  Status Reconcile(const std::string& key) override;

 private:
  void EnqueueServicesFor(const client::ObjectPtr& pod);
  void QueueLeftovers();
  Status DeleteLeftovers(const std::string& ns, const std::string& name);
  Status SyncEndpoints(const nlohmann::json& service, const nlohmann::json& subsets);
  Status SyncSlices(const nlohmann::json& service, const nlohmann::json& endpoints,
                    const nlohmann::json& ports);

  client::Informer* services_ = nullptr;
  client::Informer* pods_ = nullptr;
  client::Informer* endpoints_ = nullptr;
  client::Informer* slices_ = nullptr;
};

}  // namespace mk8s::controllers
