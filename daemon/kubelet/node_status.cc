#include "kubelet/node_status.h"

#include <spdlog/spdlog.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>

#include <fstream>
#include <sstream>
#include <thread>

#include "client/node_lease.h"
#include "client/resources.h"
#include "common/time_format.h"

namespace mk8s::kubelet {
namespace {

using nlohmann::json;

std::string ReadFirstLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

std::string OsImage() {
  std::ifstream in("/etc/os-release");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("PRETTY_NAME=", 0) == 0) {
      std::string value = line.substr(12);
      if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);
      }
      return value;
    }
  }
  return "Linux";
}

json Condition(const std::string& type, bool value, const std::string& reason,
               const std::string& message, const json& old_status, const std::string& now) {
  json c = {
      {"type", type},       {"status", value ? "True" : "False"}, {"reason", reason},
      {"message", message}, {"lastHeartbeatTime", now},           {"lastTransitionTime", now}};
  for (const json& o : old_status.value("conditions", json::array())) {
    if (o.value("type", "") == type && o.value("status", "") == c["status"] &&
        o.contains("lastTransitionTime")) {
      c["lastTransitionTime"] = o["lastTransitionTime"];
    }
  }
  return c;
}

// The status with heartbeat times removed, to tell a real change from a heartbeat.
json WithoutHeartbeats(json status) {
  if (status.contains("conditions")) {
    for (json& c : status["conditions"]) c.erase("lastHeartbeatTime");
  }
  return status;
}

}  // namespace

MachineFacts MachineFacts::Detect(const std::string& state_dir) {
  MachineFacts facts;
  facts.cpus = std::max(1u, std::thread::hardware_concurrency());
  {
    std::ifstream in("/proc/meminfo");
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("MemTotal:", 0) == 0) {
        std::istringstream words(line.substr(9));
        int64_t kb = 0;
        words >> kb;
        facts.memory_bytes = kb * 1024;
      }
    }
  }
  struct statvfs fs {};
  if (statvfs(state_dir.c_str(), &fs) == 0) {
    facts.ephemeral_storage_bytes =
        static_cast<int64_t>(fs.f_blocks) * static_cast<int64_t>(fs.f_frsize);
  }
  struct utsname name {};
  if (uname(&name) == 0) {
    facts.kernel_version = name.release;
    const std::string machine = name.machine;
    facts.architecture = machine == "x86_64" ? "amd64" : machine == "aarch64" ? "arm64" : machine;
  }
  facts.os_image = OsImage();
  facts.boot_id = ReadFirstLine("/proc/sys/kernel/random/boot_id");
  facts.machine_id = ReadFirstLine("/etc/machine-id");
  return facts;
}

json NewNodeObject(const NodeOptions& options) {
  return {{"apiVersion", "v1"},
          {"kind", "Node"},
          {"metadata",
           {{"name", options.node_name},
            {"labels",
             {{"kubernetes.io/hostname", options.node_name},
              {"kubernetes.io/os", "linux"},
              {"kubernetes.io/arch", "amd64"},
              {"beta.kubernetes.io/os", "linux"},
              {"beta.kubernetes.io/arch", "amd64"}}},
            {"annotations", {{"node.alpha.kubernetes.io/ttl", "0"}}}}},
          {"spec", json::object()}};
}

