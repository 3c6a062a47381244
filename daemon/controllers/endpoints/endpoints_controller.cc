#include "controllers/endpoints/endpoints_controller.h"

#include <map>
#include <nlohmann/json.hpp>

#include "client/json_path.h"
#include "controllers/common/pod_util.h"

namespace mk8s::controllers {
namespace {

using nlohmann::json;

constexpr size_t kMaxEndpointsPerSlice = 100;
constexpr const char* kServiceNameLabel = "kubernetes.io/service-name";
constexpr const char* kManagedByLabel = "endpointslice.kubernetes.io/managed-by";
constexpr const char* kManagedBy = "endpointslice-controller.k8s.io";
// The work queue key of the one-off sweep for leftovers (never a Service key: those have a '/').
constexpr const char* kLeftoverSweepKey = "leftover-sweep";
// Leader-election records kept in Endpoints by other components (upstream skips these too).
constexpr const char* kLeaderAnnotation = "control-plane.alpha.kubernetes.io/leader";

bool IsLeaderRecord(const json& endpoints) {
  return endpoints.value("/metadata/annotations"_json_pointer, json::object())
      .contains(kLeaderAnnotation);
}

bool ManagedSliceOf(const json& slice, const std::string& service_name) {
  const json labels = slice.value("/metadata/labels"_json_pointer, json::object());
  return labels.value(kManagedByLabel, "") == kManagedBy &&
         (service_name.empty() || labels.value(kServiceNameLabel, "") == service_name);
}

bool SelectsPod(const json& service, const json& pod) {
  const json* selector = client::FindPath(service, {"spec", "selector"});
  if (selector == nullptr || !selector->is_object() || selector->empty()) return false;
  return MatchLabels(*selector, pod);
}

const json& FieldOr(const json& object, std::initializer_list<std::string_view> path) {
  static const json kNull;
  const json* found = client::FindPath(object, path);
  return found != nullptr ? *found : kNull;
}

// Whether an update can change the pod's addresses (upstream's podEndpointsChanged, plus the
// phase, which decides membership here): labels, hostname/subdomain, deletion, readiness, IPs.
// The binding (spec.nodeName) is set before the pod has an IP, so it changes nothing.
bool PodEndpointsChanged(const json& before, const json& after) {
  for (auto path : {std::initializer_list<std::string_view>{"metadata", "labels"},
                    {"metadata", "deletionTimestamp"},
                    {"spec", "hostname"},
                    {"spec", "subdomain"},
                    {"status", "phase"},
                    {"status", "podIP"},
                    {"status", "podIPs"}}) {
    if (FieldOr(before, path) != FieldOr(after, path)) return true;
  }
  return IsPodReady(before) != IsPodReady(after);
}

// The pod's port for a service port's targetPort (a number, or a container port's name).
int64_t ResolveTargetPort(const json& service_port, const json& pod) {
  const json target = service_port.value("targetPort", service_port.value("port", json(0)));
  if (target.is_number_integer()) return target.get<int64_t>();
  const std::string name = target.is_string() ? target.get<std::string>() : "";
  for (const json& container : pod.value("/spec/containers"_json_pointer, json::array())) {
    for (const json& port : container.value("ports", json::array())) {
      if (port.value("name", "") == name) return port.value("containerPort", int64_t{0});
    }
  }
  if (!name.empty() && std::all_of(name.begin(), name.end(), ::isdigit)) return std::stoll(name);
  return 0;
}

json TargetRef(const json& pod) {
  return {{"kind", "Pod"},
          {"namespace", pod["metadata"].value("namespace", "")},
          {"name", pod["metadata"].value("name", "")},
          {"uid", pod["metadata"].value("uid", "")}};
}

}  // namespace

void EndpointsController::Setup() {
  services_ = context_.informers->For(client::kServices);
  pods_ = context_.informers->For(client::kPods);
  endpoints_ = context_.informers->For(client::kEndpoints);
  slices_ = context_.informers->For(client::kEndpointSlices);
  services_->AddEventHandler(
      {[this](const client::ObjectPtr& s) { EnqueueObject(s); },
       [this](const client::ObjectPtr&, const client::ObjectPtr& s) { EnqueueObject(s); },
       [this](const client::ObjectPtr& s) { EnqueueObject(s); }});
  pods_->AddEventHandler({[this](const client::ObjectPtr& pod) { EnqueueServicesFor(pod); },
                          [this](const client::ObjectPtr& old_pod, const client::ObjectPtr& pod) {
                            if (!PodEndpointsChanged(*old_pod, *pod)) return;
                            EnqueueServicesFor(old_pod);
                            EnqueueServicesFor(pod);
                          },
                          [this](const client::ObjectPtr& pod) { EnqueueServicesFor(pod); }});
  // Runs once the workers start, i.e. after every informer synced.
  Enqueue(kLeftoverSweepKey);
}

// Endpoints and slices of Services deleted while no controller ran are not deleted by any
// Service event: find them once at start (upstream checkLeftoverEndpoints) and queue their
// Service keys; Reconcile deletes them. Later Endpoints without a Service are left alone, as
// upstream does: a user may write Endpoints before their selectorless Service.
void EndpointsController::QueueLeftovers() {
  for (const client::ObjectPtr& endpoints : endpoints_->List()) {
    if (IsLeaderRecord(*endpoints)) continue;
    const std::string key = client::ObjectKey(*endpoints);
    if (!services_->Get(key)) Enqueue(key);
  }
  for (const client::ObjectPtr& slice : slices_->List()) {
    if (!ManagedSliceOf(*slice, "")) continue;
    const std::string key = (*slice)["metadata"].value("namespace", "") + "/" +
                            (*slice).value("/metadata/labels"_json_pointer, json::object())
                                .value(kServiceNameLabel, "");
    if (!services_->Get(key)) Enqueue(key);
  }
}

void EndpointsController::EnqueueServicesFor(const client::ObjectPtr& pod) {
  const std::string& ns = client::StringAtPath(*pod, {"metadata", "namespace"});
  for (const client::ObjectPtr& service : services_->ListByNamespace(ns)) {
    if (SelectsPod(*service, *pod)) EnqueueObject(service);
  }
}

Status EndpointsController::Reconcile(const std::string& key) {
  if (key == kLeftoverSweepKey) {
    QueueLeftovers();
    return Status::Ok();
  }
  auto [ns, name] = client::SplitKey(key);
  client::ObjectPtr service = services_->Get(key);
  if (!service) return DeleteLeftovers(ns, name);
  const json& svc = *service;
  if (!svc.contains("/spec/selector"_json_pointer) || svc["spec"]["selector"].empty()) {
    return Status::Ok();  // user-managed endpoints
  }
  const bool publish_not_ready = svc["spec"].value("publishNotReadyAddresses", false);
  const json service_ports = svc["spec"].value("ports", json::array());

  // Group addresses by their resolved port list (pods may name ports differently).
  std::map<std::string, json> subsets;  // ports dump -> subset
  json slice_endpoints = json::array();
  json slice_ports = json::array();
  bool slice_ports_set = false;
  for (const client::ObjectPtr& pod_ptr : pods_->ListByNamespace(ns)) {
    const json& pod = *pod_ptr;
    if (!SelectsPod(svc, pod)) continue;
    const std::string ip = pod.value("/status/podIP"_json_pointer, std::string());
    if (ip.empty()) continue;
    const std::string phase = pod.value("/status/phase"_json_pointer, std::string());
    if (phase == "Succeeded" || phase == "Failed") continue;
    const bool terminating = pod["metadata"].contains("deletionTimestamp");
    const bool ready = (IsPodReady(pod) && !terminating) || publish_not_ready;
    json ports = json::array();
    for (const json& port : service_ports) {
      json out = {{"port", ResolveTargetPort(port, pod)},
                  {"protocol", port.value("protocol", "TCP")}};
      if (port.contains("name")) out["name"] = port["name"];
      if (port.contains("appProtocol")) out["appProtocol"] = port["appProtocol"];
      ports.push_back(out);
    }
    json address = {{"ip", ip}, {"targetRef", TargetRef(pod)}};
    const std::string node = pod.value("/spec/nodeName"_json_pointer, std::string());
    if (!node.empty()) address["nodeName"] = node;
    if (!terminating || publish_not_ready) {
      json& subset = subsets[ports.dump()];
      subset["ports"] = ports;
      subset[ready ? "addresses" : "notReadyAddresses"].push_back(address);
    }
    json endpoint = {{"addresses", json::array({ip})},
                     {"conditions", {{"ready", ready}, {"serving", IsPodReady(pod)},
                                     {"terminating", terminating}}},
                     {"targetRef", TargetRef(pod)}};
    if (!node.empty()) endpoint["nodeName"] = node;
    slice_endpoints.push_back(endpoint);
    if (!slice_ports_set) {
      slice_ports = ports;
      slice_ports_set = true;
    }
  }
  json subset_list = json::array();
  for (auto& [ports, subset] : subsets) {
    for (const char* field : {"addresses", "notReadyAddresses"}) {
      if (!subset.contains(field)) continue;
      std::sort(subset[field].begin(), subset[field].end(),
                [](const json& a, const json& b) { return a["ip"] < b["ip"]; });
    }
    subset_list.push_back(subset);
  }
  if (Status status = SyncEndpoints(svc, subset_list); !status.ok()) return status;
  if (!slice_ports_set) {
    for (const json& port : service_ports) {
      json out = {{"port", port.value("targetPort", port.value("port", json(0))).is_number()
                               ? port.value("targetPort", port.value("port", json(0)))
                               : json(0)},
                  {"protocol", port.value("protocol", "TCP")}};
      if (port.contains("name")) out["name"] = port["name"];
      slice_ports.push_back(out);
    }
  }
  return SyncSlices(svc, slice_endpoints, slice_ports);
}

// The Service is gone: so are its Endpoints (ownerless Endpoints are ours, but for the API
// server's default/kubernetes and leader-election records) and the slices we made for it (the
// garbage collector would take them too, through their ownerReferences).
Status EndpointsController::DeleteLeftovers(const std::string& ns, const std::string& name) {
  if (client::ObjectPtr endpoints = endpoints_->Get(ns, name);
      endpoints && !(ns == "default" && name == "kubernetes") && !IsLeaderRecord(*endpoints)) {
    client::DeleteOptions options;
    options.precondition_uid = (*endpoints)["metadata"].value("uid", "");
    auto deleted = api().Delete(client::kEndpoints, ns, name, options);
    if (!deleted.ok() && !client::IsNotFound(deleted.error()) &&
        !client::IsConflict(deleted.error())) {
      return deleted.status();
    }
  }
  for (const client::ObjectPtr& slice : slices_->ListByNamespace(ns)) {
    if (!ManagedSliceOf(*slice, name)) continue;
    client::DeleteOptions options;
    options.precondition_uid = (*slice)["metadata"].value("uid", "");
    auto deleted = api().Delete(client::kEndpointSlices, ns, (*slice)["metadata"].value("name", ""),
                                options);
    if (!deleted.ok() && !client::IsNotFound(deleted.error()) &&
        !client::IsConflict(deleted.error())) {
      return deleted.status();
    }
  }
  return Status::Ok();
}

Status EndpointsController::SyncEndpoints(const json& service, const json& subsets) {
  const std::string ns = service["metadata"].value("namespace", "");
  const std::string name = service["metadata"].value("name", "");
  client::ObjectPtr existing = endpoints_->Get(ns, name);
  json labels = service.value("/metadata/labels"_json_pointer, json::object());
  if (existing) {
    if ((*existing).value("subsets", json::array()) == subsets &&
        (*existing).value("/metadata/labels"_json_pointer, json::object()) == labels) {
      return Status::Ok();
    }
    json updated = *existing;
    updated["subsets"] = subsets;
    updated["metadata"]["labels"] = labels;
    auto result = api().Update(client::kEndpoints, updated);
    return result.ok() || client::IsNotFound(result.error()) ? Status::Ok() : result.status();
  }
  json endpoints = {{"apiVersion", "v1"},
                    {"kind", "Endpoints"},
                    {"metadata", {{"name", name}, {"namespace", ns}, {"labels", labels}}},
                    {"subsets", subsets}};
  auto created = api().Create(client::kEndpoints, ns, endpoints);
  if (!created.ok() && !client::IsAlreadyExists(created.error()) &&
      !client::IsForbidden(created.error())) {
    return created.status();
  }
  return Status::Ok();
}

Status EndpointsController::SyncSlices(const json& service, const json& endpoints,
                                       const json& ports) {
  const std::string ns = service["metadata"].value("namespace", "");
  const std::string name = service["metadata"].value("name", "");
  // Slices of at most 100 endpoints, named <service>-<n>, owned by the Service.
  std::vector<json> wanted;
  for (size_t start = 0; start == 0 || start < endpoints.size(); start += kMaxEndpointsPerSlice) {
    json chunk = json::array();
    for (size_t i = start; i < std::min(endpoints.size(), start + kMaxEndpointsPerSlice); ++i) {
      chunk.push_back(endpoints[i]);
    }
    json owner = MakeControllerRef(service);
    owner["apiVersion"] = "v1";
    owner["kind"] = "Service";
    wanted.push_back({{"apiVersion", "discovery.k8s.io/v1"},
                      {"kind", "EndpointSlice"},
                      {"metadata",
                       {{"name", name + "-" + std::to_string(wanted.size())},
                        {"namespace", ns},
                        {"labels", {{kServiceNameLabel, name}, {kManagedByLabel, kManagedBy}}},
                        {"ownerReferences", json::array({owner})}}},
                      {"addressType", "IPv4"},
                      {"endpoints", chunk},
                      {"ports", ports}});
  }
  for (const json& slice : wanted) {
    const std::string slice_name = slice["metadata"]["name"];
    client::ObjectPtr existing = slices_->Get(ns, slice_name);
    if (existing) {
      if ((*existing).value("endpoints", json::array()) == slice["endpoints"] &&
          (*existing).value("ports", json::array()) == slice["ports"]) {
        continue;
      }
      json updated = *existing;
      updated["endpoints"] = slice["endpoints"];
      updated["ports"] = slice["ports"];
      auto result = api().Update(client::kEndpointSlices, updated);
      if (!result.ok() && !client::IsNotFound(result.error())) return result.status();
    } else {
      auto created = api().Create(client::kEndpointSlices, ns, slice);
      if (!created.ok() && !client::IsAlreadyExists(created.error()) &&
          !client::IsForbidden(created.error())) {
        return created.status();
      }
    }
  }
  // Slices beyond what is needed now go away.
  for (const client::ObjectPtr& slice : slices_->ListByNamespace(ns)) {
    const json labels = (*slice).value("/metadata/labels"_json_pointer, json::object());
    if (labels.value(kServiceNameLabel, "") != name || labels.value(kManagedByLabel, "") != kManagedBy) {
      continue;
    }
    const std::string slice_name = (*slice)["metadata"].value("name", "");
    bool keep = false;
    for (const json& w : wanted) keep = keep || w["metadata"]["name"] == slice_name;
    if (keep) continue;
    auto deleted = api().Delete(client::kEndpointSlices, ns, slice_name, {});
    if (!deleted.ok() && !client::IsNotFound(deleted.error())) return deleted.status();
  }
  return Status::Ok();
}

}  // namespace mk8s::controllers
