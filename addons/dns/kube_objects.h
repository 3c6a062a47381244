// The API objects the dns addon owns, as JSON manifests for the host's server-side apply:
//   - Service kube-system/kube-dns: ClusterIP 10.152.183.10 (the host's cluster_dns_ip), ports 53
//     UDP "dns" and TCP "dns-tcp" whose targetPort is where the addon listens. No selector: the
//     endpointslice controller leaves it alone and the addon writes its EndpointSlices.
//   - EndpointSlices kube-system/kube-dns-<node>, one per Node (its IPv4 InternalIP and the
//     addon's port), labelled kubernetes.io/service-name=kube-dns and
//     endpointslice.kubernetes.io/managed-by=dns.addons.mk8s.io. Before any Node exists, one
//     slice kube-dns-local carries this node's address so the service works from the start.
//   - ConfigMap kube-system/cluster-dns: clusterDNS and clusterDomain, the cluster's DNS settings
//     that kubelets read for new pods (nameserver, search path, ndots:5).
//
// Pure functions; no threads, no I/O.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace mk8s::dns {

inline constexpr const char* kNamespace = "kube-system";
inline constexpr const char* kServiceName = "kube-dns";
inline constexpr const char* kManagedBy = "dns.addons.mk8s.io";
inline constexpr const char* kConfigMapName = "cluster-dns";
inline constexpr const char* kLocalSlice = "kube-dns-local";

std::string ServiceManifest(const std::string& cluster_ip, uint16_t target_port);
std::string ConfigMapManifest(const std::string& cluster_ip, const std::string& domain);

// A Node's name and IPv4 InternalIP (nullopt when it has neither).
std::optional<std::pair<std::string, std::string>> NodeInternalIp(const nlohmann::json& node);

// The slices wanted for `node_ips` (node name -> InternalIP): slice name -> JSON manifest. With no
// nodes, the kube-dns-local slice for `local_ip` (if not empty).
std::map<std::string, std::string> DesiredSlices(const std::map<std::string, std::string>& node_ips,
                                                 const std::string& local_ip, uint16_t port);

// The slice name for a node: kube-dns-<node>, shortened with a hash past 253 characters.
std::string SliceNameFor(const std::string& node);

}  // namespace mk8s::dns
