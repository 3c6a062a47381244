#include "apiserver/registry/admission.h"

#include "common/quantity.h"

#include <arpa/inet.h>

#include "apiserver/registry/batch_admission.h"
#include "apiserver/registry/certificates_admission.h"
#include "apiserver/registry/core_admission.h"
#include "apiserver/registry/policy_admission.h"
#include "apiserver/registry/watch_cache.h"
#include "apiserver/resources.h"
#include "apiserver/selectors.h"

namespace mk8s::apiserver {
namespace {

using nlohmann::json;

void SetDefault(json& object, const char* key, json value) {
  if (!object.contains(key) || object[key].is_null()) object[key] = std::move(value);
}

std::string ImageTag(const std::string& image) {
  const size_t at = image.find('@');
  if (at != std::string::npos) return "@digest";
  const size_t slash = image.rfind('/');
  const size_t colon = image.rfind(':');
  if (colon == std::string::npos || (slash != std::string::npos && colon < slash)) return "";
  return image.substr(colon + 1);
}

void DefaultContainer(json& container) {
  SetDefault(container, "terminationMessagePath", "/dev/termination-log");
  SetDefault(container, "terminationMessagePolicy", "File");
  SetDefault(container, "resources", json::object());
  if (!container.contains("imagePullPolicy")) {
    const std::string tag = ImageTag(container.value("image", ""));
    container["imagePullPolicy"] = (tag.empty() || tag == "latest") ? "Always" : "IfNotPresent";
  }
  if (container.contains("ports") && container["ports"].is_array()) {
    for (json& port : container["ports"]) {
      if (port.is_object()) SetDefault(port, "protocol", "TCP");
    }
  }
}

// Requests default to limits for every resource limited but not requested (upstream's
// SetDefaults_Container).
void DefaultRequestsFromLimits(json& container) {
  auto resources = container.find("resources");
  if (resources == container.end() || !resources->is_object()) return;
  auto limits = resources->find("limits");
  if (limits == resources->end() || !limits->is_object() || limits->empty()) return;
  json& requests = (*resources)["requests"];
  if (!requests.is_object()) requests = json::object();
  for (const auto& [name, quantity] : limits->items()) {
    if (!requests.contains(name)) requests[name] = quantity;
  }
}

}  // namespace

// Upstream's GetPodQOS over cpu and memory: no requests or limits anywhere -> BestEffort; every
// container limits both and requests equal limits -> Guaranteed; otherwise Burstable.
std::string PodQosClass(const json& spec) {
  std::map<std::string, int64_t> requests, limits;
  bool guaranteed = true;
  for (const char* list : {"initContainers", "containers"}) {
    auto containers = spec.find(list);
    if (containers == spec.end() || !containers->is_array()) continue;
    for (const json& container : *containers) {
      // Looked up in place (no copies: this runs on every pod create).
      static const json kEmpty = json::object();
      auto field = [](const json& object, const char* key) -> const json& {
        if (!object.is_object()) return kEmpty;
        auto found = object.find(key);
        return found == object.end() ? kEmpty : *found;
      };
      const json& resources = field(container, "resources");
      const json& container_requests = field(resources, "requests");
      const json& container_limits = field(resources, "limits");
      int limited = 0;
      for (const char* name : {"cpu", "memory"}) {
        if (container_requests.is_object() && container_requests.contains(name)) {
          const int64_t value = JsonQuantityMilli(container_requests[name]);
          if (value != 0) requests[name] += value;
        }
        if (container_limits.is_object() && container_limits.contains(name)) {
          const int64_t value = JsonQuantityMilli(container_limits[name]);
          if (value != 0) {
            limits[name] += value;
            ++limited;
          }
        }
      }
      if (limited < 2) guaranteed = false;
    }
  }
  if (requests.empty() && limits.empty()) return "BestEffort";
  if (guaranteed && limits.size() == 2) {
    for (const auto& [name, value] : requests) {
      if (limits[name] != value) return "Burstable";
    }
    return "Guaranteed";
  }
  return "Burstable";
}

namespace {

void DefaultPodSpec(json& spec) {
  if (!spec.is_object()) return;
  SetDefault(spec, "restartPolicy", "Always");
  SetDefault(spec, "terminationGracePeriodSeconds", 30);
  SetDefault(spec, "dnsPolicy", "ClusterFirst");
  SetDefault(spec, "securityContext", json::object());
  SetDefault(spec, "schedulerName", "default-scheduler");
  SetDefault(spec, "enableServiceLinks", true);
  for (const char* list : {"containers", "initContainers"}) {
    if (spec.contains(list) && spec[list].is_array()) {
      for (json& container : spec[list]) {
        if (container.is_object()) {
          DefaultContainer(container);
          DefaultRequestsFromLimits(container);
        }
      }
    }
  }
}

void ValidatePodSpec(const json& spec, const std::string& path, std::vector<StatusCause>* causes) {
  if (!spec.is_object()) {
    causes->push_back({"FieldValueRequired", "Required value", path});
    return;
  }
  auto containers = spec.find("containers");
  if (containers == spec.end() || !containers->is_array() || containers->empty()) {
    causes->push_back({"FieldValueRequired", "Required value", path + ".containers"});
    return;
  }
  std::set<std::string> names;
  for (size_t i = 0; i < containers->size(); ++i) {
    const json& container = (*containers)[i];
    const std::string at = path + ".containers[" + std::to_string(i) + "]";
    const std::string name = container.is_object() ? container.value("name", "") : "";
    if (name.empty()) causes->push_back({"FieldValueRequired", "Required value", at + ".name"});
    else if (!names.insert(name).second) {
      causes->push_back({"FieldValueDuplicate", "Duplicate value: \"" + name + "\"", at + ".name"});
    }
    if (!container.is_object() || container.value("image", "").empty()) {
      causes->push_back({"FieldValueRequired", "Required value", at + ".image"});
    }
  }
  const std::string policy = spec.value("restartPolicy", "Always");
  if (policy != "Always" && policy != "OnFailure" && policy != "Never") {
    causes->push_back({"FieldValueNotSupported",
                       "Unsupported value: \"" + policy +
                           "\": supported values: \"Always\", \"OnFailure\", \"Never\"",
                       path + ".restartPolicy"});
  }
}

// Workloads: selector required and matching the template's labels.
void ValidateWorkload(const json& object, bool needs_selector, std::vector<StatusCause>* causes) {
  const json spec = object.value("spec", json::object());
  const json labels = spec.contains("/template/metadata/labels"_json_pointer)
                          ? spec.at("/template/metadata/labels"_json_pointer)
                          : json::object();
  if (needs_selector) {
    const json selector = spec.value("selector", json());
    if (!selector.is_object() || selector.empty()) {
      causes->push_back({"FieldValueRequired", "Required value", "spec.selector"});
    } else if (ValidateLabelSelector(selector, "spec.selector", causes)) {
      // The whole selector, expressions too, must select the template's pods: a controller
      // whose own pods it does not select would release each one it creates, and another
      // controller would adopt it (a create/release/delete loop between them).
      Result<LabelSelector> parsed = LabelSelector::FromObject(selector);
      if (parsed.ok() && !parsed->Matches(labels)) {
        causes->push_back({"FieldValueInvalid",
                           "Invalid value: map[string]string" + labels.dump() +
                               ": `selector` does not match template `labels`",
                           "spec.template.metadata.labels"});
      }
    }
  }
  // Counts and durations are never negative (upstream's ValidateNonnegativeField).
  for (const char* field : {"replicas", "minReadySeconds", "revisionHistoryLimit",
                            "progressDeadlineSeconds"}) {
    auto it = spec.find(field);
    if (it != spec.end() && it->is_number_integer() && it->get<int64_t>() < 0) {
      causes->push_back({"FieldValueInvalid",
                         "Invalid value: " + it->dump() + ": must be greater than or equal to 0",
                         std::string("spec.") + field});
    }
  }
  ValidatePodSpec(spec.contains("/template/spec"_json_pointer)
                      ? spec.at("/template/spec"_json_pointer)
                      : json(),
                  "spec.template.spec", causes);
}

// Workloads, and the batch kinds' own rules (jobs select by a generated selector unless
// spec.manualSelector; cronjobs validate their schedule and job template).
void ValidateBatchOrWorkload(const std::string& resource, const json& object,
                             std::vector<StatusCause>* causes) {
  if (resource == "cronjobs") {
    ValidateCronJob(object, causes);
    ValidatePodSpec(object.contains("/spec/jobTemplate/spec/template/spec"_json_pointer)
                        ? object.at("/spec/jobTemplate/spec/template/spec"_json_pointer)
                        : json(),
                    "spec.jobTemplate.spec.template.spec", causes);
    return;
  }
  const bool manual_selector = object.value("/spec/manualSelector"_json_pointer, false);
  ValidateWorkload(object, resource != "jobs" || manual_selector, causes);
  if (resource == "jobs") ValidateJobSpec(object.value("spec", json::object()), "spec", causes);
}

json* TemplateSpec(json& object) {
  if (!object.contains("/spec/template/spec"_json_pointer)) return nullptr;
  return &object.at("/spec/template/spec"_json_pointer);
}

void DefaultWorkload(const std::string& resource, json& object) {
  json& spec = object["spec"];
  if (!spec.is_object()) spec = json::object();
  if (json* pod = TemplateSpec(object)) DefaultPodSpec(*pod);
  if (resource == "deployments") {
    SetDefault(spec, "replicas", 1);
    SetDefault(spec, "revisionHistoryLimit", 10);
    SetDefault(spec, "progressDeadlineSeconds", 600);
    if (!spec.contains("strategy") || spec["strategy"].is_null() || spec["strategy"].empty()) {
      spec["strategy"] = {{"type", "RollingUpdate"},
                          {"rollingUpdate", {{"maxUnavailable", "25%"}, {"maxSurge", "25%"}}}};
    } else if (spec["strategy"].value("type", "") == "RollingUpdate") {
      json& rolling = spec["strategy"]["rollingUpdate"];
      if (!rolling.is_object()) rolling = json::object();
      SetDefault(rolling, "maxUnavailable", "25%");
      SetDefault(rolling, "maxSurge", "25%");
    }
  } else if (resource == "replicasets" || resource == "statefulsets") {
    SetDefault(spec, "replicas", 1);
    if (resource == "statefulsets") {
      SetDefault(spec, "podManagementPolicy", "OrderedReady");
      SetDefault(spec, "revisionHistoryLimit", 10);
      SetDefault(spec, "updateStrategy",
                 {{"type", "RollingUpdate"}, {"rollingUpdate", {{"partition", 0}}}});
    }
  } else if (resource == "daemonsets") {
    SetDefault(spec, "revisionHistoryLimit", 10);
    SetDefault(spec, "updateStrategy",
               {{"type", "RollingUpdate"},
                {"rollingUpdate", {{"maxUnavailable", 1}, {"maxSurge", 0}}}});
  } else if (resource == "jobs") {
    DefaultJobSpec(spec);
  } else if (resource == "cronjobs") {
    SetDefault(spec, "concurrencyPolicy", "Allow");
    SetDefault(spec, "suspend", false);
    SetDefault(spec, "successfulJobsHistoryLimit", 3);
    SetDefault(spec, "failedJobsHistoryLimit", 1);
    if (spec.contains("/jobTemplate/spec/template/spec"_json_pointer)) {
      DefaultPodSpec(spec.at("/jobTemplate/spec/template/spec"_json_pointer));
    }
  }
}

uint32_t ParseIpv4(const std::string& text) {
  in_addr address{};
  if (inet_pton(AF_INET, text.c_str(), &address) != 1) return 0;
  return ntohl(address.s_addr);
}

}  // namespace

std::optional<uint32_t> RangeAllocator::Allocate(uint32_t value) {
  std::lock_guard lock(mu_);
  if (value != 0) {
    if (value < first_ || value > last_ || used_.count(value)) return std::nullopt;
    used_.insert(value);
    return value;
  }
  const uint32_t size = last_ - first_ + 1;
  for (uint32_t i = 0; i < size; ++i) {
    const uint32_t candidate = first_ + (next_ - first_ + i) % size;
    if (!used_.count(candidate) && !reserved_.count(candidate)) {
      used_.insert(candidate);
      next_ = candidate + 1 > last_ ? first_ : candidate + 1;
      return candidate;
    }
  }
  return std::nullopt;
}

void RangeAllocator::Release(uint32_t value) {
  std::lock_guard lock(mu_);
  used_.erase(value);
}

Admission::Admission(const AdmissionOptions& options)
    : cluster_ips_(1, 254), node_ports_(options.node_port_first, options.node_port_last) {
  const std::string network = options.service_cidr.substr(0, options.service_cidr.find('/'));
  base_address_ = ParseIpv4(network);
  // .1 fronts the API server (default/kubernetes) and .10 is cluster DNS, as in MicroK8s.
  cluster_ips_.ReserveFromDynamic(1);
  cluster_ips_.ReserveFromDynamic(10);
}

std::string Admission::ClusterIpOf(uint32_t offset) const {
  in_addr address{};
  address.s_addr = htonl(base_address_ + offset);
  char text[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &address, text, sizeof(text));
  return text;
}

PriorityClassLookup Admission::PriorityClasses() const {
  PriorityClassLookup lookup;
  const WatchCache* cache = cache_;
  if (cache == nullptr) return lookup;
  lookup.get = [cache](const std::string& name) -> std::optional<json> {
    CachedObjectPtr found = cache->Get("/registry/priorityclasses/" + name);
    if (found == nullptr) return std::nullopt;
    return found->object();
  };
  lookup.global_default = [cache]() -> std::optional<json> {
    const json* best = nullptr;
    const auto snapshot = cache->List("/registry/priorityclasses/");
    for (const auto& item : snapshot.items) {
      const json& c = item->object();
      if (!c.value("globalDefault", false)) continue;
      if (best == nullptr || c.value("value", int64_t{0}) < best->value("value", int64_t{0}))
        best = &c;
    }
    if (best == nullptr) return std::nullopt;
    return *best;
  };
  return lookup;
}

void Admission::LoadAllocations(const WatchCache& cache) {
  cache_ = &cache;
  for (const auto& object : cache.List("/registry/services/").items) {
    const json& service = object->object();
    const uint32_t ip = ParseIpv4(service.value("/spec/clusterIP"_json_pointer, std::string()));
    if (ip > base_address_ && ip - base_address_ <= 254) cluster_ips_.Allocate(ip - base_address_);
    if (service.contains("/spec/ports"_json_pointer)) {
      for (const json& port : service.at("/spec/ports"_json_pointer)) {
        if (port.contains("nodePort")) node_ports_.Allocate(port.value("nodePort", 0u));
      }
    }
  }
}

std::optional<ApiError> Admission::AdmitService(json& service, const json* old) {
  json& spec = service["spec"];
  if (!spec.is_object()) spec = json::object();
  const std::string name = service["metadata"].value("name", "");
  SetDefault(spec, "type", "ClusterIP");
  SetDefault(spec, "sessionAffinity", "None");
  const std::string type = spec["type"].get<std::string>();
  std::vector<StatusCause> causes;
  if (type != "ClusterIP" && type != "NodePort" && type != "LoadBalancer" && type != "ExternalName") {
    causes.push_back({"FieldValueNotSupported", "Unsupported value: \"" + type + "\"", "spec.type"});
  }
  if (spec.contains("ports") && spec["ports"].is_array()) {
    for (size_t i = 0; i < spec["ports"].size(); ++i) {
      json& port = spec["ports"][i];
      const int64_t number = port.value("port", 0);
      if (number < 1 || number > 65535) {
        causes.push_back({"FieldValueInvalid", "Invalid value: " + std::to_string(number) +
                                                   ": must be between 1 and 65535, inclusive",
                          "spec.ports[" + std::to_string(i) + "].port"});
      }
      SetDefault(port, "protocol", "TCP");
      SetDefault(port, "targetPort", number);
    }
  } else if (type != "ExternalName") {
    causes.push_back({"FieldValueRequired", "Required value", "spec.ports"});
  }
  if (!causes.empty()) return ApiError::Invalid("", "Service", name, std::move(causes));

  // ClusterIP: keep the old one on update; allocate on create unless headless ("None").
  if (type != "ExternalName") {
    const std::string old_ip = old ? old->value("/spec/clusterIP"_json_pointer, std::string()) : "";
    std::string requested = spec.value("clusterIP", "");
    if (old != nullptr && !old_ip.empty()) {
      if (!requested.empty() && requested != old_ip) {
        return ApiError::Invalid("", "Service", name,
                                 {{"FieldValueInvalid", "Invalid value: \"" + requested +
                                                            "\": field is immutable",
                                   "spec.clusterIP"}});
      }
      spec["clusterIP"] = old_ip;
    } else if (requested != "None") {
      const uint32_t wanted = requested.empty() ? 0 : ParseIpv4(requested);
      if (!requested.empty() && (wanted <= base_address_ || wanted - base_address_ > 254)) {
        return ApiError::Invalid("", "Service", name,
                                 {{"FieldValueInvalid",
                                   "Invalid value: \"" + requested +
                                       "\": provided IP is not in the valid range. The range of "
                                       "valid IPs is " + ClusterIpOf(0) + "/24",
                                   "spec.clusterIP"}});
      }
      auto offset = cluster_ips_.Allocate(wanted == 0 ? 0 : wanted - base_address_);
      if (!offset) {
        if (wanted != 0) {
          return ApiError::Invalid("", "Service", name,
                                   {{"FieldValueInvalid", "Invalid value: \"" + requested +
                                                              "\": provided IP is already allocated",
                                     "spec.clusterIP"}});
        }
        return ApiError::Internal("failed to allocate a serviceIP: range is full");
      }
      spec["clusterIP"] = ClusterIpOf(*offset);
    }
    spec["clusterIPs"] = json::array({spec["clusterIP"]});
    SetDefault(spec, "ipFamilies", json::array({"IPv4"}));
    SetDefault(spec, "ipFamilyPolicy", "SingleStack");
    SetDefault(spec, "internalTrafficPolicy", "Cluster");
  }
  // NodePorts for NodePort/LoadBalancer services.
  if ((type == "NodePort" || type == "LoadBalancer") && spec.contains("ports")) {
    SetDefault(spec, "externalTrafficPolicy", "Cluster");
    for (size_t i = 0; i < spec["ports"].size(); ++i) {
      json& port = spec["ports"][i];
      uint32_t kept = 0;
      if (old != nullptr && old->contains("/spec/ports"_json_pointer)) {
        for (const json& old_port : old->at("/spec/ports"_json_pointer)) {
          if (old_port.value("port", 0) == port.value("port", 0) && old_port.contains("nodePort")) {
            kept = old_port.value("nodePort", 0u);
          }
        }
      }
      const uint32_t requested = port.value("nodePort", 0u);
      if (kept != 0 && (requested == 0 || requested == kept)) {
        port["nodePort"] = kept;
        continue;
      }
      auto allocated = node_ports_.Allocate(requested);
      if (!allocated) {
        return ApiError::Invalid("", "Service", name,
                                 {{"FieldValueInvalid",
                                   requested ? "Invalid value: " + std::to_string(requested) +
                                                   ": provided port is already allocated or "
                                                   "outside 30000-32767"
                                             : std::string("no free NodePort in 30000-32767"),
                                   "spec.ports[" + std::to_string(i) + "].nodePort"}});
      }
      port["nodePort"] = *allocated;
    }
  }
  return std::nullopt;
}

std::optional<ApiError> Admission::AdmitCreate(const ResourceInfo& resource, json& object,
                                               const UserInfo* requester) {
  const std::string& r = resource.resource;
  if (r == "certificatesigningrequests") return AdmitCsrCreate(object, requester);
  const std::string name = object["metadata"].value("name", "");
  std::vector<StatusCause> causes;
  // A missing spec is Go's zero value, an empty one, which defaulting and validation then judge.
  if ((r == "pods" || r == "services" || r == "poddisruptionbudgets" || r == "deployments" ||
       r == "replicasets" || r == "statefulsets" || r == "daemonsets" || r == "jobs" ||
       r == "cronjobs") &&
      !object["spec"].is_object()) {
    object["spec"] = json::object();
  }
  if (r == "namespaces") {
    object["spec"] = {{"finalizers", json::array({"kubernetes"})}};
    object["status"] = {{"phase", "Active"}};
    object["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
  } else if (r == "pods") {
    DefaultPodSpec(object["spec"]);
    object["spec"]["serviceAccountName"] = object["spec"].value("serviceAccountName", "default");
    object["spec"]["serviceAccount"] = object["spec"]["serviceAccountName"];
    MountServiceAccountToken(object["spec"]);
    if (auto error = AdmitPodPriority(object, PriorityClasses())) return error;
    // DefaultTolerationSeconds, as upstream admits pods: 300 s on not-ready/unreachable nodes.
    json& tolerations = object["spec"]["tolerations"];
    if (!tolerations.is_array()) tolerations = json::array();
    for (const char* key : {"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"}) {
      bool present = false;
      for (const json& t : tolerations) {
        present = present || (t.value("key", "") == key && t.value("effect", "NoExecute") == "NoExecute");
      }
      if (!present) {
        tolerations.push_back({{"key", key}, {"operator", "Exists"}, {"effect", "NoExecute"},
                               {"tolerationSeconds", 300}});
      }
    }
    object["status"] = {{"phase", "Pending"}, {"qosClass", PodQosClass(object["spec"])}};
    ValidatePodSpec(object["spec"], "spec", &causes);
  } else if (r == "services") {
    object["status"] = {{"loadBalancer", json::object()}};
    return AdmitService(object, nullptr);
  } else if (r == "priorityclasses") {
    return AdmitPriorityClass(object, nullptr, PriorityClasses());
  } else if (r == "poddisruptionbudgets") {
    object["status"] = EmptyDisruptionBudgetStatus();
    ValidatePodDisruptionBudget(object, &causes);
  } else if (r == "secrets") {
    SetDefault(object, "type", "Opaque");
    FoldSecretStringData(object, &causes);
  } else if (r == "deployments" || r == "replicasets" || r == "statefulsets" ||
             r == "daemonsets" || r == "jobs" || r == "cronjobs") {
    DefaultWorkload(r, object);
    object["status"] = json::object();
    if (r == "jobs") GenerateJobSelector(object, &causes);
    ValidateBatchOrWorkload(r, object, &causes);
  }
  if (!causes.empty()) {
    return ApiError::Invalid(resource.group, resource.kind, name, std::move(causes));
  }
  return std::nullopt;
}

namespace {

// As upstream's node validation: a node's pod CIDRs are set once (by node IPAM, from "") and
// never changed, since the kubelet's pod network and every other node's routes follow them.
void ValidateNodePodCidrUpdate(const json& node, const json& old, std::vector<StatusCause>* causes) {
  const json* old_spec = old.contains("spec") && old["spec"].is_object() ? &old["spec"] : nullptr;
  const json* new_spec = node.contains("spec") && node["spec"].is_object() ? &node["spec"] : nullptr;
  auto field = [](const json* spec, const char* name) {
    return spec != nullptr && spec->contains(name) ? (*spec)[name] : json();
  };
  for (const char* name : {"podCIDR", "podCIDRs"}) {
    const json before = field(old_spec, name);
    const bool was_set = before.is_string() ? !before.get_ref<const std::string&>().empty()
                                            : before.is_array() && !before.empty();
    if (was_set && field(new_spec, name) != before) {
      causes->push_back({"FieldValueForbidden",
                         "Forbidden: node updates may not change podCIDR except from \"\" to valid",
                         std::string("spec.") + name});
      return;
    }
  }
}

}  // namespace

std::optional<ApiError> Admission::AdmitUpdate(const ResourceInfo& resource, json& object,
                                               const json& old, const std::string& subresource) {
  const std::string& r = resource.resource;
  if (r == "certificatesigningrequests") return AdmitCsrUpdate(object, old, subresource);
  if (!subresource.empty()) return std::nullopt;  // status/scale writes keep the spec as stored
  std::vector<StatusCause> causes;
  const std::string name = object["metadata"].value("name", "");
  if (r == "services") return AdmitService(object, &old);
  if (r == "priorityclasses") return AdmitPriorityClass(object, &old, PriorityClasses());
  if (r == "secrets") {
    FoldSecretStringData(object, &causes);
  } else if (r == "pods") {
    DefaultPodSpec(object["spec"]);
    ValidatePodSpec(object["spec"], "spec", &causes);
  } else if (r == "deployments" || r == "replicasets" || r == "statefulsets" ||
             r == "daemonsets" || r == "jobs" || r == "cronjobs") {
    DefaultWorkload(r, object);
    ValidateBatchOrWorkload(r, object, &causes);
  } else if (r == "nodes") {
    ValidateNodePodCidrUpdate(object, old, &causes);
  } else if (r == "poddisruptionbudgets") {
    ValidatePodDisruptionBudget(object, &causes);
  }
  if (!causes.empty()) {
    return ApiError::Invalid(resource.group, resource.kind, name, std::move(causes));
  }
  return std::nullopt;
}

void Admission::Release(const ResourceInfo& resource, const json& object) {
  if (resource.resource != "services") return;
  const uint32_t ip = ParseIpv4(object.value("/spec/clusterIP"_json_pointer, std::string()));
  if (ip > base_address_ && ip - base_address_ <= 254) cluster_ips_.Release(ip - base_address_);
  if (object.contains("/spec/ports"_json_pointer)) {
    for (const json& port : object.at("/spec/ports"_json_pointer)) {
      if (port.contains("nodePort")) node_ports_.Release(port.value("nodePort", 0u));
    }
  }
}

}  // namespace mk8s::apiserver
