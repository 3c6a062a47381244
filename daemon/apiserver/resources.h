// The registry of served resources: what discovery lists and what the router dispatches on.
// Immutable after construction; safe to read from any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mk8s::apiserver {

struct SubresourceInfo {
  std::string name;       // "status", "scale", "log", ...
  std::string group;      // response kind's group/version/kind (e.g. autoscaling/v1 Scale)
  std::string version;
  std::string kind;
  std::vector<std::string> verbs;
};

struct ResourceInfo {
  std::string group;          // "" for core
  std::string version;
  std::string resource;       // plural, e.g. "deployments"
  std::string singular;       // "deployment"
  std::string kind;           // "Deployment"
  bool namespaced = true;
  std::vector<std::string> short_names;
  std::vector<std::string> categories;  // "all" for what `kubectl get all` shows
  std::vector<std::string> verbs;
  std::vector<SubresourceInfo> subresources;
  // Where objects live in the store: "/registry/<storage_resource>/...". Two resources share a
  // storage_resource when they are views of the same objects (core and events.k8s.io events).
  std::string storage_resource;
  bool stored = true;         // false for virtual resources (selfsubjectaccessreviews)

  std::string GroupVersion() const { return group.empty() ? version : group + "/" + version; }
  const SubresourceInfo* FindSubresource(std::string_view name) const;
};

class ResourceRegistry {
 public:
  // Every resource mk8s serves.
  static const ResourceRegistry& Builtin();

  const ResourceInfo* Find(std::string_view group, std::string_view version,
                           std::string_view resource) const;
  const ResourceInfo* FindByKind(std::string_view group, std::string_view version,
                                 std::string_view kind) const;
  const std::vector<ResourceInfo>& All() const { return resources_; }
  // Group versions in discovery order ("v1" first, then groups).
  std::vector<std::string> GroupVersions() const;

 private:
  std::vector<ResourceInfo> resources_;
};

}  // namespace mk8s::apiserver
