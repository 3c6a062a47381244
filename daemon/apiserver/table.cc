#include "apiserver/table.h"

#include <cctype>

#include "apiserver/registry/object_meta.h"
#include "apiserver/resources.h"

namespace mk8s::apiserver {
namespace {

using nlohmann::json;
using Time = std::chrono::system_clock::time_point;

json Column(const std::string& name, const std::string& type, int priority = 0,
            const std::string& format = "") {
  return {{"name", name}, {"type", type}, {"format", format}, {"description", name}, {"priority", priority}};
}

std::string Str(const json& object, const json::json_pointer& pointer, const std::string& fallback = "") {
  if (!object.contains(pointer)) return fallback;
  const json& value = object.at(pointer);
  if (value.is_string()) return value.get<std::string>();
  if (value.is_number_integer()) return std::to_string(value.get<int64_t>());
  return fallback;
}

int64_t Int(const json& object, const json::json_pointer& pointer, int64_t fallback = 0) {
  if (!object.contains(pointer)) return fallback;
  const json& value = object.at(pointer);
  return value.is_number() ? value.get<int64_t>() : fallback;
}

std::string Age(const json& object, const std::string& field, Time now) {
  const std::string text = Str(object, json::json_pointer(field));
  Time created;
  if (text.empty() || !ParseTime(text, &created)) return "<unknown>";
  return HumanDuration(std::chrono::duration_cast<std::chrono::seconds>(now - created));
}

std::string Join(const std::vector<std::string>& parts, const std::string& separator = ",") {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? separator : "") + parts[i];
  return out;
}

std::string SelectorString(const json& selector) {
  std::vector<std::string> parts;
  if (selector.is_object()) {
    for (const auto& [key, value] : selector.items()) {
      if (value.is_string()) parts.push_back(key + "=" + value.get<std::string>());
    }
  }
  return parts.empty() ? "<none>" : Join(parts);
}

std::string PodStatusReason(const json& pod) {
  std::string reason = Str(pod, "/status/phase"_json_pointer, "Pending");
  if (pod.contains("/status/reason"_json_pointer)) reason = Str(pod, "/status/reason"_json_pointer);
  const json* statuses = nullptr;
  if (pod.contains("/status/containerStatuses"_json_pointer)) {
    statuses = &pod.at("/status/containerStatuses"_json_pointer);
  }
  if (statuses != nullptr && statuses->is_array()) {
    for (const json& status : *statuses) {
      if (status.contains("/state/waiting/reason"_json_pointer)) {
        reason = Str(status, "/state/waiting/reason"_json_pointer);
      } else if (status.contains("/state/terminated/reason"_json_pointer)) {
        reason = Str(status, "/state/terminated/reason"_json_pointer);
      }
    }
  }
  if (pod.contains("/metadata/deletionTimestamp"_json_pointer)) reason = "Terminating";
  return reason;
}

json PodCells(const json& pod, Time now) {
  int total = 0, ready = 0;
  int64_t restarts = 0;
  if (pod.contains("/spec/containers"_json_pointer)) {
    total = static_cast<int>(pod.at("/spec/containers"_json_pointer).size());
  }
  if (pod.contains("/status/containerStatuses"_json_pointer)) {
    for (const json& status : pod.at("/status/containerStatuses"_json_pointer)) {
      if (status.value("ready", false)) ++ready;
      restarts += status.value("restartCount", 0);
    }
  }
  std::string gates = "<none>";
  if (pod.contains("/spec/readinessGates"_json_pointer)) {
    std::vector<std::string> names;
    for (const json& gate : pod.at("/spec/readinessGates"_json_pointer)) {
      names.push_back(gate.value("conditionType", ""));
    }
    if (!names.empty()) gates = Join(names);
  }
  return {Str(pod, "/metadata/name"_json_pointer),
          std::to_string(ready) + "/" + std::to_string(total),
          PodStatusReason(pod),
          std::to_string(restarts),
          Age(pod, "/metadata/creationTimestamp", now),
          Str(pod, "/status/podIP"_json_pointer, "<none>"),
          Str(pod, "/spec/nodeName"_json_pointer, "<none>"),
          Str(pod, "/status/nominatedNodeName"_json_pointer, "<none>"),
          gates};
}

json NodeCells(const json& node, Time now) {
  std::string status = "Unknown";
  if (node.contains("/status/conditions"_json_pointer)) {
    for (const json& condition : node.at("/status/conditions"_json_pointer)) {
      if (condition.value("type", "") == "Ready") {
        status = condition.value("status", "") == "True" ? "Ready" : "NotReady";
      }
    }
  }
  if (node.contains("/spec/unschedulable"_json_pointer) &&
      node.at("/spec/unschedulable"_json_pointer) == true) {
    status += ",SchedulingDisabled";
  }
  std::vector<std::string> roles;
  if (node.contains("/metadata/labels"_json_pointer)) {
    for (const auto& [key, value] : node.at("/metadata/labels"_json_pointer).items()) {
      static const std::string kPrefix = "node-role.kubernetes.io/";
      if (key.rfind(kPrefix, 0) == 0) roles.push_back(key.substr(kPrefix.size()));
    }
  }
  std::string internal_ip = "<none>", external_ip = "<none>";
  if (node.contains("/status/addresses"_json_pointer)) {
    for (const json& address : node.at("/status/addresses"_json_pointer)) {
      if (address.value("type", "") == "InternalIP") internal_ip = address.value("address", "");
      if (address.value("type", "") == "ExternalIP") external_ip = address.value("address", "");
    }
  }
  return {Str(node, "/metadata/name"_json_pointer), status,
          roles.empty() ? "<none>" : Join(roles), Age(node, "/metadata/creationTimestamp", now),
          Str(node, "/status/nodeInfo/kubeletVersion"_json_pointer), internal_ip, external_ip,
          Str(node, "/status/nodeInfo/osImage"_json_pointer, "<unknown>"),
          Str(node, "/status/nodeInfo/kernelVersion"_json_pointer, "<unknown>"),
          Str(node, "/status/nodeInfo/containerRuntimeVersion"_json_pointer, "<unknown>")};
}

std::string ContainersField(const json& object, const char* pointer, const char* field) {
  std::vector<std::string> values;
  const json::json_pointer ptr(pointer);
  if (object.contains(ptr)) {
    for (const json& container : object.at(ptr)) values.push_back(container.value(field, ""));
  }
  return Join(values);
}

std::string ServicePorts(const json& service) {
  std::vector<std::string> ports;
  if (service.contains("/spec/ports"_json_pointer)) {
    for (const json& port : service.at("/spec/ports"_json_pointer)) {
      std::string text = std::to_string(port.value("port", 0));
      if (port.contains("nodePort")) text += ":" + std::to_string(port.value("nodePort", 0));
      text += "/" + port.value("protocol", std::string("TCP"));
      ports.push_back(text);
    }
  }
  return ports.empty() ? "<none>" : Join(ports);
}

std::string ServiceExternalIp(const json& service) {
  const std::string type = Str(service, "/spec/type"_json_pointer, "ClusterIP");
  std::vector<std::string> ips;
  if (service.contains("/spec/externalIPs"_json_pointer)) {
    for (const json& ip : service.at("/spec/externalIPs"_json_pointer)) ips.push_back(ip.get<std::string>());
  }
  if (type == "LoadBalancer") {
    if (service.contains("/status/loadBalancer/ingress"_json_pointer)) {
      for (const json& ingress : service.at("/status/loadBalancer/ingress"_json_pointer)) {
        ips.push_back(ingress.value("ip", ingress.value("hostname", "")));
      }
    }
    return ips.empty() ? "<pending>" : Join(ips);
  }
  if (type == "ExternalName") return Str(service, "/spec/externalName"_json_pointer);
  return ips.empty() ? "<none>" : Join(ips);
}

std::string JobStatus(const json& job) {
  if (job.contains("/status/conditions"_json_pointer)) {
    for (const json& condition : job.at("/status/conditions"_json_pointer)) {
      if (condition.value("status", "") != "True") continue;
      const std::string type = condition.value("type", "");
      if (type == "Complete") return "Complete";
      if (type == "Failed") return "Failed";
      if (type == "Suspended") return "Suspended";
    }
  }
  return "Running";
}

std::string JobDuration(const json& job, Time now) {
  Time start, end = now;
  if (!ParseTime(Str(job, "/status/startTime"_json_pointer), &start)) return "";
  const std::string completion = Str(job, "/status/completionTime"_json_pointer);
  if (!completion.empty()) ParseTime(completion, &end);
  return HumanDuration(std::chrono::duration_cast<std::chrono::seconds>(end - start));
}

}  // namespace

