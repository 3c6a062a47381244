#include "records.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <mutex>

namespace mk8s::dns {
namespace {

using json = nlohmann::json;

bool EndsWith(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() &&
         text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::vector<std::string> SplitDots(const std::string& text) {
  std::vector<std::string> out;
  if (text.empty()) return out;
  size_t start = 0;
  while (true) {
    const size_t dot = text.find('.', start);
    out.push_back(text.substr(start, dot == std::string::npos ? std::string::npos : dot - start));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return out;
}

std::string Str(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : "";
}

std::vector<PortSpec> PortsFromJson(const json& spec_or_slice) {
  std::vector<PortSpec> ports;
  auto it = spec_or_slice.find("ports");
  if (it == spec_or_slice.end() || !it->is_array()) return ports;
  for (const json& p : *it) {
    if (!p.is_object()) continue;
    auto number = p.find("port");
    if (number == p.end() || !number->is_number_integer()) continue;
    const int64_t value = number->get<int64_t>();
    if (value <= 0 || value > 65535) continue;
    PortSpec port;
    port.name = Str(p, "name");
    port.protocol = ToLower(Str(p, "protocol"));
    if (port.protocol.empty()) port.protocol = "tcp";
    port.port = static_cast<uint16_t>(value);
    ports.push_back(std::move(port));
  }
  return ports;
}

std::string Dashed(std::string ip, char separator) {
  std::replace(ip.begin(), ip.end(), separator, '-');
  return ip;
}

}  // namespace

std::optional<Service> ServiceFromJson(const json& object) {
  if (!object.is_object()) return std::nullopt;
  const json& meta = object.value("metadata", json::object());
  const json& spec = object.value("spec", json::object());
  if (!meta.is_object() || !spec.is_object()) return std::nullopt;
  Service service;
  service.name = ToLower(Str(meta, "name"));
  service.ns = ToLower(Str(meta, "namespace"));
  if (service.name.empty() || service.ns.empty()) return std::nullopt;
  if (Str(spec, "type") == "ExternalName") {
    service.external_name = ToLower(Str(spec, "externalName"));
    if (!service.external_name.empty() && service.external_name.back() == '.') {
      service.external_name.pop_back();
    }
    if (!SplitName(service.external_name)) service.external_name.clear();
  } else if (Str(spec, "clusterIP") == "None") {
    service.headless = true;
  } else {
    if (auto ips = spec.find("clusterIPs"); ips != spec.end() && ips->is_array()) {
      for (const json& ip : *ips) {
        if (ip.is_string() && ip.get<std::string>() != "None") service.cluster_ips.push_back(ip);
      }
    }
    if (service.cluster_ips.empty() && !Str(spec, "clusterIP").empty()) {
      service.cluster_ips.push_back(Str(spec, "clusterIP"));
    }
  }
  service.ports = PortsFromJson(spec);
  return service;
}

std::optional<Slice> SliceFromJson(const json& object) {
  if (!object.is_object()) return std::nullopt;
  const json& meta = object.value("metadata", json::object());
  if (!meta.is_object()) return std::nullopt;
  Slice slice;
  slice.name = Str(meta, "name");
  slice.ns = ToLower(Str(meta, "namespace"));
  if (auto labels = meta.find("labels"); labels != meta.end() && labels->is_object()) {
    slice.service = ToLower(Str(*labels, "kubernetes.io/service-name"));
  }
  const std::string type = Str(object, "addressType");
  if (slice.name.empty() || slice.ns.empty() || slice.service.empty() ||
      (type != "IPv4" && type != "IPv6")) {
    return std::nullopt;
  }
  slice.ipv6 = type == "IPv6";
  if (auto endpoints = object.find("endpoints");
      endpoints != object.end() && endpoints->is_array()) {
    for (const json& e : *endpoints) {
      if (!e.is_object()) continue;
      Endpoint endpoint;
      if (auto addresses = e.find("addresses"); addresses != e.end() && addresses->is_array()) {
        for (const json& a : *addresses) {
          if (a.is_string()) endpoint.addresses.push_back(a);
        }
      }
      // The API's rule: an absent ready condition means ready.
      if (auto conditions = e.find("conditions");
          conditions != e.end() && conditions->is_object()) {
        if (auto ready = conditions->find("ready");
            ready != conditions->end() && ready->is_boolean()) {
          endpoint.ready = ready->get<bool>();
        }
      }
      endpoint.hostname = ToLower(Str(e, "hostname"));
      slice.endpoints.push_back(std::move(endpoint));
    }
  }
  slice.ports = PortsFromJson(object);
  return slice;
}

// ---------------------------------------------------------------- ClusterRecords

ClusterRecords::ClusterRecords(ZoneConfig config) : config_(std::move(config)) {
  const size_t slash = config_.service_cidr.find('/');
  if (auto base = ParseIpv4(config_.service_cidr.substr(0, slash));
      base && slash != std::string::npos) {
    const int bits = std::clamp(std::atoi(config_.service_cidr.c_str() + slash + 1), 0, 32);
    cidr_base_ = *base;
    cidr_mask_ = bits == 0 ? 0 : ~0u << (32 - bits);
    // The reverse zone that holds the range (octet-aligned part of the prefix).
    reverse_zone_ = "in-addr.arpa";
    for (int octet = 0; octet < bits / 8; ++octet) {
      reverse_zone_ = std::to_string(cidr_base_[octet]) + "." + reverse_zone_;
    }
  }
  Touch();
}

void ClusterRecords::Touch() {
  const uint32_t now = static_cast<uint32_t>(std::time(nullptr));
  uint32_t current = serial_.load();
  while (!serial_.compare_exchange_weak(current, std::max(current + 1, now))) {
  }
}

void ClusterRecords::IndexService(const Service& service, bool add) {
  const std::string key = Key(service.ns, service.name);
  for (const std::string& ip : service.cluster_ips) {
    if (add) {
      ptr_[ip].insert(key);
    } else if (auto it = ptr_.find(ip); it != ptr_.end()) {
      it->second.erase(key);
      if (it->second.empty()) ptr_.erase(it);
    }
  }
  if (add) {
    ++namespaces_[service.ns];
  } else if (auto it = namespaces_.find(service.ns); it != namespaces_.end() && --it->second == 0) {
    namespaces_.erase(it);
  }
}

void ClusterRecords::UpsertService(Service service) {
  std::unique_lock lock(mu_);
  const std::string key = Key(service.ns, service.name);
  if (auto it = services_.find(key); it != services_.end()) {
    IndexService(it->second, false);
    services_.erase(it);
  }
  IndexService(service, true);
  services_.emplace(key, std::move(service));
  Touch();
}

void ClusterRecords::RemoveService(const std::string& ns, const std::string& name) {
  std::unique_lock lock(mu_);
  if (auto it = services_.find(Key(ns, name)); it != services_.end()) {
    IndexService(it->second, false);
    services_.erase(it);
    Touch();
  }
}

void ClusterRecords::ReplaceServices(std::vector<Service> services) {
  std::unique_lock lock(mu_);
  services_.clear();
  ptr_.clear();
  namespaces_.clear();
  for (Service& service : services) {
    IndexService(service, true);
    std::string key = Key(service.ns, service.name);
    services_[std::move(key)] = std::move(service);
  }
  Touch();
}

void ClusterRecords::AddSliceLocked(Slice slice) {
  const std::string key = slice.ns + "/" + slice.name;
  RemoveSliceLocked(key);
  by_service_[Key(slice.ns, slice.service)].insert(key);
  slices_.emplace(key, std::move(slice));
}

void ClusterRecords::RemoveSliceLocked(const std::string& key) {
  auto it = slices_.find(key);
  if (it == slices_.end()) return;
  const std::string service = Key(it->second.ns, it->second.service);
  if (auto s = by_service_.find(service); s != by_service_.end()) {
    s->second.erase(key);
    if (s->second.empty()) by_service_.erase(s);
  }
  slices_.erase(it);
}

void ClusterRecords::UpsertSlice(Slice slice) {
  std::unique_lock lock(mu_);
  AddSliceLocked(std::move(slice));
  Touch();
}

void ClusterRecords::RemoveSlice(const std::string& ns, const std::string& name) {
  std::unique_lock lock(mu_);
  RemoveSliceLocked(ns + "/" + name);
  Touch();
}

void ClusterRecords::ReplaceSlices(std::vector<Slice> slices) {
  std::unique_lock lock(mu_);
  slices_.clear();
  by_service_.clear();
  for (Slice& slice : slices) AddSliceLocked(std::move(slice));
  Touch();
}

void ClusterRecords::Clear() {
  ReplaceServices({});
  ReplaceSlices({});
}

size_t ClusterRecords::service_count() const {
  std::shared_lock lock(mu_);
  return services_.size();
}

size_t ClusterRecords::slice_count() const {
  std::shared_lock lock(mu_);
  return slices_.size();
}

std::vector<ClusterRecords::Target> ClusterRecords::ReadyTargetsLocked(
    const std::string& service_key) const {
  std::vector<Target> out;
  auto keys = by_service_.find(service_key);
  if (keys == by_service_.end()) return out;
  std::set<std::string> seen;
  for (const std::string& key : keys->second) {
    const Slice& slice = slices_.at(key);
    for (const Endpoint& endpoint : slice.endpoints) {
      if (!endpoint.ready) continue;
      for (const std::string& ip : endpoint.addresses) {
        if (!seen.insert(ip).second) continue;
        Target target;
        target.ip = ip;
        target.ipv6 = slice.ipv6;
        target.host =
            !endpoint.hostname.empty() ? endpoint.hostname : Dashed(ip, slice.ipv6 ? ':' : '.');
        target.ports = &slice.ports;
        out.push_back(std::move(target));
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------- lookup

Rr ClusterRecords::Soa(const std::string& owner) const {
  SoaData soa;
  soa.mname = "ns.dns." + config_.domain;
  soa.rname = "hostmaster." + config_.domain;
  soa.serial = serial_.load();
  soa.refresh = 7200;
  soa.retry = 1800;
  soa.expire = 86400;
  soa.minimum = config_.ttl;
  return Rr{owner.empty() ? config_.domain : owner, kTypeSOA, config_.ttl, soa};
}

LookupResult ClusterRecords::Negative(Rcode rcode, const std::string& zone) const {
  LookupResult result;
  result.ours = true;
  result.rcode = rcode;
  result.authority.push_back(Soa(zone));
  return result;
}

void ClusterRecords::AddAddress(const std::string& owner, const std::string& ip, uint16_t qtype,
                                std::vector<Rr>* out) const {
  const bool any = qtype == kTypeANY;
  if (qtype == kTypeA || any) {
    if (auto v4 = ParseIpv4(ip)) out->push_back(Rr{owner, kTypeA, config_.ttl, *v4});
  }
  if (qtype == kTypeAAAA || any) {
    if (auto v6 = ParseIpv6(ip)) out->push_back(Rr{owner, kTypeAAAA, config_.ttl, *v6});
  }
}

LookupResult ClusterRecords::Lookup(const std::string& qname, uint16_t qtype) const {
  const std::string& zone = config_.domain;
  if (qname != zone && !EndsWith(qname, "." + zone)) {
    if (EndsWith(qname, ".in-addr.arpa") || EndsWith(qname, ".ip6.arpa")) {
      return Reverse(qname, qtype);
    }
    return LookupResult{};  // not ours
  }
  if (qname.find('\\') != std::string::npos) return Negative(kNxDomain);  // no such labels here
  std::vector<std::string> labels =
      SplitDots(qname == zone ? "" : qname.substr(0, qname.size() - zone.size() - 1));
  std::shared_lock lock(mu_);
  if (labels.empty()) {  // the apex
    LookupResult result = Negative(kNoError);
    if (qtype == kTypeSOA || qtype == kTypeANY) {
      result.answer.push_back(Soa());
      result.authority.clear();
    }
    if (qtype == kTypeNS || qtype == kTypeANY) {
      result.answer.push_back(Rr{zone, kTypeNS, config_.ttl, "ns.dns." + zone});
      result.authority.clear();
    }
    return result;
  }
  const std::string last = labels.back();
  labels.pop_back();
  if (last == "svc") return ServiceZone(labels, qname, qtype);
  if (last == "pod") return PodZone(labels, qname, qtype);
  if (last == "dns") {  // ns.dns.<zone>: the nameserver named in the SOA
    if (labels.empty()) return Negative(kNoError);
    if (labels.size() == 1 && labels[0] == "ns") {
      LookupResult result = Negative(kNoError);
      AddAddress(qname, config_.dns_ip, qtype, &result.answer);
      if (!result.answer.empty()) result.authority.clear();
      return result;
    }
  }
  return Negative(kNxDomain);
}

LookupResult ClusterRecords::ServiceZone(const std::vector<std::string>& labels,
                                         const std::string& qname, uint16_t qtype) const {
  const std::string suffix = ".svc." + config_.domain;
  if (labels.empty()) return Negative(kNoError);
  if (labels.size() == 1) {
    return Negative(namespaces_.count(labels[0]) != 0 ? kNoError : kNxDomain);
  }
  const size_t n = labels.size();
  const std::string service_key = labels[n - 2] + "." + labels[n - 1];
  auto found = services_.find(service_key);
  if (found == services_.end() || n > 4) return Negative(kNxDomain);
  const Service& service = found->second;
  const std::string service_name = service_key + suffix;
  LookupResult result = Negative(kNoError);
  std::vector<Rr>& answer = result.answer;
  const bool any = qtype == kTypeANY;

  if (n == 2) {  // <svc>.<ns>.svc.<zone>
    if (!service.external_name.empty()) {
      answer.push_back(Rr{qname, kTypeCNAME, config_.ttl, service.external_name});
    } else if (!service.headless) {
      for (const std::string& ip : service.cluster_ips) AddAddress(qname, ip, qtype, &answer);
      if (qtype == kTypeSRV || any) {
        for (const PortSpec& port : service.ports) {
          const uint16_t weight =
              static_cast<uint16_t>(100 / std::max<size_t>(1, service.ports.size()));
          answer.push_back(
              Rr{qname, kTypeSRV, config_.ttl, SrvData{0, weight, port.port, service_name}});
        }
        for (const std::string& ip : service.cluster_ips) {
          AddAddress(service_name, ip, kTypeANY, &result.additional);
        }
      }
    } else {
      const std::vector<Target> targets = ReadyTargetsLocked(service_key);
      for (const Target& target : targets) AddAddress(qname, target.ip, qtype, &answer);
      if (qtype == kTypeSRV || any) {
        std::vector<Rr> srv;
        for (const Target& target : targets) {
          const std::string host = target.host + "." + service_name;
          for (const PortSpec& port : *target.ports) {
            srv.push_back(Rr{qname, kTypeSRV, config_.ttl, SrvData{0, 0, port.port, host}});
          }
          AddAddress(host, target.ip, kTypeANY, &result.additional);
        }
        for (Rr& rr : srv)
          std::get<SrvData>(rr.data).weight = static_cast<uint16_t>(100 / srv.size());
        answer.insert(answer.end(), srv.begin(), srv.end());
      }
    }
  } else if (n == 3) {  // <host>.<svc>.<ns>.svc.<zone>
    bool exists = false;
    for (const Target& target : ReadyTargetsLocked(service_key)) {
      if (target.host != labels[0]) continue;
      exists = true;
      AddAddress(qname, target.ip, qtype, &answer);
    }
    if (!exists) return Negative(kNxDomain);
  } else {  // _<port>._<proto>.<svc>.<ns>.svc.<zone>
    if (labels[0].size() < 2 || labels[0][0] != '_' || labels[1].size() < 2 ||
        labels[1][0] != '_') {
      return Negative(kNxDomain);
    }
    const std::string port_name = labels[0].substr(1);
    const std::string protocol = labels[1].substr(1);
    const auto matches = [&](const PortSpec& p) {
      return p.name == port_name && p.protocol == protocol;
    };
    std::vector<Rr> srv;
    if (!service.headless && service.external_name.empty()) {
      for (const PortSpec& port : service.ports) {
        if (!matches(port)) continue;
        srv.push_back(Rr{qname, kTypeSRV, config_.ttl, SrvData{0, 0, port.port, service_name}});
        for (const std::string& ip : service.cluster_ips) {
          AddAddress(service_name, ip, kTypeANY, &result.additional);
        }
      }
    } else if (service.headless) {
      for (const Target& target : ReadyTargetsLocked(service_key)) {
        const std::string host = target.host + "." + service_name;
        bool used = false;
        for (const PortSpec& port : *target.ports) {
          if (!matches(port)) continue;
          srv.push_back(Rr{qname, kTypeSRV, config_.ttl, SrvData{0, 0, port.port, host}});
          used = true;
        }
        if (used) AddAddress(host, target.ip, kTypeANY, &result.additional);
      }
    }
    if (srv.empty()) return Negative(kNxDomain);
    if (qtype == kTypeSRV || any) {
      for (Rr& rr : srv)
        std::get<SrvData>(rr.data).weight = static_cast<uint16_t>(100 / srv.size());
      answer = std::move(srv);
    } else {
      result.additional.clear();
    }
  }
  if (!answer.empty()) result.authority.clear();
  if (answer.empty()) result.additional.clear();
  return result;
}

LookupResult ClusterRecords::PodZone(const std::vector<std::string>& labels,
                                     const std::string& qname, uint16_t qtype) const {
  if (labels.size() < 2) return Negative(kNoError);
  if (labels.size() > 2) return Negative(kNxDomain);
  std::string text = labels[0];
  const bool v6 = text.find("--") != std::string::npos ||
                  std::count(text.begin(), text.end(), '-') > 3 ||
                  text.find_first_of("abcdef") != std::string::npos;
  std::replace(text.begin(), text.end(), '-', v6 ? ':' : '.');
  if (!(v6 ? ParseIpv6(text).has_value() : ParseIpv4(text).has_value())) {
    return Negative(kNxDomain);
  }
  LookupResult result = Negative(kNoError);
  AddAddress(qname, text, qtype, &result.answer);
  if (!result.answer.empty()) result.authority.clear();
  return result;
}

LookupResult ClusterRecords::Reverse(const std::string& qname, uint16_t qtype) const {
  std::vector<std::string> labels = SplitDots(qname);
  std::string ip;
  bool in_service_range = false;
  if (EndsWith(qname, ".in-addr.arpa")) {
    if (labels.size() != 6) return LookupResult{};
    ip = labels[3] + "." + labels[2] + "." + labels[1] + "." + labels[0];
    auto v4 = ParseIpv4(ip);
    if (!v4 || ip.find_first_not_of("0123456789.") != std::string::npos) return LookupResult{};
    ip = FormatIpv4(*v4);  // canonical ("010" and friends never match)
    const uint32_t value = (*v4)[0] << 24 | (*v4)[1] << 16 | (*v4)[2] << 8 | (*v4)[3];
    const uint32_t base =
        cidr_base_[0] << 24 | cidr_base_[1] << 16 | cidr_base_[2] << 8 | cidr_base_[3];
    in_service_range = cidr_mask_ != 0 && (value & cidr_mask_) == (base & cidr_mask_);
  } else {
    if (labels.size() != 34) return LookupResult{};
    std::string hex;
    for (int i = 31; i >= 0; --i) {
      if (labels[i].size() != 1 || !std::isxdigit(static_cast<unsigned char>(labels[i][0]))) {
        return LookupResult{};
      }
      hex += labels[i];
      if (i % 4 == 0 && i != 0) hex += ':';
    }
    auto v6 = ParseIpv6(hex);
    if (!v6) return LookupResult{};
    ip = FormatIpv6(*v6);
  }
  std::shared_lock lock(mu_);
  std::vector<std::string> targets;
  if (auto it = ptr_.find(ip); it != ptr_.end()) {
    for (const std::string& key : it->second) targets.push_back(key + ".svc." + config_.domain);
  }
  if (targets.empty()) {  // an endpoint of a headless service (a scan: PTR queries are rare)
    for (const auto& [key, service] : services_) {
      if (!service.headless) continue;
      for (const Target& target : ReadyTargetsLocked(key)) {
        if (target.ip == ip) targets.push_back(target.host + "." + key + ".svc." + config_.domain);
      }
    }
  }
  if (targets.empty()) {
    if (!in_service_range) return LookupResult{};  // fallthrough: upstream knows
    return Negative(kNxDomain, reverse_zone_);
  }
  LookupResult result = Negative(kNoError, reverse_zone_);
  if (qtype == kTypePTR || qtype == kTypeANY) {
    for (const std::string& target : targets) {
      result.answer.push_back(Rr{qname, kTypePTR, config_.ttl, target});
    }
    result.authority.clear();
  }
  return result;
}

}  // namespace mk8s::dns
