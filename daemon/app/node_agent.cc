#include "app/node_agent.h"

#include "app/app.h"
#include "common/paths.h"

#include <spdlog/spdlog.h>

#include <cstdio>

#include "client/client.h"
#include "proxy/kube_proxy.h"

namespace mk8s::app {

std::string DefaultProxyChainPrefix(const std::string& state_dir) {
  uint64_t hash = 1469598103934665603ULL;  // FNV-1a
  for (unsigned char c : state_dir) hash = (hash ^ c) * 1099511628211ULL;
  char buffer[16];
  std::snprintf(buffer, sizeof(buffer), "MK8S-%05llx",
                static_cast<unsigned long long>(hash >> 44));
  return buffer;
}

Result<std::unique_ptr<NodeAgent>> NodeAgent::Start(NodeAgentOptions options,
                                                    HealthRegistry* health) {
  std::unique_ptr<NodeAgent> agent(new NodeAgent());
  if (options.proxy) {
    health->Set("proxy", false, "starting");
    proxy::ProxyOptions proxy_options;
    proxy_options.node_name = options.node_name;
    proxy_options.node_ips = options.node_ips;
    proxy_options.rules.chain_prefix = options.proxy_chain_prefix;
    auto started = proxy::KubeProxy::Start(
        proxy_options, std::make_shared<client::Client>(options.transport_for("system:kube-proxy")));
    if (!started.ok()) {
      health->Set("proxy", false, started.status().message());
      return started.status();
    }
    agent->proxy_ = std::move(*started);
    health->Set("proxy", true, "iptables, chains " + options.proxy_chain_prefix + "-*");
  }
  return agent;
}

NodeAgent::~NodeAgent() {
  if (proxy_) proxy_->Stop();
}

int CleanUpProxyRules(const DaemonOptions& options) {
  proxy::RuleOptions rules;
  rules.chain_prefix = options.proxy_chain_prefix.empty()
                           ? DefaultProxyChainPrefix(StatePaths(options.state_dir).state_dir)
                           : options.proxy_chain_prefix;
  if (Status status = proxy::CleanUp(rules, proxy::IptablesPaths{}); !status.ok()) {
    std::fprintf(stderr, "mk8sd: cleaning up kube-proxy rules %s-*: %s\n",
                 rules.chain_prefix.c_str(), status.message().c_str());
    return 1;
  }
  std::printf("removed the kube-proxy rules %s-*\n", rules.chain_prefix.c_str());
  return 0;
}

}  // namespace mk8s::app
