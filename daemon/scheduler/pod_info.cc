#include "scheduler/pod_info.h"

#include <algorithm>

namespace mk8s::scheduler {
namespace {

const nlohmann::json& Get(const nlohmann::json& obj, const char* key) {
  static const nlohmann::json kNull;
  if (!obj.is_object()) return kNull;
  auto it = obj.find(key);
  return it == obj.end() ? kNull : *it;
}

std::string Str(const nlohmann::json& obj, const char* key) {
  const nlohmann::json& v = Get(obj, key);
  return v.is_string() ? v.get<std::string>() : std::string();
}

void ParseWeightedAffinity(const nlohmann::json& arr, const std::string& ns,
                           std::vector<WeightedAffinityTerm>* out) {
  if (!arr.is_array()) return;
  for (const auto& w : arr) {
    WeightedAffinityTerm t;
    const nlohmann::json& weight = Get(w, "weight");
    t.weight = weight.is_number_integer() ? weight.get<int32_t>() : 0;
    t.term = AffinityTerm::Parse(Get(w, "podAffinityTerm"), ns);
    out->push_back(std::move(t));
  }
}

void ParseRequiredAffinity(const nlohmann::json& arr, const std::string& ns,
                           std::vector<AffinityTerm>* out) {
  if (!arr.is_array()) return;
  for (const auto& t : arr) out->push_back(AffinityTerm::Parse(t, ns));
}

void AddPorts(const nlohmann::json& containers, std::vector<HostPort>* out, bool only_sidecars) {
  if (!containers.is_array()) return;
  for (const auto& c : containers) {
    if (only_sidecars && Str(c, "restartPolicy") != "Always") continue;
    const nlohmann::json& ports = Get(c, "ports");
    if (!ports.is_array()) continue;
    for (const auto& p : ports) {
      const nlohmann::json& hp = Get(p, "hostPort");
      if (!hp.is_number_integer() || hp.get<int64_t>() <= 0) continue;
      HostPort h;
      h.port = hp.get<int32_t>();
      h.protocol = Str(p, "protocol");
      if (h.protocol.empty()) h.protocol = "TCP";
      h.ip = Str(p, "hostIP");
      if (h.ip.empty()) h.ip = "0.0.0.0";
      out->push_back(std::move(h));
    }
  }
}

void AddImages(const nlohmann::json& containers, std::vector<std::string>* out) {
  if (!containers.is_array()) return;
  for (const auto& c : containers) {
    std::string image = Str(c, "image");
    if (!image.empty()) out->push_back(NormalizeImageName(image));
  }
}

}  // namespace

bool HostPort::ConflictsWith(const HostPort& o) const {
  if (port != o.port || protocol != o.protocol) return false;
  return ip == o.ip || ip == "0.0.0.0" || o.ip == "0.0.0.0";
}

AffinityTerm AffinityTerm::Parse(const nlohmann::json& term, const std::string& owner_ns) {
  AffinityTerm t;
  t.owner_namespace = owner_ns;
  t.selector = LabelSelector::Parse(Get(term, "labelSelector"));
  t.topology_key = Str(term, "topologyKey");
  const nlohmann::json& nss = Get(term, "namespaces");
  if (nss.is_array()) {
    for (const auto& n : nss) {
      if (n.is_string()) t.namespaces.push_back(n.get<std::string>());
    }
  }
  const nlohmann::json& nsel = Get(term, "namespaceSelector");
  if (nsel.is_object()) t.namespace_selector = LabelSelector::Parse(nsel);
  return t;
}

bool AffinityTerm::Matches(const std::string& ns, const Labels& labels,
                           const NamespaceLabelsFn& ns_labels) const {
  bool ns_ok;
  if (namespaces.empty() && !namespace_selector.has_value()) {
    ns_ok = ns == owner_namespace;
  } else {
    ns_ok = std::find(namespaces.begin(), namespaces.end(), ns) != namespaces.end();
    if (!ns_ok && namespace_selector.has_value()) {
      static const Labels kNoLabels;
      const Labels* l = ns_labels ? ns_labels(ns) : nullptr;
      ns_ok = namespace_selector->Matches(l != nullptr ? *l : kNoLabels);
    }
  }
  return ns_ok && selector.Matches(labels);
}

std::string PodKey(const nlohmann::json& pod) {
  const nlohmann::json& meta = Get(pod, "metadata");
  std::string uid = Str(meta, "uid");
  if (!uid.empty()) return uid;
  return Str(meta, "namespace") + "/" + Str(meta, "name");
}

std::shared_ptr<const PodInfo> PodInfo::Parse(const nlohmann::json& pod) {
  auto p = std::make_shared<PodInfo>();
  const nlohmann::json& meta = Get(pod, "metadata");
  const nlohmann::json& spec = Get(pod, "spec");
  p->key = PodKey(pod);
  p->name = Str(meta, "name");
  p->ns = Str(meta, "namespace");
  if (p->ns.empty()) p->ns = "default";
  p->node_name = Str(spec, "nodeName");
  p->labels = Labels::Parse(Get(meta, "labels"));
  p->req = ComputePodRequests(spec);
  AddPorts(Get(spec, "containers"), &p->host_ports, false);
  AddPorts(Get(spec, "initContainers"), &p->host_ports, true);
  const nlohmann::json& tols = Get(spec, "tolerations");
  if (tols.is_array()) {
    for (const auto& t : tols) p->tolerations.push_back(Toleration::Parse(t));
  }
  p->node_selector = Labels::Parse(Get(spec, "nodeSelector"));

  const nlohmann::json& aff = Get(spec, "affinity");
  const nlohmann::json& na = Get(aff, "nodeAffinity");
  const nlohmann::json& req = Get(na, "requiredDuringSchedulingIgnoredDuringExecution");
  if (req.is_object()) p->required_node_affinity = NodeSelector::Parse(req);
  const nlohmann::json& pref = Get(na, "preferredDuringSchedulingIgnoredDuringExecution");
  if (pref.is_array()) {
    for (const auto& w : pref) {
      const nlohmann::json& weight = Get(w, "weight");
      p->preferred_node_affinity.push_back(
          WeightedNodeTerm{weight.is_number_integer() ? weight.get<int32_t>() : 0,
                           NodeSelector::ParseTerm(Get(w, "preference"))});
    }
  }
  const nlohmann::json& pa = Get(aff, "podAffinity");
  const nlohmann::json& paa = Get(aff, "podAntiAffinity");
  const char* kReq = "requiredDuringSchedulingIgnoredDuringExecution";
  const char* kPref = "preferredDuringSchedulingIgnoredDuringExecution";
  ParseRequiredAffinity(Get(pa, kReq), p->ns, &p->required_affinity);
  ParseRequiredAffinity(Get(paa, kReq), p->ns, &p->required_anti_affinity);
  ParseWeightedAffinity(Get(pa, kPref), p->ns, &p->preferred_affinity);
  ParseWeightedAffinity(Get(paa, kPref), p->ns, &p->preferred_anti_affinity);

  const nlohmann::json& tsc = Get(spec, "topologySpreadConstraints");
  if (tsc.is_array()) {
    for (const auto& c : tsc) {
      SpreadConstraint sc;
      const nlohmann::json& skew = Get(c, "maxSkew");
      sc.max_skew = skew.is_number_integer() ? std::max(1, skew.get<int32_t>()) : 1;
      sc.topology_key = Str(c, "topologyKey");
      sc.hard = Str(c, "whenUnsatisfiable") != "ScheduleAnyway";
      sc.selector = LabelSelector::Parse(Get(c, "labelSelector"));
      const nlohmann::json& md = Get(c, "minDomains");
      sc.min_domains = md.is_number_integer() ? std::max(1, md.get<int32_t>()) : 1;
      sc.honor_node_affinity = Str(c, "nodeAffinityPolicy") != "Ignore";
      sc.honor_node_taints = Str(c, "nodeTaintsPolicy") == "Honor";
      const nlohmann::json& mlk = Get(c, "matchLabelKeys");
      if (mlk.is_array()) {
        for (const auto& k : mlk) {
          if (!k.is_string()) continue;
          if (const std::string* v = p->labels.Find(k.get_ref<const std::string&>())) {
            sc.selector.AddEquals(k.get<std::string>(), *v);
          }
        }
      }
      p->spread_constraints.push_back(std::move(sc));
    }
  }
  AddImages(Get(spec, "containers"), &p->images);
  AddImages(Get(spec, "initContainers"), &p->images);
  const nlohmann::json& status = Get(pod, "status");
  std::string phase = Str(status, "phase");
  p->terminal = phase == "Succeeded" || phase == "Failed";
  const nlohmann::json& priority = Get(spec, "priority");
  if (priority.is_number_integer()) p->priority = priority.get<int64_t>();
  p->preempt_never = Str(spec, "preemptionPolicy") == "Never";
  p->terminating = !Get(meta, "deletionTimestamp").is_null();
  p->nominated_node = Str(status, "nominatedNodeName");
  return p;
}

std::string NormalizeImageName(const std::string& image) {
  std::string out = image;
  size_t slash = out.find('/');
  std::string first = slash == std::string::npos ? std::string() : out.substr(0, slash);
  bool has_domain =
      !first.empty() && (first.find('.') != std::string::npos ||
                         first.find(':') != std::string::npos || first == "localhost");
  if (!has_domain) {
    out = (slash == std::string::npos ? "docker.io/library/" : "docker.io/") + out;
  }
  size_t last = out.rfind('/');
  std::string tail = out.substr(last + 1);
  if (tail.find(':') == std::string::npos && out.find('@') == std::string::npos) out += ":latest";
  return out;
}

}  // namespace mk8s::scheduler
