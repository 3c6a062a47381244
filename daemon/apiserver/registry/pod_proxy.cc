// Pod subresources served by the pod's kubelet: pods/log is proxied to the node's
// /containerLogs endpoint; exec, attach and portforward (upgrade requests: WebSocket or
// SPDY/3.1) to /exec, /attach and /portforward; proxy is not served yet.
#include <nlohmann/json.hpp>

#include "apiserver/proxy/kubelet_client.h"
#include "apiserver/registry/cached_object.h"
#include "apiserver/registry/rest_storage.h"
#include "store/store.h"

namespace mk8s::apiserver {
namespace {

using nlohmann::json;

constexpr uint16_t kDefaultKubeletPort = 10250;
constexpr const char* kDefaultContainerAnnotation = "kubectl.kubernetes.io/default-container";

// Every container name of the pod, in upstream's order (init, regular, ephemeral).
std::vector<std::string> ContainerNames(const json& pod) {
  std::vector<std::string> names;
  for (const char* list : {"initContainers", "containers", "ephemeralContainers"}) {
    const json* containers = nullptr;
    if (pod.contains("spec") && pod["spec"].contains(list)) containers = &pod["spec"][list];
    if (containers == nullptr || !containers->is_array()) continue;
    for (const json& container : *containers) {
      if (container.is_object() && container.contains("name") && container["name"].is_string())
        names.push_back(container["name"].get<std::string>());
    }
  }
  return names;
}

// The container to read (upstream's validateContainer, plus the default-container annotation).
std::optional<ApiError> ChooseContainer(const json& pod, const std::string& name,
                                        std::string* container) {
  const std::vector<std::string> names = ContainerNames(pod);
  const json regular = pod.value("/spec/containers"_json_pointer, json::array());
  if (!container->empty()) {
    if (std::find(names.begin(), names.end(), *container) == names.end()) {
      return ApiError::BadRequest("container " + *container + " is not valid for pod " + name);
    }
    return std::nullopt;
  }
  const std::string annotated = pod.value("/metadata/annotations"_json_pointer, json::object())
                                    .value(kDefaultContainerAnnotation, std::string());
  if (!annotated.empty() && std::find(names.begin(), names.end(), annotated) != names.end()) {
    *container = annotated;
    return std::nullopt;
  }
  if (regular.is_array() && regular.size() == 1 && regular[0].contains("name")) {
    *container = regular[0].value("name", std::string());
    return std::nullopt;
  }
  if (!regular.is_array() || regular.empty()) {
    return ApiError::BadRequest("pod " + name + " does not have a container");
  }
  std::string list;
  for (const std::string& each : names) list += (list.empty() ? "" : " ") + each;
  return ApiError::BadRequest("a container name must be specified for pod " + name +
                              ", choose one of: [" + list + "]");
}

// The address to dial: InternalIP first (as the node registers it), then ExternalIP, then
// Hostname.
std::string NodeAddress(const json& node) {
  const json addresses = node.value("/status/addresses"_json_pointer, json::array());
  for (const char* type : {"InternalIP", "ExternalIP", "Hostname"}) {
    for (const json& address : addresses) {
      if (address.is_object() && address.value("type", std::string()) == type &&
          !address.value("address", std::string()).empty())
        return address["address"].get<std::string>();
    }
  }
  return "";
}

// The query forwarded to the kubelet: the log options, without `container` (it is in the path).
std::string KubeletQuery(std::string_view raw) {
  std::string out;
  while (!raw.empty()) {
    const size_t amp = raw.find('&');
    std::string_view part = raw.substr(0, amp);
    raw = amp == std::string_view::npos ? std::string_view() : raw.substr(amp + 1);
    const std::string_view key = part.substr(0, part.find('='));
    if (key.empty() || key == "container") continue;
    out += (out.empty() ? "" : "&") + std::string(part);
  }
  return out;
}

}  // namespace

void RestStorage::ProxyToKubelet(const RestRequest& request,
                                 std::shared_ptr<http::Responder> responder) {
  const ResourceInfo& resource = *request.resource;
  const std::string& name = request.info.name;
  Result<store::KeyValue> kv = store_->Get(Key(resource, request.info.namespace_, name));
  if (!kv.ok())
    return SendError(*responder, ApiError::NotFound(resource.group, resource.resource, name));
  const json pod = ParseStoredObject(kv->value, kv->mod_rev);
  const std::string node_name = pod.value("/spec/nodeName"_json_pointer, std::string());
  if (node_name.empty()) {
    return SendError(*responder,
                     ApiError::BadRequest("pod " + name + " does not have a host assigned"));
  }
  const std::string& sub = request.info.subresource;
  const bool streaming = sub == "exec" || sub == "attach" || sub == "portforward";
  if ((sub != "log" && !streaming) || kubelet_ == nullptr) {
    return SendError(*responder,
                     ApiError::ServiceUnavailable("no kubelet serves node " + node_name + " yet"));
  }
  if (streaming && request.http.HeaderValue("upgrade").empty()) {
    return SendError(*responder, ApiError::BadRequest("Upgrade request required"));
  }
  if (!streaming && request.info.verb != "get") {
    return SendError(*responder,
                     ApiError::MethodNotAllowed(
                         "the server does not allow this method on the requested resource"));
  }
  std::string container = request.query.Get("container");
  if (sub != "portforward") {
    if (auto error = ChooseContainer(pod, name, &container)) return SendError(*responder, *error);
  }

  Result<store::KeyValue> node_kv = store_->Get("/registry/nodes/" + node_name);
  if (!node_kv.ok()) {
    return SendError(*responder, ApiError::ServiceUnavailable(
                                     "node " + node_name + " of pod " + name +
                                     " is not registered: its kubelet cannot be reached"));
  }
  const json node = ParseStoredObject(node_kv->value, node_kv->mod_rev);
  const std::string host = NodeAddress(node);
  if (host.empty()) {
    return SendError(*responder, ApiError::ServiceUnavailable(
                                     "node " + node_name +
                                     " has no address in status.addresses: its kubelet cannot be "
                                     "reached"));
  }
  int64_t port =
      node.value("/status/daemonEndpoints/kubeletEndpoint/Port"_json_pointer, int64_t{0});
  if (port <= 0 || port > 65535) port = kDefaultKubeletPort;
  std::string target = "/" + (sub == "log" ? std::string("containerLogs") : sub) + "/" +
                       request.info.namespace_ + "/" + name;
  if (sub != "portforward") target += "/" + container;
  if (std::string query = KubeletQuery(request.http.query); !query.empty()) target += "?" + query;
  if (streaming) {
    return kubelet_->ProxyUpgrade(host, static_cast<uint16_t>(port), request.http.method, target,
                                  request.http.headers, std::move(responder));
  }
  kubelet_->StreamGet(host, static_cast<uint16_t>(port), target, std::move(responder));
}

}  // namespace mk8s::apiserver
