#include "apiserver/resources.h"

#include <algorithm>

namespace mk8s::apiserver {
namespace {

const std::vector<std::string> kCrud = {"create", "delete", "deletecollection", "get",
                                        "list",   "patch",  "update",           "watch"};
const std::vector<std::string> kStatusVerbs = {"get", "patch", "update"};

SubresourceInfo Status(const std::string& group, const std::string& version,
                       const std::string& kind) {
  return {"status", group, version, kind, kStatusVerbs};
}

SubresourceInfo Scale() { return {"scale", "autoscaling", "v1", "Scale", kStatusVerbs}; }

ResourceInfo Resource(std::string group, std::string version, std::string resource,
                      std::string singular, std::string kind, bool namespaced,
                      std::vector<std::string> short_names = {},
                      std::vector<std::string> categories = {}) {
  ResourceInfo info;
  info.group = std::move(group);
  info.version = std::move(version);
  info.resource = std::move(resource);
  info.singular = std::move(singular);
  info.kind = std::move(kind);
  info.namespaced = namespaced;
  info.short_names = std::move(short_names);
  info.categories = std::move(categories);
  info.verbs = kCrud;
  info.storage_resource = info.resource;
  return info;
}

std::vector<ResourceInfo> BuildRegistry() {
  std::vector<ResourceInfo> r;
  const std::vector<std::string> all = {"all"};

  // core/v1
  auto namespaces = Resource("", "v1", "namespaces", "namespace", "Namespace", false, {"ns"});
  namespaces.verbs = {"create", "delete", "get", "list", "patch", "update", "watch"};
  namespaces.subresources = {Status("", "v1", "Namespace"),
                             {"finalize", "", "v1", "Namespace", {"update"}}};
  r.push_back(namespaces);
  auto nodes = Resource("", "v1", "nodes", "node", "Node", false, {"no"});
  nodes.subresources = {Status("", "v1", "Node"),
                        {"proxy", "", "v1", "NodeProxyOptions",
                         {"create", "delete", "get", "patch", "update"}}};
  r.push_back(nodes);
  auto pods = Resource("", "v1", "pods", "pod", "Pod", true, {"po"}, all);
  pods.subresources = {Status("", "v1", "Pod"),
                       {"binding", "", "v1", "Binding", {"create"}},
                       {"eviction", "policy", "v1", "Eviction", {"create"}},
                       {"log", "", "v1", "Pod", {"get"}},
                       {"exec", "", "v1", "PodExecOptions", {"create", "get"}},
                       {"attach", "", "v1", "PodAttachOptions", {"create", "get"}},
                       {"portforward", "", "v1", "PodPortForwardOptions", {"create", "get"}}};
  r.push_back(pods);
  auto services = Resource("", "v1", "services", "service", "Service", true, {"svc"}, all);
  services.subresources = {Status("", "v1", "Service")};
  r.push_back(services);
  r.push_back(Resource("", "v1", "endpoints", "endpoints", "Endpoints", true, {"ep"}));
  r.push_back(Resource("", "v1", "configmaps", "configmap", "ConfigMap", true, {"cm"}));
  r.push_back(Resource("", "v1", "secrets", "secret", "Secret", true));
  auto serviceaccounts =
      Resource("", "v1", "serviceaccounts", "serviceaccount", "ServiceAccount", true, {"sa"});
  serviceaccounts.subresources = {{"token", "authentication.k8s.io", "v1", "TokenRequest",
                                   {"create"}}};
  r.push_back(serviceaccounts);
  r.push_back(Resource("", "v1", "events", "event", "Event", true, {"ev"}));

  // apps/v1
  auto deployments =
      Resource("apps", "v1", "deployments", "deployment", "Deployment", true, {"deploy"}, all);
  deployments.subresources = {Status("apps", "v1", "Deployment"), Scale()};
  r.push_back(deployments);
  auto replicasets =
      Resource("apps", "v1", "replicasets", "replicaset", "ReplicaSet", true, {"rs"}, all);
  replicasets.subresources = {Status("apps", "v1", "ReplicaSet"), Scale()};
  r.push_back(replicasets);
  auto statefulsets =
      Resource("apps", "v1", "statefulsets", "statefulset", "StatefulSet", true, {"sts"}, all);
  statefulsets.subresources = {Status("apps", "v1", "StatefulSet"), Scale()};
  r.push_back(statefulsets);
  auto daemonsets =
      Resource("apps", "v1", "daemonsets", "daemonset", "DaemonSet", true, {"ds"}, all);
  daemonsets.subresources = {Status("apps", "v1", "DaemonSet")};
  r.push_back(daemonsets);
  r.push_back(Resource("apps", "v1", "controllerrevisions", "controllerrevision",
                       "ControllerRevision", true));

  // batch/v1
  auto jobs = Resource("batch", "v1", "jobs", "job", "Job", true, {}, all);
  jobs.subresources = {Status("batch", "v1", "Job")};
  r.push_back(jobs);
  auto cronjobs = Resource("batch", "v1", "cronjobs", "cronjob", "CronJob", true, {"cj"}, all);
  cronjobs.subresources = {Status("batch", "v1", "CronJob")};
  r.push_back(cronjobs);

  r.push_back(Resource("coordination.k8s.io", "v1", "leases", "lease", "Lease", true));
  auto budgets = Resource("policy", "v1", "poddisruptionbudgets", "poddisruptionbudget",
                          "PodDisruptionBudget", true, {"pdb"});
  budgets.subresources = {Status("policy", "v1", "PodDisruptionBudget")};
  r.push_back(budgets);
  r.push_back(Resource("scheduling.k8s.io", "v1", "priorityclasses", "priorityclass",
                       "PriorityClass", false, {"pc"}));
  r.push_back(Resource("discovery.k8s.io", "v1", "endpointslices", "endpointslice",
                       "EndpointSlice", true));
  // No short name: "ev" means core events, and sharing it makes kubectl warn.
  auto events = Resource("events.k8s.io", "v1", "events", "event", "Event", true);
  events.storage_resource = "events";  // the same objects as core/v1 events
  r.push_back(events);

  for (const char* kind : {"Role", "RoleBinding"}) {
    std::string lower = kind == std::string("Role") ? "role" : "rolebinding";
    r.push_back(Resource("rbac.authorization.k8s.io", "v1", lower + "s", lower, kind, true));
  }
  for (const char* kind : {"ClusterRole", "ClusterRoleBinding"}) {
    std::string lower = kind == std::string("ClusterRole") ? "clusterrole" : "clusterrolebinding";
    r.push_back(Resource("rbac.authorization.k8s.io", "v1", lower + "s", lower, kind, false));
  }
  // certificates.k8s.io/v1: kubelet serving certificates for workers (controllers/certificates).
  auto csrs = Resource("certificates.k8s.io", "v1", "certificatesigningrequests",
                       "certificatesigningrequest", "CertificateSigningRequest", false, {"csr"});
  csrs.subresources = {
      Status("certificates.k8s.io", "v1", "CertificateSigningRequest"),
      {"approval", "certificates.k8s.io", "v1", "CertificateSigningRequest", kStatusVerbs}};
  r.push_back(csrs);
  auto ssar = Resource("authorization.k8s.io", "v1", "selfsubjectaccessreviews",
                       "selfsubjectaccessreview", "SelfSubjectAccessReview", false);
  ssar.verbs = {"create"};
  ssar.stored = false;
  r.push_back(ssar);
  return r;
}

}  // namespace

const SubresourceInfo* ResourceInfo::FindSubresource(std::string_view name) const {
  for (const auto& sub : subresources) {
    if (sub.name == name) return &sub;
  }
  return nullptr;
}

const ResourceRegistry& ResourceRegistry::Builtin() {
  static const ResourceRegistry* registry = [] {
    auto* built = new ResourceRegistry();
    built->resources_ = BuildRegistry();
    return built;
  }();
  return *registry;
}

const ResourceInfo* ResourceRegistry::Find(std::string_view group, std::string_view version,
                                           std::string_view resource) const {
  for (const auto& info : resources_) {
    if (info.group == group && info.version == version && info.resource == resource) return &info;
  }
  return nullptr;
}

const ResourceInfo* ResourceRegistry::FindByKind(std::string_view group, std::string_view version,
                                                 std::string_view kind) const {
  for (const auto& info : resources_) {
    if (info.group == group && info.version == version && info.kind == kind) return &info;
  }
  return nullptr;
}

std::vector<std::string> ResourceRegistry::GroupVersions() const {
  std::vector<std::string> out;
  for (const auto& info : resources_) {
    const std::string gv = info.GroupVersion();
    if (std::find(out.begin(), out.end(), gv) == out.end()) out.push_back(gv);
  }
  return out;
}

}  // namespace mk8s::apiserver
