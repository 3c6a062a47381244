#include "kubelet/container_config.h"

#include <algorithm>
#include <sstream>

#include "common/quantity.h"
#include "kubelet/qos.h"

namespace mk8s::kubelet {
namespace {

using nlohmann::json;

const json& Obj(const json& object, const char* key) {
  static const json kEmpty = json::object();
  auto it = object.find(key);
  return it != object.end() && it->is_object() ? *it : kEmpty;
}

const json& Arr(const json& object, const char* key) {
  static const json kEmpty = json::array();
  auto it = object.find(key);
  return it != object.end() && it->is_array() ? *it : kEmpty;
}

std::string Str(const json& object, const char* key) {
  auto it = object.find(key);
  return it != object.end() && it->is_string() ? it->get<std::string>() : std::string();
}

void AddUnique(std::vector<std::string>* list, const std::string& value) {
  if (std::find(list->begin(), list->end(), value) == list->end()) list->push_back(value);
}

cri::NamespaceOption Namespaces(const json& spec) {
  cri::NamespaceOption options;
  options.set_network(spec.value("hostNetwork", false) ? cri::NODE : cri::POD);
  options.set_pid(spec.value("hostPID", false)                 ? cri::NODE
                  : spec.value("shareProcessNamespace", false) ? cri::POD
                                                               : cri::CONTAINER);
  options.set_ipc(spec.value("hostIPC", false) ? cri::NODE : cri::POD);
  return options;
}

void CopyLabels(const json& map, google::protobuf::Map<std::string, std::string>* out) {
  if (!map.is_object()) return;
  for (auto it = map.begin(); it != map.end(); ++it) {
    if (it.value().is_string()) (*out)[it.key()] = it.value().get<std::string>();
  }
}

}  // namespace

DnsSettings DnsSettings::ParseResolvConf(const std::string& text) {
  DnsSettings dns;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::istringstream words(line);
    std::string keyword;
    words >> keyword;
    if (keyword.empty() || keyword[0] == '#' || keyword[0] == ';') continue;
    std::vector<std::string> values;
    for (std::string word; words >> word;) values.push_back(word);
    if (keyword == "nameserver" && !values.empty()) {
      dns.servers.push_back(values[0]);
    } else if (keyword == "search" || keyword == "domain") {
      dns.searches = values;
    } else if (keyword == "options") {
      for (const std::string& v : values) dns.options.push_back(v);
    }
  }
  return dns;
}

std::string PodLogDirectory(const std::string& log_root, const json& pod) {
  const json& meta = Obj(pod, "metadata");
  return log_root + "/" + Str(meta, "namespace") + "_" + Str(meta, "name") + "_" + Str(meta, "uid");
}

std::string ContainerLogPath(const std::string& container, int restart_count) {
  return container + "/" + std::to_string(restart_count) + ".log";
}

DnsSettings PodDns(const json& pod, const SandboxParams& params) {
  const json& spec = Obj(pod, "spec");
  const std::string ns = Str(Obj(pod, "metadata"), "namespace");
  std::string policy = Str(spec, "dnsPolicy");
  if (policy.empty()) policy = "ClusterFirst";
  const bool host_network = spec.value("hostNetwork", false);
  if (policy == "ClusterFirst" && host_network) policy = "Default";
  if (policy == "ClusterFirstWithHostNet") policy = "ClusterFirst";
  if (policy == "ClusterFirst" && !params.cluster_dns) policy = "Default";  // no DNS addon

  DnsSettings dns;
  if (policy == "ClusterFirst") {
    const std::string& domain = params.cluster_domain;
    dns.servers = {*params.cluster_dns};
    dns.searches = {ns + ".svc." + domain, "svc." + domain, domain};
    for (const std::string& s : params.host_dns.searches) AddUnique(&dns.searches, s);
    dns.options = {"ndots:5"};
  } else if (policy == "Default") {
    dns = params.host_dns;
  }
  // dnsConfig: servers and searches appended, options merged by name.
  const json& config = Obj(spec, "dnsConfig");
  for (const json& s : Arr(config, "nameservers")) {
    if (s.is_string()) AddUnique(&dns.servers, s.get<std::string>());
  }
  for (const json& s : Arr(config, "searches")) {
    if (s.is_string()) AddUnique(&dns.searches, s.get<std::string>());
  }
  for (const json& o : Arr(config, "options")) {
    const std::string name = Str(o, "name");
    if (name.empty()) continue;
    const std::string value = Str(o, "value");
    const std::string text = value.empty() ? name : name + ":" + value;
    auto same = [&](const std::string& existing) {
      return existing.substr(0, existing.find(':')) == name;
    };
    auto it = std::find_if(dns.options.begin(), dns.options.end(), same);
    if (it != dns.options.end()) {
      *it = text;
    } else {
      dns.options.push_back(text);
    }
  }
  if (dns.searches.size() > 32) dns.searches.resize(32);
  return dns;
}

