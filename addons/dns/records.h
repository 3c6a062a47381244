// The cluster's DNS data, kept from the API's Services and EndpointSlices, and the lookup that
// answers names in the cluster domain the way CoreDNS's kubernetes plugin does (as MicroK8s
// configures it: `pods insecure`, reverse zones with fallthrough, TTL 5):
//   <svc>.<ns>.svc.<zone>            A/AAAA: the ClusterIPs; headless: the ready endpoint IPs;
//                                    ExternalName: a CNAME; SRV: one per port
//   _<port>._<proto>.<svc>.<ns>.svc.<zone>   SRV for a named port
//   <host>.<svc>.<ns>.svc.<zone>     an endpoint by hostname (or dashed IP) of a service
//   a-b-c-d.<ns>.pod.<zone>          A (and dashed IPv6: AAAA), no check against pods
//   d.c.b.a.in-addr.arpa / ip6.arpa  PTR for ClusterIPs and headless endpoint IPs
// Unknown names in the zone are NXDOMAIN, names that exist without the asked type are NODATA;
// both carry the zone's SOA in authority. Everything else is not ours (forwarded).
//
// Threads: the mutators are called from the addon's host thread (watch callbacks), Lookup from
// the server's threads; a shared mutex guards the maps. Every method is thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <shared_mutex>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "dns_wire.h"

namespace mk8s::dns {

struct PortSpec {
  std::string name;
  std::string protocol;  // lowercase: "tcp", "udp", "sctp"
  uint16_t port = 0;
};

struct Service {
  std::string ns, name;
  std::vector<std::string> cluster_ips;  // empty for headless and ExternalName
  bool headless = false;                 // clusterIP: None
  std::string external_name;             // type ExternalName
  std::vector<PortSpec> ports;
};

struct Endpoint {
  std::vector<std::string> addresses;
  bool ready = true;
  std::string hostname;
};

struct Slice {
  std::string ns, name, service;  // service: the kubernetes.io/service-name label
  bool ipv6 = false;              // addressType IPv6 (FQDN slices are ignored)
  std::vector<Endpoint> endpoints;
  std::vector<PortSpec> ports;
};

// Parse Kubernetes JSON objects; nullopt when the object is not usable (missing names, or an
// EndpointSlice that is not for a service / not IP).
std::optional<Service> ServiceFromJson(const nlohmann::json& object);
std::optional<Slice> SliceFromJson(const nlohmann::json& object);

struct ZoneConfig {
  std::string domain = "cluster.local";
  std::string service_cidr = "10.152.183.0/24";
  std::string dns_ip = "10.152.183.10";
  uint32_t ttl = 5;
};

struct LookupResult {
  bool ours = false;  // false: not in our zones, forward it
  Rcode rcode = kNoError;
  std::vector<Rr> answer, authority, additional;
};

class ClusterRecords {
 public:
  explicit ClusterRecords(ZoneConfig config);

  void UpsertService(Service service);
  void RemoveService(const std::string& ns, const std::string& name);
  void UpsertSlice(Slice slice);
  void RemoveSlice(const std::string& ns, const std::string& name);
  // Replaces every service (or slice) at once: the result of a full list.
  void ReplaceServices(std::vector<Service> services);
  void ReplaceSlices(std::vector<Slice> slices);
  void Clear();

  // `qname` is the lookup key (LookupKey: lowercase, no trailing dot).
  LookupResult Lookup(const std::string& qname, uint16_t qtype) const;

  // The SOA serial: it changes (grows) on every change of the records.
  uint32_t serial() const { return serial_.load(); }
  size_t service_count() const;
  size_t slice_count() const;
  const ZoneConfig& config() const { return config_; }

 private:
  struct Target {  // one endpoint address of a service, ready only
    std::string ip;
    bool ipv6 = false;
    std::string host;  // hostname or the dashed IP
    const std::vector<PortSpec>* ports = nullptr;
  };
  static std::string Key(const std::string& ns, const std::string& name) { return name + "." + ns; }
  void Touch();  // a change: new SOA serial
  void IndexService(const Service& service, bool add);
  void AddSliceLocked(Slice slice);
  void RemoveSliceLocked(const std::string& key);
  std::vector<Target> ReadyTargetsLocked(const std::string& service_key) const;

  LookupResult ServiceZone(const std::vector<std::string>& labels, const std::string& qname,
                           uint16_t qtype) const;
  LookupResult PodZone(const std::vector<std::string>& labels, const std::string& qname,
                       uint16_t qtype) const;
  LookupResult Reverse(const std::string& qname, uint16_t qtype) const;
  // NOERROR/NXDOMAIN with the SOA of `zone` ("" = the cluster domain) in authority.
  LookupResult Negative(Rcode rcode, const std::string& zone = "") const;
  Rr Soa(const std::string& owner = "") const;
  void AddAddress(const std::string& owner, const std::string& ip, uint16_t qtype,
                  std::vector<Rr>* out) const;

  const ZoneConfig config_;
  std::array<uint8_t, 4> cidr_base_{};
  uint32_t cidr_mask_ = 0;
  std::string reverse_zone_ = "in-addr.arpa";

  mutable std::shared_mutex mu_;
  std::map<std::string, Service> services_;                  // "svc.ns" -> service
  std::map<std::string, Slice> slices_;                      // "ns/name" -> slice
  std::map<std::string, std::set<std::string>> by_service_;  // "svc.ns" -> slice keys
  std::map<std::string, std::set<std::string>> ptr_;         // ClusterIP -> "svc.ns" keys
  std::map<std::string, size_t> namespaces_;                 // ns -> number of services
  std::atomic<uint32_t> serial_{1};
};

}  // namespace mk8s::dns