std::string HumanDuration(std::chrono::seconds age) {
  const int64_t seconds = age.count();
  if (seconds < -1) return "<invalid>";
  if (seconds < 0) return "0s";
  if (seconds < 120) return std::to_string(seconds) + "s";
  const int64_t minutes = seconds / 60;
  if (minutes < 10) {
    const int64_t s = seconds % 60;
    return std::to_string(minutes) + "m" + (s ? std::to_string(s) + "s" : "");
  }
  if (minutes < 180) return std::to_string(minutes) + "m";
  const int64_t hours = minutes / 60;
  if (hours < 8) {
    const int64_t m = minutes % 60;
    return std::to_string(hours) + "h" + (m ? std::to_string(m) + "m" : "");
  }
  if (hours < 48) return std::to_string(hours) + "h";
  if (hours < 24 * 8) {
    const int64_t h = hours % 24;
    return std::to_string(hours / 24) + "d" + (h ? std::to_string(h) + "h" : "");
  }
  if (hours < 24 * 365 * 2) return std::to_string(hours / 24) + "d";
  if (hours < 24 * 365 * 8) {
    const int64_t d = (hours / 24) % 365;
    return std::to_string(hours / 24 / 365) + "y" + (d ? std::to_string(d) + "d" : "");
  }
  return std::to_string(hours / 24 / 365) + "y";
}

