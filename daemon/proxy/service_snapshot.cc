#include "proxy/service_snapshot.h"

#include <arpa/inet.h>

#include <algorithm>
#include <set>
#include <tuple>

#include <nlohmann/json.hpp>

namespace mk8s::proxy {
namespace {

using nlohmann::json;

constexpr const char* kServiceNameLabel = "kubernetes.io/service-name";

// object[key] when object is an object holding key; otherwise null. Never throws.
const json& Field(const json& object, const char* key) {
  static const json kNull;
  if (!object.is_object()) return kNull;
  auto it = object.find(key);
  return it != object.end() ? *it : kNull;
}

bool IsIpv4(const std::string& text) {
  in_addr address{};
  return inet_pton(AF_INET, text.c_str(), &address) == 1;
}

std::string StringAt(const json& object, const char* key, const std::string& fallback = "") {
  if (!object.is_object()) return fallback;
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : fallback;
}

int IntAt(const json& object, const char* key) {
  if (!object.is_object()) return 0;
  auto it = object.find(key);
  return it != object.end() && it->is_number_integer() ? it->get<int>() : 0;
}

bool BoolAt(const json& object, const char* key, bool fallback) {
  if (!object.is_object()) return fallback;
  auto it = object.find(key);
  return it != object.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

bool ValidPort(int port) { return port > 0 && port <= 65535; }

std::string Key(const std::string& ns, const std::string& name) { return ns + "/" + name; }

// Endpoints of one slice for the slice port named `port_name` with `protocol`.
void CollectEndpoints(const json& slice, const std::string& port_name, const std::string& protocol,
                      std::vector<Endpoint>* out) {
  int port = 0;
  const json& ports = Field(slice, "ports");
  if (!ports.is_array()) return;
  for (const json& candidate : ports) {
    if (StringAt(candidate, "name") == port_name &&
        StringAt(candidate, "protocol", "TCP") == protocol) {
      port = IntAt(candidate, "port");
      break;
    }
  }
  if (!ValidPort(port)) return;
  const json& endpoints = Field(slice, "endpoints");
  if (!endpoints.is_array()) return;
  for (const json& endpoint : endpoints) {
    if (!endpoint.is_object()) continue;
    const json& addresses = Field(endpoint, "addresses");
    if (!addresses.is_array() || addresses.empty() || !addresses[0].is_string()) continue;
    // Upstream uses the first address only (the others are fungible).
    const std::string ip = addresses[0].get<std::string>();
    if (!IsIpv4(ip)) continue;
    const json& conditions = Field(endpoint, "conditions");
    Endpoint e;
    e.ip = ip;
    e.port = port;
    e.ready = BoolAt(conditions, "ready", true);
    e.serving = BoolAt(conditions, "serving", e.ready);
    e.terminating = BoolAt(conditions, "terminating", false);
    out->push_back(std::move(e));
  }
}

}  // namespace

std::string ServicePort::Name() const { return ns + "/" + service + ":" + port_name; }

ServiceSnapshot BuildSnapshot(const std::vector<std::shared_ptr<const json>>& services,
                              const std::vector<std::shared_ptr<const json>>& slices) {
  ServiceSnapshot snapshot;
  // Usable IPv4 slices by "ns/service".
  std::map<std::string, std::vector<const json*>> slices_by_service;
  for (const auto& slice : slices) {
    if (!slice || !slice->is_object()) continue;
    const json& metadata = Field(*slice, "metadata");
    const std::string service = StringAt(Field(metadata, "labels"), kServiceNameLabel);
    if (service.empty()) continue;
    if (StringAt(*slice, "addressType") != "IPv4") continue;
    slices_by_service[Key(StringAt(metadata, "namespace"), service)].push_back(slice.get());
  }

  for (const auto& object : services) {
    if (!object || !object->is_object()) continue;
    const json& metadata = Field(*object, "metadata");
    const std::string ns = StringAt(metadata, "namespace");
    const std::string name = StringAt(metadata, "name");
    const json& spec = Field(*object, "spec");
    const std::string key = Key(ns, name);
    const std::string type = StringAt(spec, "type", "ClusterIP");
    if (type == "ExternalName") continue;
    std::string cluster_ip = StringAt(spec, "clusterIP");
    if (cluster_ip == "None") continue;  // headless: DNS only
    if (!cluster_ip.empty() && !IsIpv4(cluster_ip)) {
      snapshot.skipped.push_back(key + ": clusterIP " + cluster_ip + " is not IPv4");
      continue;
    }
    std::vector<std::string> external_ips;
    const json& externals = Field(spec, "externalIPs");
    if (externals.is_array()) {
      for (const json& ip : externals) {
        if (ip.is_string() && IsIpv4(ip.get<std::string>())) external_ips.push_back(ip);
      }
    }
    // A LoadBalancer's ingress IPs (written by a load-balancer controller) act like external IPs.
    const json& ingress = Field(Field(Field(*object, "status"), "loadBalancer"), "ingress");
    if (type == "LoadBalancer" && ingress.is_array()) {
      for (const json& entry : ingress) {
        const std::string ip = StringAt(entry, "ip");
        if (IsIpv4(ip) &&
            std::find(external_ips.begin(), external_ips.end(), ip) == external_ips.end()) {
          external_ips.push_back(ip);
        }
      }
    }
    const bool affinity = StringAt(spec, "sessionAffinity") == "ClientIP";
    int timeout = 10800;
    const int value =
        IntAt(Field(Field(spec, "sessionAffinityConfig"), "clientIP"), "timeoutSeconds");
    if (value > 0) timeout = value;
    const json& ports = Field(spec, "ports");
    if (!ports.is_array()) continue;
    for (const json& port : ports) {
      ServicePort sp;
      sp.ns = ns;
      sp.service = name;
      sp.port_name = StringAt(port, "name");
      sp.protocol = StringAt(port, "protocol", "TCP");
      sp.port = IntAt(port, "port");
      if (sp.protocol != "TCP" && sp.protocol != "UDP" && sp.protocol != "SCTP") {
        snapshot.skipped.push_back(sp.Name() + ": unknown protocol " + sp.protocol);
        continue;
      }
      if (!ValidPort(sp.port)) {
        snapshot.skipped.push_back(sp.Name() + ": invalid port");
        continue;
      }
      sp.cluster_ip = cluster_ip;
      if (type == "NodePort" || type == "LoadBalancer") {
        const int node_port = IntAt(port, "nodePort");
        if (ValidPort(node_port)) sp.node_port = node_port;
      }
      sp.external_ips = external_ips;
      sp.affinity_client_ip = affinity;
      sp.affinity_timeout_seconds = timeout;
      if (auto it = slices_by_service.find(key); it != slices_by_service.end()) {
        for (const json* slice : it->second) {
          CollectEndpoints(*slice, sp.port_name, sp.protocol, &sp.endpoints);
        }
      }
      // Sorted, one entry per ip:port (the first slice's conditions win... unless a later
      // duplicate is ready: ready beats not ready).
      std::sort(sp.endpoints.begin(), sp.endpoints.end(), [](const Endpoint& a, const Endpoint& b) {
        return std::tie(a.ip, a.port, b.ready) < std::tie(b.ip, b.port, a.ready);
      });
      sp.endpoints.erase(std::unique(sp.endpoints.begin(), sp.endpoints.end(),
                                     [](const Endpoint& a, const Endpoint& b) {
                                       return a.ip == b.ip && a.port == b.port;
                                     }),
                         sp.endpoints.end());
      if (sp.cluster_ip.empty() && sp.node_port == 0 && sp.external_ips.empty()) continue;
      snapshot.ports.push_back(std::move(sp));
    }
  }
  std::sort(snapshot.ports.begin(), snapshot.ports.end(),
            [](const ServicePort& a, const ServicePort& b) {
              return std::make_tuple(a.ns, a.service, a.port_name, a.protocol) <
                     std::make_tuple(b.ns, b.service, b.port_name, b.protocol);
            });
  return snapshot;
}

std::vector<Endpoint> UsableEndpoints(const ServicePort& port) {
  std::vector<Endpoint> ready;
  for (const Endpoint& e : port.endpoints) {
    if (e.ready) ready.push_back(e);
  }
  if (!ready.empty()) return ready;
  for (const Endpoint& e : port.endpoints) {
    if (e.serving && e.terminating) ready.push_back(e);
  }
  return ready;
}

}  // namespace mk8s::proxy
