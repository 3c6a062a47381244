// ResourceRef: how the client addresses a resource, and the URL paths built from it.
#pragma once

#include <string>
#include <string_view>

namespace mk8s::client {

struct ResourceRef {
  std::string group;     // "" for the core group
  std::string version;   // "v1"
  std::string resource;  // plural, lower-case: "pods"
  bool namespaced = true;

  // "pods" or "deployments.apps": for logs and informer names.
  std::string Name() const { return group.empty() ? resource : resource + "." + group; }
  // "/api/v1" or "/apis/apps/v1".
  std::string GroupVersionPath() const;
  // The collection or object path. `ns` is ignored for cluster-scoped resources; an empty `ns`
  // on a namespaced resource means all namespaces (lists/watches only). `name` and
  // `subresource` are appended when not empty.
  std::string Path(std::string_view ns, std::string_view name = {},
                   std::string_view subresource = {}) const;
  bool operator==(const ResourceRef& other) const = default;
};

inline const ResourceRef kPods{"", "v1", "pods", true};
inline const ResourceRef kNodes{"", "v1", "nodes", false};
inline const ResourceRef kServices{"", "v1", "services", true};
inline const ResourceRef kEndpoints{"", "v1", "endpoints", true};
inline const ResourceRef kConfigMaps{"", "v1", "configmaps", true};
inline const ResourceRef kSecrets{"", "v1", "secrets", true};
inline const ResourceRef kServiceAccounts{"", "v1", "serviceaccounts", true};
inline const ResourceRef kEvents{"", "v1", "events", true};
inline const ResourceRef kNamespaces{"", "v1", "namespaces", false};
inline const ResourceRef kPersistentVolumeClaims{"", "v1", "persistentvolumeclaims", true};
inline const ResourceRef kEndpointSlices{"discovery.k8s.io", "v1", "endpointslices", true};
inline const ResourceRef kLeases{"coordination.k8s.io", "v1", "leases", true};
inline const ResourceRef kDeployments{"apps", "v1", "deployments", true};
inline const ResourceRef kReplicaSets{"apps", "v1", "replicasets", true};
inline const ResourceRef kStatefulSets{"apps", "v1", "statefulsets", true};
inline const ResourceRef kDaemonSets{"apps", "v1", "daemonsets", true};
inline const ResourceRef kControllerRevisions{"apps", "v1", "controllerrevisions", true};
inline const ResourceRef kJobs{"batch", "v1", "jobs", true};
inline const ResourceRef kCronJobs{"batch", "v1", "cronjobs", true};
inline const ResourceRef kPodDisruptionBudgets{"policy", "v1", "poddisruptionbudgets", true};

}  // namespace mk8s::client
