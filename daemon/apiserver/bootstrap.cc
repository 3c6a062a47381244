#include "apiserver/bootstrap.h"

#include <nlohmann/json.hpp>

#include "apiserver/registry/admission.h"
#include "apiserver/registry/object_meta.h"
#include "apiserver/registry/priority_admission.h"
#include "apiserver/resources.h"
#include "store/store.h"

namespace mk8s::apiserver {
namespace {

using nlohmann::json;

json Metadata(const std::string& name, const std::string& ns = "") {
  json metadata = {{"name", name},
                   {"uid", NewUid()},
                   {"creationTimestamp", FormatTime(std::chrono::system_clock::now())}};
  if (!ns.empty()) metadata["namespace"] = ns;
  return metadata;
}

Status CreateIfMissing(store::Store* store, const std::string& key, const json& object) {
  store::WriteOutcome outcome = store->Create(key, object.dump());
  if (outcome.status.ok() || outcome.status.code() == Code::kAlreadyExists) return Status::Ok();
  return outcome.status;
}

// Creates `object` at `key`, or updates the stored one when any of `fields` differ (keeping its
// metadata).
Status KeepInLine(store::Store* store, const std::string& key, json object,
                  const std::vector<std::string>& fields) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    Result<store::KeyValue> existing = store->Get(key);
    if (!existing.ok()) {
      store::WriteOutcome created = store->Create(key, object.dump());
      if (created.status.ok()) return Status::Ok();
      if (created.status.code() != Code::kAlreadyExists) return created.status;
      continue;
    }
    json current = json::parse(existing->value, nullptr, false);
    bool same = current.is_object();
    for (const std::string& field : fields) same = same && current[field] == object[field];
    if (same) return Status::Ok();
    if (current.is_object()) object["metadata"] = current["metadata"];
    store::WriteOutcome updated = store->Update(key, object.dump(), existing->mod_rev);
    if (updated.status.ok()) return Status::Ok();
    if (updated.status.code() != Code::kConflict) return updated.status;
  }
  return Status(Code::kInternal, "cannot update " + key + ": too many conflicts");
}

}  // namespace

Status Bootstrap(store::Store* store, Admission* admission, const std::vector<std::string>& node_ips,
                 uint16_t port) {
  for (const char* name : {"default", "kube-system", "kube-public", "kube-node-lease"}) {
    json ns = {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", Metadata(name)}};
    ns["metadata"]["labels"] = {{"kubernetes.io/metadata.name", name}};
    ns["spec"] = {{"finalizers", json::array({"kubernetes"})}};
    ns["status"] = {{"phase", "Active"}};
    if (Status status = CreateIfMissing(store, std::string("/registry/namespaces/") + name, ns);
        !status.ok()) {
      return status;
    }
  }

  // The built-in priority classes (system-node-critical, system-cluster-critical).
  for (json priority_class : BuiltInPriorityClasses()) {
    const std::string name = priority_class["metadata"]["name"];
    priority_class["metadata"] = Metadata(name);
    if (Status status =
            CreateIfMissing(store, "/registry/priorityclasses/" + name, priority_class);
        !status.ok()) {
      return status;
    }
  }

  const ResourceInfo* services = ResourceRegistry::Builtin().Find("", "v1", "services");
  if (!store->Get("/registry/services/default/kubernetes").ok()) {
    json service = {{"apiVersion", "v1"},
                    {"kind", "Service"},
                    {"metadata", Metadata("kubernetes", "default")},
                    {"spec",
                     {{"clusterIP", admission->ClusterIpOf(1)},
                      {"ports", json::array({{{"name", "https"}, {"port", 443}, {"protocol", "TCP"},
                                              {"targetPort", port}}})},
                      {"sessionAffinity", "None"},
                      {"type", "ClusterIP"}}}};
    service["metadata"]["labels"] = {{"component", "apiserver"}, {"provider", "kubernetes"}};
    if (auto error = admission->AdmitCreate(*services, service)) {
      return Status(Code::kInternal, "cannot create the kubernetes service: " + error->message);
    }
    if (Status status = CreateIfMissing(store, "/registry/services/default/kubernetes", service);
        !status.ok()) {
      return status;
    }
  }

  // The Endpoints always point at this API server's current addresses and port.
  json addresses = json::array();
  for (const std::string& ip : node_ips) addresses.push_back({{"ip", ip}});
  json endpoints = {{"apiVersion", "v1"},
                    {"kind", "Endpoints"},
                    {"metadata", Metadata("kubernetes", "default")},
                    {"subsets", json::array({{{"addresses", addresses},
                                              {"ports", json::array({{{"name", "https"},
                                                                      {"port", port},
                                                                      {"protocol", "TCP"}}})}}})}};
  endpoints["metadata"]["labels"] = {{"endpointslice.kubernetes.io/skip-mirror", "true"}};
  if (Status status = KeepInLine(store, "/registry/endpoints/default/kubernetes", endpoints, {"subsets"});
      !status.ok()) {
    return status;
  }
  // The same addresses as an EndpointSlice, which is what kube-proxy reads (upstream's
  // apiserver writes both too; the Endpoints carry skip-mirror so nothing else copies them).
  json slice_endpoints = json::array();
  for (const std::string& ip : node_ips) {
    slice_endpoints.push_back({{"addresses", {ip}}, {"conditions", {{"ready", true}}}});
  }
  json slice = {{"apiVersion", "discovery.k8s.io/v1"},
                {"kind", "EndpointSlice"},
                {"metadata", Metadata("kubernetes", "default")},
                {"addressType", "IPv4"},
                {"endpoints", slice_endpoints},
                {"ports", json::array({{{"name", "https"}, {"port", port}, {"protocol", "TCP"}}})}};
  slice["metadata"]["labels"] = {{"kubernetes.io/service-name", "kubernetes"}};
  return KeepInLine(store, "/registry/endpointslices/default/kubernetes", slice, {"endpoints", "ports"});
}

}  // namespace mk8s::apiserver