json TableColumns(const ResourceInfo& resource) {
  const std::string& r = resource.resource;
  const std::string name_format = "name";
  if (r == "pods") {
    return {Column("Name", "string", 0, name_format), Column("Ready", "string"),
            Column("Status", "string"), Column("Restarts", "string"), Column("Age", "string"),
            Column("IP", "string", 1), Column("Node", "string", 1),
            Column("Nominated Node", "string", 1), Column("Readiness Gates", "string", 1)};
  }
  if (r == "nodes") {
    return {Column("Name", "string", 0, name_format), Column("Status", "string"),
            Column("Roles", "string"), Column("Age", "string"), Column("Version", "string"),
            Column("Internal-IP", "string", 1), Column("External-IP", "string", 1),
            Column("OS-Image", "string", 1), Column("Kernel-Version", "string", 1),
            Column("Container-Runtime", "string", 1)};
  }
  if (r == "deployments") {
    return {Column("Name", "string", 0, name_format), Column("Ready", "string"),
            Column("Up-to-date", "integer"), Column("Available", "integer"),
            Column("Age", "string"), Column("Containers", "string", 1),
            Column("Images", "string", 1), Column("Selector", "string", 1)};
  }
  if (r == "replicasets") {
    return {Column("Name", "string", 0, name_format), Column("Desired", "integer"),
            Column("Current", "integer"), Column("Ready", "integer"), Column("Age", "string"),
            Column("Containers", "string", 1), Column("Images", "string", 1),
            Column("Selector", "string", 1)};
  }
  if (r == "services") {
    return {Column("Name", "string", 0, name_format), Column("Type", "string"),
            Column("Cluster-IP", "string"), Column("External-IP", "string"),
            Column("Port(s)", "string"), Column("Age", "string"), Column("Selector", "string", 1)};
  }
  if (r == "namespaces") {
    return {Column("Name", "string", 0, name_format), Column("Status", "string"),
            Column("Age", "string")};
  }
  if (r == "endpoints") {
    return {Column("Name", "string", 0, name_format), Column("Endpoints", "string"),
            Column("Age", "string")};
  }
  if (r == "endpointslices") {
    return {Column("Name", "string", 0, name_format), Column("AddressType", "string"),
            Column("Ports", "string"), Column("Endpoints", "string"), Column("Age", "string")};
  }
  if (r == "events") {
    return {Column("Last Seen", "string"), Column("Type", "string"), Column("Reason", "string"),
            Column("Object", "string"), Column("Message", "string")};
  }
  if (r == "configmaps") {
    return {Column("Name", "string", 0, name_format), Column("Data", "integer"),
            Column("Age", "string")};
  }
  if (r == "secrets") {
    return {Column("Name", "string", 0, name_format), Column("Type", "string"),
            Column("Data", "integer"), Column("Age", "string")};
  }
  if (r == "jobs") {
    return {Column("Name", "string", 0, name_format), Column("Status", "string"),
            Column("Completions", "string"), Column("Duration", "string"),
            Column("Age", "string"), Column("Containers", "string", 1),
            Column("Images", "string", 1), Column("Selector", "string", 1)};
  }
  if (r == "cronjobs") {
    return {Column("Name", "string", 0, name_format), Column("Schedule", "string"),
            Column("Timezone", "string"), Column("Suspend", "boolean"), Column("Active", "integer"),
            Column("Last Schedule", "string"), Column("Age", "string"),
            Column("Containers", "string", 1), Column("Images", "string", 1),
            Column("Selector", "string", 1)};
  }
  if (r == "leases") {
    return {Column("Name", "string", 0, name_format), Column("Holder", "string"),
            Column("Age", "string")};
  }
  if (r == "poddisruptionbudgets") {
    return {Column("Name", "string", 0, name_format), Column("Min Available", "string"),
            Column("Max Unavailable", "string"), Column("Allowed Disruptions", "integer"),
            Column("Age", "string")};
  }
  if (r == "priorityclasses") {
    return {Column("Name", "string", 0, name_format), Column("Value", "integer"),
            Column("Global-Default", "boolean"), Column("Age", "string"),
            Column("PreemptionPolicy", "string")};
  }
  if (r == "certificatesigningrequests") {
    return {Column("Name", "string", 0, name_format), Column("Age", "string"),
            Column("SignerName", "string"), Column("Requestor", "string"),
            Column("RequestedDuration", "string"), Column("Condition", "string")};
  }
  if (r == "controllerrevisions") {
    return {Column("Name", "string", 0, name_format), Column("Controller", "string"),
            Column("Revision", "integer"), Column("Age", "string")};
  }
  if (r == "daemonsets") {
    return {Column("Name", "string", 0, name_format), Column("Desired", "integer"),
            Column("Current", "integer"), Column("Ready", "integer"),
            Column("Up-to-date", "integer"), Column("Available", "integer"),
            Column("Node Selector", "string"), Column("Age", "string"),
            Column("Containers", "string", 1), Column("Images", "string", 1),
            Column("Selector", "string", 1)};
  }
  return {Column("Name", "string", 0, name_format), Column("Age", "string")};
}

