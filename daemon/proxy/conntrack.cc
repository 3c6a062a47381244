#include "proxy/conntrack.h"

#include <map>
#include <set>
#include <tuple>

namespace mk8s::proxy {
namespace {

using Args = std::vector<std::string>;

std::string Key(const ServicePort& port) { return port.Name() + "/" + port.protocol; }

std::set<std::string> UsableIps(const ServicePort& port) {
  std::set<std::string> ips;
  for (const Endpoint& e : UsableEndpoints(port)) ips.insert(e.ip);
  return ips;
}

// The destinations clients use for this port: cluster IP and external IPs.
std::vector<std::string> ServiceIps(const ServicePort& port) {
  std::vector<std::string> ips = port.external_ips;
  if (!port.cluster_ip.empty()) ips.insert(ips.begin(), port.cluster_ip);
  return ips;
}

}  // namespace

std::vector<std::vector<std::string>> StaleUdpFlows(const ServiceSnapshot& before,
                                                    const ServiceSnapshot& after) {
  std::map<std::string, const ServicePort*> now;
  for (const ServicePort& port : after.ports) {
    if (port.protocol == "UDP") now[Key(port)] = &port;
  }
  std::set<Args> out;
  std::map<std::string, const ServicePort*> old;
  for (const ServicePort& port : before.ports) {
    if (port.protocol != "UDP") continue;
    old[Key(port)] = &port;
    auto it = now.find(Key(port));
    const std::set<std::string> remaining =
        it == now.end() ? std::set<std::string>{} : UsableIps(*it->second);
    for (const std::string& ip : UsableIps(port)) {
      if (remaining.count(ip) != 0) continue;
      for (const std::string& service_ip : ServiceIps(port)) {
        out.insert({"-D", "-p", "udp", "--orig-dst", service_ip, "--dst-nat", ip});
      }
      if (port.node_port != 0) {
        out.insert({"-D", "-p", "udp", "--dport", std::to_string(port.node_port), "--dst-nat", ip});
      }
    }
  }
  for (const auto& [key, port] : now) {
    if (UsableEndpoints(*port).empty()) continue;
    auto it = old.find(key);
    if (it != old.end() && !UsableEndpoints(*it->second).empty()) continue;
    for (const std::string& service_ip : ServiceIps(*port)) {
      out.insert({"-D", "-p", "udp", "--orig-dst", service_ip});
    }
  }
  return {out.begin(), out.end()};
}

}  // namespace mk8s::proxy
