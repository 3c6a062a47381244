// NodeAgent: the per-node components of mk8sd that are API clients acting for this node. For
// now kube-proxy (daemon/proxy, identity system:kube-proxy); the kubelet joins here.
//
// Start() returns once each enabled component has started (kube-proxy then syncs on its own
// thread). Destruction stops them; it must happen while the transports' server is still up.
// Health is reported as "proxy".
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/health.h"
#include "common/status.h"

namespace mk8s::client {
class Transport;
}  // namespace mk8s::client
namespace mk8s::proxy {
class KubeProxy;
}  // namespace mk8s::proxy

namespace mk8s::app {

struct NodeAgentOptions {
  bool proxy = false;
  std::string node_name;
  std::vector<std::string> node_ips;
  std::string proxy_chain_prefix;
  // A transport acting as `user` (system:kube-proxy).
  std::function<std::shared_ptr<client::Transport>(const std::string& user)> transport_for;
};

class NodeAgent {
 public:
  static Result<std::unique_ptr<NodeAgent>> Start(NodeAgentOptions options, HealthRegistry* health);
  ~NodeAgent();

 private:
  NodeAgent() = default;
  std::unique_ptr<proxy::KubeProxy> proxy_;
};

// "MK8S-" + 5 hex digits of the state folder's hash: unique per daemon, stable across restarts.
std::string DefaultProxyChainPrefix(const std::string& state_dir);

}  // namespace mk8s::app