json BuildNodeStatus(const NodeOptions& options, const MachineFacts& facts,
                     const RuntimeReadiness& runtime, bool has_pod_cidr, const json& old_status,
                     const std::string& now, const NodePressure& pressure) {
  json capacity = {
      {"cpu", std::to_string(facts.cpus)},
      {"memory", std::to_string(facts.memory_bytes / 1024) + "Ki"},
      {"pods", "110"},
      {"ephemeral-storage", std::to_string(facts.ephemeral_storage_bytes / 1024) + "Ki"}};
  for (const auto& [name, value] : options.extended_resources) capacity[name] = value;
  // Node allocatable, as upstream: capacity minus the hard eviction thresholds (no kube- or
  // system-reserved here), so the scheduler never fills a node past where it would evict.
  json allocatable = capacity;
  const int64_t memory = facts.memory_bytes -
                         ReservedByThreshold(options.eviction_hard, "memory.available", facts.memory_bytes);
  const int64_t storage =
      facts.ephemeral_storage_bytes - ReservedByThreshold(options.eviction_hard, "nodefs.available",
                                                          facts.ephemeral_storage_bytes);
  allocatable["memory"] = std::to_string(std::max<int64_t>(0, memory) / 1024) + "Ki";
  allocatable["ephemeral-storage"] = std::to_string(std::max<int64_t>(0, storage) / 1024) + "Ki";
  json addresses = json::array();
  for (const std::string& ip : options.node_ips) {
    addresses.push_back({{"type", "InternalIP"}, {"address", ip}});
  }
  addresses.push_back({{"type", "Hostname"}, {"address", options.node_name}});

  bool ready = true;
  std::string message = "kubelet is posting ready status";
  if (!runtime.runtime_ready) {
    ready = false;
    message = "container runtime is down" +
              (runtime.message.empty() ? std::string() : ": " + runtime.message);
  } else if (!has_pod_cidr) {
    ready = false;
    message =
        "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
        "message:Network plugin returns error: network plugin not ready: no pod CIDR";
  } else if (!runtime.network_ready) {
    ready = false;
    message = "container runtime network not ready: NetworkReady=false" +
              (runtime.message.empty() ? std::string() : ": " + runtime.message);
  }
  json conditions =
      json::array({pressure.memory
                       ? Condition("MemoryPressure", true, "KubeletHasInsufficientMemory",
                                   "kubelet has insufficient memory available", old_status, now)
                       : Condition("MemoryPressure", false, "KubeletHasSufficientMemory",
                                   "kubelet has sufficient memory available", old_status, now),
                   pressure.disk ? Condition("DiskPressure", true, "KubeletHasDiskPressure",
                                             "kubelet has disk pressure", old_status, now)
                                 : Condition("DiskPressure", false, "KubeletHasNoDiskPressure",
                                             "kubelet has no disk pressure", old_status, now),
                   pressure.pid ? Condition("PIDPressure", true, "KubeletHasInsufficientPID",
                                            "kubelet has insufficient PID available", old_status, now)
                                : Condition("PIDPressure", false, "KubeletHasSufficientPID",
                                            "kubelet has sufficient PID available", old_status, now),
                   Condition("Ready", ready, ready ? "KubeletReady" : "KubeletNotReady", message,
                             old_status, now)});
  return {{"capacity", capacity},
          {"allocatable", allocatable},
          {"conditions", conditions},
          {"addresses", addresses},
          {"daemonEndpoints", {{"kubeletEndpoint", {{"Port", options.kubelet_port}}}}},
          {"nodeInfo",
           {{"architecture", facts.architecture},
            {"bootID", facts.boot_id},
            {"containerRuntimeVersion", runtime.version},
            {"kernelVersion", facts.kernel_version},
            {"kubeProxyVersion", "v1.32.4"},
            {"kubeletVersion", "v1.32.4"},
            {"machineID", facts.machine_id},
            {"operatingSystem", "linux"},
            {"osImage", facts.os_image},
            {"systemUUID", facts.machine_id}}}};
}

NodeStatusManager::NodeStatusManager(NodeOptions options, MachineFacts facts,
                                     std::shared_ptr<client::Client> client, ReadinessProbe probe,
                                     PodCidrHook on_pod_cidr)
    : options_(std::move(options)),
      facts_(std::move(facts)),
      client_(std::move(client)),
      probe_(std::move(probe)),
      on_pod_cidr_(std::move(on_pod_cidr)) {}

NodeStatusManager::~NodeStatusManager() { Stop(); }

std::string NodeStatusManager::pod_cidr() const {
  std::lock_guard lock(mu_);
  return pod_cidr_;
}

Status NodeStatusManager::Register() {
  const json node = NewNodeObject(options_);
  auto created = client_->Create(client::kNodes, "", node);
  if (!created.ok()) {
    if (!client::IsAlreadyExists(created.error())) {
      return Status(created.status().code(),
                    "registering node " + options_.node_name + ": " + created.error().ToString());
    }
    auto patched = client_->Patch(client::kNodes, "", options_.node_name, client::PatchType::kMerge,
                                  {{"metadata", {{"labels", node["metadata"]["labels"]}}}});
    if (!patched.ok()) return patched.status();
  }
  spdlog::info("kubelet: node {} registered", options_.node_name);
  SyncStatus(/*force=*/true);
  RenewLease();
  return Status::Ok();
}

void NodeStatusManager::Start() {
  std::lock_guard lock(mu_);
  if (thread_.joinable() || stopping_) return;
  thread_ = std::thread([this] { Loop(); });
}

void NodeStatusManager::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void NodeStatusManager::Loop() {
  auto next_status = std::chrono::steady_clock::now() + options_.status_interval;
  auto next_lease = std::chrono::steady_clock::now() + options_.lease_interval;
  while (true) {
    {
      std::unique_lock lock(mu_);
      // Poll fast until the pod CIDR is known and the node is Ready.
      const auto wake = pod_cidr_.empty()
                            ? std::chrono::steady_clock::now() + std::chrono::milliseconds(500)
                            : std::min(next_status, next_lease);
      cv_.wait_until(lock, wake, [this] { return stopping_; });
      if (stopping_) return;
    }
    const auto now = std::chrono::steady_clock::now();
    const bool waiting_for_cidr = pod_cidr().empty();
    if (waiting_for_cidr || now >= next_status) {
      SyncStatus(false);
      next_status = now + options_.status_interval;
    }
    if (now >= next_lease) {
      RenewLease();
      next_lease = now + options_.lease_interval;
    }
  }
}