cri::PodSandboxConfig BuildSandboxConfig(const json& pod, const SandboxParams& params) {
  const json& meta = Obj(pod, "metadata");
  const json& spec = Obj(pod, "spec");
  cri::PodSandboxConfig config;
  auto* m = config.mutable_metadata();
  m->set_name(Str(meta, "name"));
  m->set_uid(Str(meta, "uid"));
  m->set_namespace_(Str(meta, "namespace"));
  m->set_attempt(params.attempt);
  if (!spec.value("hostNetwork", false)) {
    std::string hostname = Str(spec, "hostname");
    if (hostname.empty()) hostname = Str(meta, "name");
    if (hostname.size() > 63) hostname.resize(63);
    while (!hostname.empty() && (hostname.back() == '-' || hostname.back() == '.'))
      hostname.pop_back();
    config.set_hostname(hostname);
  }
  config.set_log_directory(PodLogDirectory(params.log_root, pod));
  const DnsSettings dns = PodDns(pod, params);
  auto* dns_config = config.mutable_dns_config();
  for (const auto& s : dns.servers) dns_config->add_servers(s);
  for (const auto& s : dns.searches) dns_config->add_searches(s);
  for (const auto& s : dns.options) dns_config->add_options(s);
  for (const json& container : Arr(spec, "containers")) {
    for (const json& port : Arr(container, "ports")) {
      const int host_port = port.value("hostPort", 0);
      if (host_port <= 0) continue;
      auto* mapping = config.add_port_mappings();
      const std::string protocol = port.value("protocol", "TCP");
      mapping->set_protocol(protocol == "UDP"    ? cri::UDP
                            : protocol == "SCTP" ? cri::SCTP
                                                 : cri::TCP);
      mapping->set_container_port(port.value("containerPort", 0));
      mapping->set_host_port(host_port);
      mapping->set_host_ip(Str(port, "hostIP"));
    }
  }
  CopyLabels(Obj(meta, "labels"), config.mutable_labels());
  (*config.mutable_labels())[kPodNameLabel] = Str(meta, "name");
  (*config.mutable_labels())[kPodNamespaceLabel] = Str(meta, "namespace");
  (*config.mutable_labels())[kPodUidLabel] = Str(meta, "uid");
  CopyLabels(Obj(meta, "annotations"), config.mutable_annotations());

  auto* linux = config.mutable_linux();
  linux->set_cgroup_parent(PodCgroupParent(pod));
  auto* security = linux->mutable_security_context();
  *security->mutable_namespace_options() = Namespaces(spec);
  const json& pod_security = Obj(spec, "securityContext");
  if (pod_security.contains("runAsUser")) {
    security->mutable_run_as_user()->set_value(pod_security.value("runAsUser", int64_t{0}));
  }
  if (pod_security.contains("runAsGroup")) {
    security->mutable_run_as_group()->set_value(pod_security.value("runAsGroup", int64_t{0}));
  }
  for (const json& g : Arr(pod_security, "supplementalGroups")) {
    if (g.is_number_integer()) security->add_supplemental_groups(g.get<int64_t>());
  }
  if (pod_security.contains("fsGroup")) {
    security->add_supplemental_groups(pod_security.value("fsGroup", int64_t{0}));
  }
  for (const char* list : {"initContainers", "containers"}) {
    for (const json& c : Arr(spec, list)) {
      if (Obj(c, "securityContext").value("privileged", false)) security->set_privileged(true);
    }
  }
  for (const json& s : Arr(pod_security, "sysctls")) {
    (*linux->mutable_sysctls())[Str(s, "name")] = Str(s, "value");
  }
  return config;
}

cri::LinuxContainerResources ContainerResources(const json& pod, const json& container,
                                                int64_t memory_capacity_bytes) {
  const json& resources = Obj(container, "resources");
  const json& requests = Obj(resources, "requests");
  const json& limits = Obj(resources, "limits");
  cri::LinuxContainerResources out;
  int64_t cpu_request = requests.contains("cpu") ? JsonQuantityMilli(requests["cpu"]) : -1;
  const int64_t cpu_limit = limits.contains("cpu") ? JsonQuantityMilli(limits["cpu"]) : 0;
  if (cpu_request < 0 && cpu_limit > 0) cpu_request = cpu_limit;  // request defaults to limit
  out.set_cpu_shares(std::max<int64_t>(2, cpu_request > 0 ? cpu_request * 1024 / 1000 : 2));
  if (cpu_limit > 0) {
    out.set_cpu_period(100000);
    out.set_cpu_quota(std::max<int64_t>(1000, cpu_limit * 100000 / 1000));
  }
  if (limits.contains("memory")) out.set_memory_limit_in_bytes(JsonQuantityValue(limits["memory"]));
  out.set_oom_score_adj(OomScoreAdj(pod, container, memory_capacity_bytes));
  return out;
}

