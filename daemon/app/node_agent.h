// NodeAgent: the per-node components of mk8sd that are API clients acting for this node. For
// now kube-proxy (daemon/proxy, identity system:kube-proxy); the kubelet joins here.
//
// Start() returns once each enabled component has started (kube-proxy then syncs on its own
// thread). Destruction stops them; it must happen while the transports' server is still up.
// Health is reported as "proxy" (ready after each successful sync, not ready after a failed one).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "app/options.h"
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

// The node agent's part of the daemon's options, with defaults filled in: the host name, the
// first non-loopback IPv4 address, DefaultProxyChainPrefix(state_dir). No transport yet.
NodeAgentOptions NodeAgentOptionsFor(const DaemonOptions& options, const std::string& state_dir);

// "MK8S-" + 5 hex digits of the state folder's hash: unique per daemon, stable across restarts.
std::string DefaultProxyChainPrefix(const std::string& state_dir);

}  // namespace mk8s::app
