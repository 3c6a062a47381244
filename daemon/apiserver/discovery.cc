#include "apiserver/discovery.h"

#include <nlohmann/json.hpp>

#include "apiserver/api_error.h"
#include "apiserver/resources.h"

namespace mk8s::apiserver {
namespace {

using nlohmann::json;

json LegacyResource(const ResourceInfo& info) {
  json entry = {{"name", info.resource},
                {"singularName", info.singular},
                {"namespaced", info.namespaced},
                {"kind", info.kind},
                {"verbs", info.verbs}};
  if (!info.short_names.empty()) entry["shortNames"] = info.short_names;
  if (!info.categories.empty()) entry["categories"] = info.categories;
  return entry;
}

json LegacySubresource(const ResourceInfo& info, const SubresourceInfo& sub) {
  json entry = {{"name", info.resource + "/" + sub.name},
                {"singularName", ""},
                {"namespaced", info.namespaced},
                {"kind", sub.kind},
                {"verbs", sub.verbs}};
  if (sub.group != info.group || sub.version != info.version) {
    entry["group"] = sub.group;
    entry["version"] = sub.version;
  }
  return entry;
}

json AggregatedResource(const ResourceInfo& info) {
  json entry = {{"resource", info.resource},
                {"responseKind", {{"group", info.group}, {"version", info.version},
                                  {"kind", info.kind}}},
                {"scope", info.namespaced ? "Namespaced" : "Cluster"},
                {"singularResource", info.singular},
                {"verbs", info.verbs}};
  if (!info.short_names.empty()) entry["shortNames"] = info.short_names;
  if (!info.categories.empty()) entry["categories"] = info.categories;
  if (!info.subresources.empty()) {
    json subs = json::array();
    for (const auto& sub : info.subresources) {
      subs.push_back({{"subresource", sub.name},
                      {"responseKind",
                       {{"group", sub.group}, {"version", sub.version}, {"kind", sub.kind}}},
                      {"verbs", sub.verbs}});
    }
    entry["subresources"] = std::move(subs);
  }
  return entry;
}

// Groups (non-core) in registry order with their versions.
std::vector<std::pair<std::string, std::string>> GroupsAndVersions(
    const ResourceRegistry& registry, bool core) {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& info : registry.All()) {
    if (info.group.empty() != core) continue;
    std::pair<std::string, std::string> gv{info.group, info.version};
    if (std::find(out.begin(), out.end(), gv) == out.end()) out.push_back(gv);
  }
  return out;
}

json AggregatedList(const ResourceRegistry& registry, bool core) {
  json items = json::array();
  for (const auto& [group, version] : GroupsAndVersions(registry, core)) {
    json resources = json::array();
    for (const auto& info : registry.All()) {
      if (info.group == group && info.version == version) resources.push_back(AggregatedResource(info));
    }
    json item = {{"metadata", {{"name", group}, {"creationTimestamp", nullptr}}},
                 {"versions", json::array({{{"version", version},
                                            {"resources", std::move(resources)},
                                            {"freshness", "Current"}}})}};
    items.push_back(std::move(item));
  }
  return {{"kind", "APIGroupDiscoveryList"},
          {"apiVersion", "apidiscovery.k8s.io/v2"},
          {"metadata", json::object()},
          {"items", std::move(items)}};
}

bool WantsAggregated(std::string_view accept) {
  return accept.find("as=APIGroupDiscoveryList") != std::string_view::npos &&
         accept.find("v=v2") != std::string_view::npos;
}

DiscoveryDocument Json(const json& body) {
  return {200, "application/json", body.dump()};
}

DiscoveryDocument NotFound(std::string_view path) {
  ApiError error{404, "NotFound", "the server could not find the requested resource"};
  (void)path;
  return {404, "application/json", error.ToJson()};
}

}  // namespace

Discovery::Discovery(const ResourceRegistry& registry, std::string server_address)
    : registry_(registry), server_address_(std::move(server_address)) {}

DiscoveryDocument Discovery::Serve(std::string_view path, std::string_view accept) const {
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  if (path == "/api" || path == "/apis") {
    const bool core = path == "/api";
    if (WantsAggregated(accept)) {
      return {200, std::string(kAggregatedDiscoveryType), AggregatedList(registry_, core).dump()};
    }
    if (core) {
      return Json({{"kind", "APIVersions"},
                   {"versions", {"v1"}},
                   {"serverAddressByClientCIDRs",
                    {{{"clientCIDR", "0.0.0.0/0"}, {"serverAddress", server_address_}}}}});
    }
    json groups = json::array();
    for (const auto& [group, version] : GroupsAndVersions(registry_, false)) {
      json gv = {{"groupVersion", group + "/" + version}, {"version", version}};
      groups.push_back({{"name", group}, {"versions", {gv}}, {"preferredVersion", gv}});
    }
    return Json({{"kind", "APIGroupList"}, {"apiVersion", "v1"}, {"groups", std::move(groups)}});
  }

  std::string group, version;
  if (path.rfind("/api/", 0) == 0) {
    version = std::string(path.substr(5));
  } else if (path.rfind("/apis/", 0) == 0) {
    std::string_view rest = path.substr(6);
    const size_t slash = rest.find('/');
    if (slash == std::string_view::npos) {  // /apis/<group>: APIGroup
      for (const auto& [g, v] : GroupsAndVersions(registry_, false)) {
        if (g != rest) continue;
        json gv = {{"groupVersion", g + "/" + v}, {"version", v}};
        return Json({{"kind", "APIGroup"}, {"apiVersion", "v1"}, {"name", g},
                     {"versions", {gv}}, {"preferredVersion", gv}});
      }
      return NotFound(path);
    }
    group = std::string(rest.substr(0, slash));
    version = std::string(rest.substr(slash + 1));
  } else {
    return NotFound(path);
  }
  json resources = json::array();
  for (const auto& info : registry_.All()) {
    if (info.group != group || info.version != version) continue;
    resources.push_back(LegacyResource(info));
    for (const auto& sub : info.subresources) resources.push_back(LegacySubresource(info, sub));
  }
  if (resources.empty()) return NotFound(path);
  return Json({{"kind", "APIResourceList"},
               {"apiVersion", "v1"},
               {"groupVersion", group.empty() ? version : group + "/" + version},
               {"resources", std::move(resources)}});
}

}  // namespace mk8s::apiserver
