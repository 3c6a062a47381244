#include "client/rest_mapper.h"

#include <utility>

#include <nlohmann/json.hpp>

namespace mk8s::client {

RestMapper::RestMapper(std::shared_ptr<Client> client) : client_(std::move(client)) {}

ApiResult<RestMapper::Mapping> RestMapper::ResourceFor(const std::string& api_version,
                                                       const std::string& kind) {
  if (api_version.empty() || kind.empty()) return Mapping{};
  std::string group, version = api_version;
  if (const size_t slash = api_version.find('/'); slash != std::string::npos) {
    group = api_version.substr(0, slash);
    version = api_version.substr(slash + 1);
  }
  // "apps/v1/x", "/v1" or "apps/" name no group version a server could serve.
  if (version.empty() || version.find('/') != std::string::npos ||
      (api_version.find('/') != std::string::npos && group.empty())) {
    return Mapping{};
  }

  auto find = [&](const std::vector<Served>& served) {
    for (const Served& entry : served) {
      if (entry.kind == kind) return Mapping{true, entry.resource};
    }
    return Mapping{};
  };
  {
    std::lock_guard lock(mu_);
    if (auto it = by_group_version_.find(api_version); it != by_group_version_.end()) {
      return find(it->second);
    }
  }

  // Not cached: read the group version's APIResourceList (outside the lock: it blocks).
  Request request;
  request.path = ResourceRef{group, version, "", true}.GroupVersionPath();
  request.headers.emplace_back("accept", "application/json");
  auto document = client_->Do(std::move(request));
  std::vector<Served> served;
  if (!document.ok()) {
    if (!IsNotFound(document.error())) return document.error();
  } else if (document->is_object() && document->contains("resources") &&
             (*document)["resources"].is_array()) {
    for (const nlohmann::json& entry : (*document)["resources"]) {
      if (!entry.is_object()) continue;
      const std::string name = entry.value("name", "");
      // Subresources ("pods/status") answer with other kinds; only the resources themselves.
      if (name.empty() || name.find('/') != std::string::npos) continue;
      served.push_back(Served{entry.value("kind", ""),
                              ResourceRef{group, version, name, entry.value("namespaced", true)}});
    }
  }
  std::lock_guard lock(mu_);
  auto [it, inserted] = by_group_version_.emplace(api_version, std::move(served));
  return find(it->second);
}

}  // namespace mk8s::client
