// ServiceSnapshot: what kube-proxy needs to know about Services and their EndpointSlices, reduced
// to plain values. Built from the informers' objects by BuildSnapshot(); read by GenerateRules().
//
// Pure data and pure functions: no threads, no I/O. Objects that cannot be used (headless or
// ExternalName Services, non-IPv4 slices, malformed fields) are skipped, never fatal; the reason
// goes to `skipped` so the caller can log it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace mk8s::proxy {

struct Endpoint {
  std::string ip;
  int port = 0;
  bool ready = true;         // conditions.ready (absent = true)
  bool serving = true;       // conditions.serving (absent = ready)
  bool terminating = false;  // conditions.terminating (absent = false)
  bool operator==(const Endpoint&) const = default;
};

// One port of one Service, with the endpoints the slices give for it (sorted by ip, port,
// without duplicates).
struct ServicePort {
  std::string ns;
  std::string service;
  std::string port_name;   // spec.ports[].name ("" for a single unnamed port)
  std::string protocol;    // "TCP", "UDP" or "SCTP"
  std::string cluster_ip;  // "" when the Service has none (then only node ports apply)
  int port = 0;
  int node_port = 0;  // 0 = none
  std::vector<std::string> external_ips;  // spec.externalIPs + a LoadBalancer's ingress IPs
  bool affinity_client_ip = false;
  int affinity_timeout_seconds = 10800;
  std::vector<Endpoint> endpoints;

  // "ns/name:port_name" (upstream's ServicePortName, used in comments and chain hashes).
  std::string Name() const;
};

struct ServiceSnapshot {
  std::vector<ServicePort> ports;  // sorted by Name(), then protocol
  std::vector<std::string> skipped;
};

// Builds the snapshot from Services (v1) and EndpointSlices (discovery.k8s.io/v1). Slices are
// matched to their Service through the label kubernetes.io/service-name; a slice port matches a
// Service port of the same name and protocol (the slice controller already resolved named target
// ports per endpoint).
ServiceSnapshot BuildSnapshot(const std::vector<std::shared_ptr<const nlohmann::json>>& services,
                              const std::vector<std::shared_ptr<const nlohmann::json>>& slices);

// The endpoints traffic goes to: the ready ones; when none is ready, those still serving while
// terminating (upstream's fallback, so connections drain during a rollout).
std::vector<Endpoint> UsableEndpoints(const ServicePort& port);

}  // namespace mk8s::proxy
