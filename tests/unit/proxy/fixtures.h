// Builders of Service and EndpointSlice objects for the proxy unit tests.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace mk8s::proxy::testing {

using nlohmann::json;
using Objects = std::vector<std::shared_ptr<const json>>;

inline std::shared_ptr<const json> Service(const std::string& name, const std::string& ip,
                                           json ports, json extra_spec = json::object()) {
  json spec = {{"clusterIP", ip}, {"ports", std::move(ports)}, {"type", "ClusterIP"}};
  spec.update(extra_spec);
  return std::make_shared<const json>(json{{"apiVersion", "v1"},
                                           {"kind", "Service"},
                                           {"metadata", {{"name", name}, {"namespace", "default"}}},
                                           {"spec", spec}});
}

inline json Ep(const std::string& ip, bool ready = true) {
  return {{"addresses", {ip}}, {"conditions", {{"ready", ready}}}};
}

inline std::shared_ptr<const json> Slice(const std::string& service, json endpoints, json ports,
                                         const std::string& suffix = "abc") {
  return std::make_shared<const json>(
      json{{"apiVersion", "discovery.k8s.io/v1"},
           {"kind", "EndpointSlice"},
           {"metadata",
            {{"name", service + "-" + suffix},
             {"namespace", "default"},
             {"labels", {{"kubernetes.io/service-name", service}}}}},
           {"addressType", "IPv4"},
           {"endpoints", std::move(endpoints)},
           {"ports", std::move(ports)}});
}

inline json Port(int port, int target, const std::string& name = "",
                 const std::string& protocol = "TCP") {
  json p = {{"port", port}, {"targetPort", target}, {"protocol", protocol}};
  if (!name.empty()) p["name"] = name;
  return p;
}

inline json SlicePort(int port, const std::string& name = "", const std::string& protocol = "TCP") {
  json p = {{"port", port}, {"protocol", protocol}};
  if (!name.empty()) p["name"] = name;
  return p;
}

}  // namespace mk8s::proxy::testing
