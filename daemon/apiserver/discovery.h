// API discovery documents (/api, /apis, /api/v1, /apis/<group>/<version>) in the legacy format and
// the aggregated (apidiscovery.k8s.io/v2) one, built once from the resource registry.
#pragma once

#include <string>
#include <string_view>

namespace mk8s::apiserver {

class ResourceRegistry;

inline constexpr std::string_view kAggregatedDiscoveryType =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

struct DiscoveryDocument {
  int status = 200;
  std::string content_type;
  std::string body;
};

class Discovery {
 public:
  // `server_address` is what /api advertises ("127.0.0.1:16443").
  Discovery(const ResourceRegistry& registry, std::string server_address);

  // `path` is one of the discovery paths; `accept` the request's Accept header (aggregated
  // discovery is returned when the client asks for it). 404 for unknown groups/versions.
  DiscoveryDocument Serve(std::string_view path, std::string_view accept) const;

 private:
  const ResourceRegistry& registry_;
  std::string server_address_;
};

}  // namespace mk8s::apiserver
