// Node IPAM: each node gets its own pod subnet (spec.podCIDR / podCIDRs), a /24 out of the
// cluster CIDR (10.1.0.0/16 by default, as MicroK8s), released when the node is deleted. When
// none is free the node waits and gets one CIDRNotAvailable Warning event; a node deleted with a
// subnet wakes the waiting nodes (no retry loop: with thousands of nodes past the pool, retries
// and their events were a steady load of API writes). A podCIDR is written only onto the node
// version seen without one (resourceVersion precondition), so it is never replaced.
#pragma once

#include <mutex>
#include <set>
#include <string>

#include "controllers/common/event_recorder.h"
#include "controllers/controller.h"

namespace mk8s::controllers {

class NodeIpamController final : public Controller {
 public:
  // `cluster_cidr` must be an IPv4 /16 or wider; nodes get /24s.
  explicit NodeIpamController(const ControllerContext& context,
                              std::string cluster_cidr = "10.1.0.0/16");
  void Setup() override;

 protected:
  Status Reconcile(const std::string& key) override;

 private:
  std::string SubnetText(uint32_t index) const;
  bool SubnetIndex(const std::string& cidr, uint32_t* index) const;

  client::Informer* nodes_ = nullptr;
  EventRecorder events_;
  uint32_t base_ = 0;        // network address of the cluster CIDR (host order)
  uint32_t subnets_ = 0;     // number of /24s in it
  std::mutex mu_;
  std::set<uint32_t> used_;  // GUARDED_BY(mu_)
  std::set<std::string> waiting_;  // nodes told CIDRNotAvailable; GUARDED_BY(mu_)
};

}  // namespace mk8s::controllers