json TableCells(const ResourceInfo& resource, const json& object, Time now) {
  const std::string& r = resource.resource;
  const std::string name = Str(object, "/metadata/name"_json_pointer);
  const std::string age = Age(object, "/metadata/creationTimestamp", now);
  if (r == "pods") return PodCells(object, now);
  if (r == "nodes") return NodeCells(object, now);
  if (r == "deployments") {
    const int64_t replicas = Int(object, "/spec/replicas"_json_pointer, 1);
    return {name,
            std::to_string(Int(object, "/status/readyReplicas"_json_pointer)) + "/" +
                std::to_string(replicas),
            Int(object, "/status/updatedReplicas"_json_pointer),
            Int(object, "/status/availableReplicas"_json_pointer), age,
            ContainersField(object, "/spec/template/spec/containers", "name"),
            ContainersField(object, "/spec/template/spec/containers", "image"),
            SelectorString(object.contains("/spec/selector/matchLabels"_json_pointer)
                               ? object.at("/spec/selector/matchLabels"_json_pointer)
                               : json())};
  }
  if (r == "replicasets") {
    return {name, Int(object, "/spec/replicas"_json_pointer, 1),
            Int(object, "/status/replicas"_json_pointer),
            Int(object, "/status/readyReplicas"_json_pointer), age,
            ContainersField(object, "/spec/template/spec/containers", "name"),
            ContainersField(object, "/spec/template/spec/containers", "image"),
            SelectorString(object.contains("/spec/selector/matchLabels"_json_pointer)
                               ? object.at("/spec/selector/matchLabels"_json_pointer)
                               : json())};
  }
  if (r == "services") {
    return {name, Str(object, "/spec/type"_json_pointer, "ClusterIP"),
            Str(object, "/spec/clusterIP"_json_pointer, "<none>"), ServiceExternalIp(object),
            ServicePorts(object), age,
            SelectorString(object.contains("/spec/selector"_json_pointer)
                               ? object.at("/spec/selector"_json_pointer)
                               : json())};
  }
  if (r == "namespaces") return {name, Str(object, "/status/phase"_json_pointer, "Active"), age};
  if (r == "endpoints") {
    // "10.1.0.5:8080,10.1.0.6:8080" (ready addresses x ports), at most 3 then "+ N more...".
    std::vector<std::string> entries;
    size_t total = 0;
    for (const json& subset : object.value("subsets", json::array())) {
      for (const json& address : subset.value("addresses", json::array())) {
        for (const json& port : subset.value("ports", json::array({json::object()}))) {
          ++total;
          if (entries.size() < 3) {
            entries.push_back(address.value("ip", "") +
                              (port.contains("port") ? ":" + std::to_string(port.value("port", 0)) : ""));
          }
        }
      }
    }
    std::string text = entries.empty() ? "<none>" : Join(entries);
    if (total > entries.size()) text += " + " + std::to_string(total - entries.size()) + " more...";
    return {name, text, age};
  }
  if (r == "endpointslices") {
    std::vector<std::string> ports, addresses;
    for (const json& port : object.value("ports", json::array())) {
      ports.push_back(std::to_string(port.value("port", 0)));
    }
    for (const json& endpoint : object.value("endpoints", json::array())) {
      for (const json& address : endpoint.value("addresses", json::array())) {
        if (addresses.size() < 3) addresses.push_back(address.get<std::string>());
      }
    }
    return {name, Str(object, "/addressType"_json_pointer), ports.empty() ? "<unset>" : Join(ports),
            addresses.empty() ? "<unset>" : Join(addresses), age};
  }
  if (r == "events") {
    std::string last_seen = Age(object, "/lastTimestamp", now);
    if (last_seen == "<unknown>") last_seen = Age(object, "/eventTime", now);
    if (last_seen == "<unknown>") last_seen = age;
    const std::string kind = Str(object, "/involvedObject/kind"_json_pointer);
    std::string target = kind;
    for (char& c : target) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return {last_seen, Str(object, "/type"_json_pointer), Str(object, "/reason"_json_pointer),
            target + "/" + Str(object, "/involvedObject/name"_json_pointer),
            Str(object, "/message"_json_pointer)};
  }
  if (r == "configmaps") {
    size_t count = 0;
    for (const char* field : {"data", "binaryData"}) {
      if (object.contains(field) && object[field].is_object()) count += object[field].size();
    }
    return {name, count, age};
  }
  if (r == "secrets") {
    size_t count = object.contains("data") && object["data"].is_object() ? object["data"].size() : 0;
    return {name, Str(object, "/type"_json_pointer, "Opaque"), count, age};
  }
  if (r == "jobs") {
    const int64_t completions = Int(object, "/spec/completions"_json_pointer, 1);
    return {name, JobStatus(object),
            std::to_string(Int(object, "/status/succeeded"_json_pointer)) + "/" +
                std::to_string(completions),
            JobDuration(object, now), age,
            ContainersField(object, "/spec/template/spec/containers", "name"),
            ContainersField(object, "/spec/template/spec/containers", "image"),
            SelectorString(object.contains("/spec/selector/matchLabels"_json_pointer)
                               ? object.at("/spec/selector/matchLabels"_json_pointer)
                               : json())};
  }
  if (r == "cronjobs") {
    const bool has_last = object.contains("/status/lastScheduleTime"_json_pointer);
    const json active = object.value("/status/active"_json_pointer, json::array());
    return {name, Str(object, "/spec/schedule"_json_pointer),
            Str(object, "/spec/timeZone"_json_pointer, "<none>"),
            std::string(object.value("/spec/suspend"_json_pointer, false) ? "True" : "False"),
            active.is_array() ? active.size() : 0,
            has_last ? Age(object, "/status/lastScheduleTime", now) : std::string("<none>"), age,
            ContainersField(object, "/spec/jobTemplate/spec/template/spec/containers", "name"),
            ContainersField(object, "/spec/jobTemplate/spec/template/spec/containers", "image"),
            "<none>"};
  }
  if (r == "leases") {
    return {name, Str(object, "/spec/holderIdentity"_json_pointer, "<none>"), age};
  }
  if (r == "poddisruptionbudgets") {
    // A count or a percentage, "N/A" when the budget does not use it (as kubectl prints it).
    auto int_or_string = [&](const char* field) -> std::string {
      const json* value = nullptr;
      if (auto spec = object.find("spec"); spec != object.end() && spec->is_object()) {
        if (auto it = spec->find(field); it != spec->end()) value = &*it;
      }
      if (value == nullptr || value->is_null()) return "N/A";
      return value->is_string() ? value->get<std::string>() : value->dump();
    };
    return {name, int_or_string("minAvailable"), int_or_string("maxUnavailable"),
            Int(object, "/status/disruptionsAllowed"_json_pointer, 0), age};
  }
  if (r == "priorityclasses") {
    return {name, object.value("value", int64_t{0}), object.value("globalDefault", false), age,
            Str(object, "/preemptionPolicy"_json_pointer, "<none>")};
  }
  if (r == "certificatesigningrequests") {
    // "Approved,Issued", "Denied", "Pending" (as kubectl shows upstream).
    std::vector<std::string> states;
    for (const json& c : object.value("/status/conditions"_json_pointer, json::array())) {
      if (c.is_object() && c.value("status", "") == "True") states.push_back(c.value("type", ""));
    }
    if (!Str(object, "/status/certificate"_json_pointer).empty()) states.push_back("Issued");
    const int64_t seconds = Int(object, "/spec/expirationSeconds"_json_pointer, 0);
    return {name, age, Str(object, "/spec/signerName"_json_pointer),
            Str(object, "/spec/username"_json_pointer),
            seconds > 0 ? HumanDuration(std::chrono::seconds(seconds)) : std::string("<none>"),
            states.empty() ? std::string("Pending") : Join(states)};
  }
  if (r == "controllerrevisions") {
    std::string controller = "<none>";
    for (const json& owner : object.value("/metadata/ownerReferences"_json_pointer, json::array())) {
      if (!owner.value("controller", false)) continue;
      std::string group = owner.value("apiVersion", "");
      group = group.find('/') == std::string::npos ? "" : "." + group.substr(0, group.find('/'));
      std::string kind = owner.value("kind", "");
      for (char& c : kind) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      controller = kind + group + "/" + owner.value("name", "");
    }
    return {name, controller, Int(object, "/revision"_json_pointer), age};
  }
  if (r == "daemonsets") {
    return {name, Int(object, "/status/desiredNumberScheduled"_json_pointer),
            Int(object, "/status/currentNumberScheduled"_json_pointer),
            Int(object, "/status/numberReady"_json_pointer),
            Int(object, "/status/updatedNumberScheduled"_json_pointer),
            Int(object, "/status/numberAvailable"_json_pointer),
            SelectorString(object.contains("/spec/template/spec/nodeSelector"_json_pointer)
                               ? object.at("/spec/template/spec/nodeSelector"_json_pointer)
                               : json()),
            age, ContainersField(object, "/spec/template/spec/containers", "name"),
            ContainersField(object, "/spec/template/spec/containers", "image"),
            SelectorString(object.contains("/spec/selector/matchLabels"_json_pointer)
                               ? object.at("/spec/selector/matchLabels"_json_pointer)
                               : json())};
  }
  return {name, age};
}

json TableRowObject(const json& object) {
  json metadata = object.contains("metadata") ? object["metadata"] : json::object();
  metadata.erase("managedFields");
  return {{"kind", "PartialObjectMetadata"},
          {"apiVersion", "meta.k8s.io/v1"},
          {"metadata", std::move(metadata)}};
}

}  // namespace mk8s::apiserver