void NodeStatusManager::SyncStatus(bool force) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto current = client_->Get(client::kNodes, "", options_.node_name);
    if (!current.ok()) {
      if (client::IsNotFound(current.error())) {
        (void)client_->Create(client::kNodes, "",
                              NewNodeObject(options_));  // deleted: register again
        continue;
      }
      spdlog::warn("kubelet: reading node {}: {}", options_.node_name, current.error().ToString());
      return;
    }
    node_uid_ = (*current)["metadata"].value("uid", "");
    const std::string cidr = (*current).value("/spec/podCIDR"_json_pointer, std::string());
    if (!cidr.empty() && pod_cidr().empty()) {
      Status hooked = on_pod_cidr_ ? on_pod_cidr_(cidr) : Status::Ok();
      if (hooked.ok()) {
        std::lock_guard lock(mu_);
        pod_cidr_ = cidr;
        spdlog::info("kubelet: node {} has pod CIDR {}", options_.node_name, cidr);
      } else {
        spdlog::warn("kubelet: setting up pod network {}: {}", cidr, hooked.message());
      }
    }
    const RuntimeReadiness runtime = probe_ ? probe_() : RuntimeReadiness{};
    const NodePressure pressure = ObservePressure();
    json status = BuildNodeStatus(options_, facts_, runtime, !pod_cidr().empty(),
                                  (*current).value("status", json::object()), NowRfc3339(), pressure);
    const json comparable = WithoutHeartbeats(status);
    const bool due =
        std::chrono::steady_clock::now() - last_write_ >= options_.force_write_interval;
    if (!force && !due && comparable == last_written_) return;
    json updated = *current;
    updated["status"] = status;
    auto written = client_->UpdateStatus(client::kNodes, updated);
    if (written.ok()) {
      last_written_ = comparable;
      last_write_ = std::chrono::steady_clock::now();
      return;
    }
    if (!client::IsConflict(written.error())) {
      spdlog::warn("kubelet: writing node status: {}", written.error().ToString());
      return;
    }
  }
}

NodePressure NodeStatusManager::ObservePressure() {
  if (options_.eviction_hard.empty() && options_.eviction_soft.empty()) return {};
  const NodeSignals signals =
      ObserveNodeSignals(options_.state_dir, options_.imagefs_dir);
  std::vector<EvictionThreshold> thresholds = options_.eviction_hard;
  thresholds.insert(thresholds.end(), options_.eviction_soft.begin(), options_.eviction_soft.end());
  const NodePressure observed = EvaluatePressure(thresholds, signals);
  const NodePressure reported = pressure_.Update(observed, std::chrono::steady_clock::now());
  const bool any = reported.memory || reported.disk || reported.pid;
  if (any != reported_pressure_) {
    if (any) {
      std::string why;
      for (const std::string& reason : observed.reasons) why += (why.empty() ? "" : ", ") + reason;
      spdlog::warn("kubelet: node {} is under pressure: {}", options_.node_name,
                   why.empty() ? "within the transition period" : why);
    } else {
      spdlog::info("kubelet: node {} is no longer under pressure", options_.node_name);
    }
    reported_pressure_ = any;
  }
  {
    std::lock_guard lock(mu_);
    last_pressure_ = reported;
  }
  return reported;
}

NodePressure NodeStatusManager::ReportedPressure() const {
  std::lock_guard lock(mu_);
  return last_pressure_;
}

void NodeStatusManager::RenewLease() {
  const std::string& name = options_.node_name;
  const json lease = client::NodeLease(name, options_.lease_duration.count(), NowRfc3339Micro(),
                                       node_uid_);
  // The renewal patches the spec; until the Lease is owned by this Node (an older Lease, or the
  // Node registered again with a new uid) the owner goes along, as upstream's kubelet does.
  json patch = {{"spec", lease["spec"]}};
  const bool set_owner = !node_uid_.empty() && lease_owner_uid_ != node_uid_;
  if (set_owner) patch["metadata"]["ownerReferences"] = lease["metadata"]["ownerReferences"];
  auto patched = client_->Patch(client::kLeases, client::kNodeLeaseNamespace, name,
                                client::PatchType::kMerge, patch);
  if (patched.ok()) {
    if (set_owner) lease_owner_uid_ = node_uid_;
    return;
  }
  if (client::IsNotFound(patched.error())) {
    auto created = client_->Create(client::kLeases, client::kNodeLeaseNamespace, lease);
    if (!created.ok()) {
      spdlog::warn("kubelet: node lease: {}", created.error().ToString());
    } else {
      lease_owner_uid_ = node_uid_;
    }
  }
}

}  // namespace mk8s::kubelet
