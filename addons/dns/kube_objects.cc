#include "kube_objects.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <functional>

#include "dns_wire.h"

namespace mk8s::dns {
namespace {

using json = nlohmann::json;

json OwnLabels() {
  return json{{"k8s-app", "kube-dns"}, {"app.kubernetes.io/managed-by", kManagedBy}};
}

json Slice(const std::string& name,
           const std::vector<std::pair<std::string, std::string>>& endpoints, uint16_t port) {
  json list = json::array();
  for (const auto& [node, ip] : endpoints) {
    json endpoint{{"addresses", json::array({ip})},
                  {"conditions", {{"ready", true}, {"serving", true}, {"terminating", false}}}};
    if (!node.empty()) endpoint["nodeName"] = node;
    list.push_back(std::move(endpoint));
  }
  return json{{"apiVersion", "discovery.k8s.io/v1"},
              {"kind", "EndpointSlice"},
              {"metadata",
               {{"name", name},
                {"namespace", kNamespace},
                {"labels",
                 {{"kubernetes.io/service-name", kServiceName},
                  {"endpointslice.kubernetes.io/managed-by", kManagedBy}}}}},
              {"addressType", "IPv4"},
              {"endpoints", std::move(list)},
              {"ports", json::array({{{"name", "dns"}, {"protocol", "UDP"}, {"port", port}},
                                     {{"name", "dns-tcp"}, {"protocol", "TCP"}, {"port", port}}})}};
}

}  // namespace

std::string ServiceManifest(const std::string& cluster_ip, uint16_t target_port) {
  json service{
      {"apiVersion", "v1"},
      {"kind", "Service"},
      {"metadata", {{"name", kServiceName}, {"namespace", kNamespace}, {"labels", OwnLabels()}}},
      {"spec",
       {{"type", "ClusterIP"},
        {"clusterIP", cluster_ip},
        {"ports",
         json::array(
             {{{"name", "dns"}, {"protocol", "UDP"}, {"port", 53}, {"targetPort", target_port}},
              {{"name", "dns-tcp"},
               {"protocol", "TCP"},
               {"port", 53},
               {"targetPort", target_port}}})}}}};
  return service.dump();
}

std::string ConfigMapManifest(const std::string& cluster_ip, const std::string& domain) {
  json config{
      {"apiVersion", "v1"},
      {"kind", "ConfigMap"},
      {"metadata", {{"name", kConfigMapName}, {"namespace", kNamespace}, {"labels", OwnLabels()}}},
      {"data", {{"clusterDNS", cluster_ip}, {"clusterDomain", domain}}}};
  return config.dump();
}

std::optional<std::pair<std::string, std::string>> NodeInternalIp(const json& node) {
  if (!node.is_object()) return std::nullopt;
  const json meta = node.value("metadata", json::object());
  const std::string name = meta.is_object() ? meta.value("name", "") : "";
  if (name.empty()) return std::nullopt;
  const json status = node.value("status", json::object());
  if (!status.is_object()) return std::nullopt;
  auto addresses = status.find("addresses");
  if (addresses == status.end() || !addresses->is_array()) return std::nullopt;
  for (const json& address : *addresses) {
    if (!address.is_object() || address.value("type", "") != "InternalIP") continue;
    const std::string ip = address.value("address", "");
    if (ParseIpv4(ip)) return std::make_pair(name, ip);
  }
  return std::nullopt;
}

std::string SliceNameFor(const std::string& node) {
  std::string name = std::string(kServiceName) + "-" + node;
  if (name.size() <= 253) return name;
  char hash[17];
  std::snprintf(hash, sizeof(hash), "%016zx", std::hash<std::string>{}(node));
  return name.substr(0, 253 - 17) + "-" + hash;
}

std::map<std::string, std::string> DesiredSlices(const std::map<std::string, std::string>& node_ips,
                                                 const std::string& local_ip, uint16_t port) {
  std::map<std::string, std::string> out;
  for (const auto& [node, ip] : node_ips) {
    const std::string name = SliceNameFor(node);
    out[name] = Slice(name, {{node, ip}}, port).dump();
  }
  if (node_ips.empty() && !local_ip.empty()) {
    out[kLocalSlice] = Slice(kLocalSlice, {{"", local_ip}}, port).dump();
  }
  return out;
}

}  // namespace mk8s::dns