cri::ContainerConfig BuildContainerConfig(const json& pod, const json& container,
                                          const ContainerParams& params) {
  const json& meta = Obj(pod, "metadata");
  const json& spec = Obj(pod, "spec");
  const std::string name = Str(container, "name");
  cri::ContainerConfig config;
  config.mutable_metadata()->set_name(name);
  config.mutable_metadata()->set_attempt(static_cast<uint32_t>(params.restart_count));
  config.mutable_image()->set_image(Str(container, "image"));
  config.mutable_image()->set_user_specified_image(Str(container, "image"));
  for (const json& c : Arr(container, "command")) {
    if (c.is_string()) config.add_command(c.get<std::string>());
  }
  for (const json& a : Arr(container, "args")) {
    if (a.is_string()) config.add_args(a.get<std::string>());
  }
  config.set_working_dir(Str(container, "workingDir"));
  for (const auto& [key, value] : params.env) {
    auto* kv = config.add_envs();
    kv->set_key(key);
    kv->set_value(value);
  }
  for (const MountSpec& mount : params.mounts) {
    auto* m = config.add_mounts();
    m->set_container_path(mount.container_path);
    m->set_host_path(mount.host_path);
    m->set_readonly(mount.read_only);
    m->set_propagation(static_cast<cri::MountPropagation>(mount.propagation));
  }
  auto& labels = *config.mutable_labels();
  labels[kPodNameLabel] = Str(meta, "name");
  labels[kPodNamespaceLabel] = Str(meta, "namespace");
  labels[kPodUidLabel] = Str(meta, "uid");
  labels[kContainerNameLabel] = name;
  auto& annotations = *config.mutable_annotations();
  annotations[kRestartCountAnnotation] = std::to_string(params.restart_count);
  annotations[kGracePeriodAnnotation] =
      std::to_string(spec.value("terminationGracePeriodSeconds", int64_t{30}));
  std::string message_path = Str(container, "terminationMessagePath");
  annotations["io.kubernetes.container.terminationMessagePath"] =
      message_path.empty() ? "/dev/termination-log" : message_path;
  config.set_log_path(ContainerLogPath(name, params.restart_count));
  config.set_stdin(container.value("stdin", false));
  config.set_stdin_once(container.value("stdinOnce", false));
  config.set_tty(container.value("tty", false));

  auto* linux = config.mutable_linux();
  *linux->mutable_resources() = ContainerResources(pod, container, params.memory_capacity_bytes);
  auto* security = linux->mutable_security_context();
  *security->mutable_namespace_options() = Namespaces(spec);
  const json& pod_security = Obj(spec, "securityContext");
  const json& sc = Obj(container, "securityContext");
  auto pick = [&](const char* field) -> std::optional<int64_t> {
    if (sc.contains(field) && sc[field].is_number_integer()) return sc[field].get<int64_t>();
    if (pod_security.contains(field) && pod_security[field].is_number_integer()) {
      return pod_security[field].get<int64_t>();
    }
    return std::nullopt;
  };
  if (auto user = pick("runAsUser")) security->mutable_run_as_user()->set_value(*user);
  if (auto group = pick("runAsGroup")) security->mutable_run_as_group()->set_value(*group);
  for (const json& g : Arr(pod_security, "supplementalGroups")) {
    if (g.is_number_integer()) security->add_supplemental_groups(g.get<int64_t>());
  }
  if (pod_security.contains("fsGroup") && pod_security["fsGroup"].is_number_integer()) {
    security->add_supplemental_groups(pod_security["fsGroup"].get<int64_t>());
  }
  security->set_privileged(sc.value("privileged", false));
  security->set_readonly_rootfs(sc.value("readOnlyRootFilesystem", false));
  if (sc.contains("allowPrivilegeEscalation") && sc["allowPrivilegeEscalation"].is_boolean()) {
    security->set_no_new_privs(!sc["allowPrivilegeEscalation"].get<bool>());
  }
  const json& caps = Obj(sc, "capabilities");
  for (const json& c : Arr(caps, "add")) {
    if (c.is_string()) security->mutable_capabilities()->add_add_capabilities(c.get<std::string>());
  }
  for (const json& c : Arr(caps, "drop")) {
    if (c.is_string())
      security->mutable_capabilities()->add_drop_capabilities(c.get<std::string>());
  }
  if (!security->privileged()) {
    // The runtime's default masked and read-only /proc paths (upstream's defaults).
    for (const char* path :
         {"/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
          "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware"}) {
      security->add_masked_paths(path);
    }
    for (const char* path : {"/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                             "/proc/sysrq-trigger"}) {
      security->add_readonly_paths(path);
    }
  }
  return config;
}

std::vector<std::pair<std::string, std::string>> LiteralEnv(const json& container) {
  std::vector<std::pair<std::string, std::string>> env;
  for (const json& e : Arr(container, "env")) {
    if (e.contains("valueFrom")) continue;
    env.emplace_back(Str(e, "name"), Str(e, "value"));
  }
  return env;
}

}  // namespace mk8s::kubelet
