#include "hollownode/hollow_nodes.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <ctime>
#include <future>
#include <optional>
#include <nlohmann/json.hpp>

#include "client/informer.h"
#include "client/json_path.h"
#include "client/node_lease.h"
#include "client/workqueue.h"
#include "hollownode/fake_runtime.h"

namespace mk8s::hollownode {
namespace {

using nlohmann::json;

std::string Now(bool micro = false) {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char buffer[48];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%S", &utc);
  std::string text = buffer;
  if (micro) {
    const auto us = std::chrono::duration_cast<std::chrono::microseconds>(now.time_since_epoch()).count() % 1000000;
    std::snprintf(buffer, sizeof(buffer), ".%06lld", static_cast<long long>(us));
    text += buffer;
  }
  return text + "Z";
}

// A stable fake pod IP inside the node's pod CIDR (or 10.255.x.y if it has none yet).
std::string FakePodIp(const std::string& pod_uid, const std::string& node_cidr) {
  uint32_t hash = 2166136261u;
  for (unsigned char c : pod_uid) hash = (hash ^ c) * 16777619u;
  const int host = 2 + static_cast<int>(hash % 250);
  if (!node_cidr.empty()) {
    const std::string network = node_cidr.substr(0, node_cidr.find('/'));
    return network.substr(0, network.rfind('.') + 1) + std::to_string(host);
  }
  return "10.255." + std::to_string((hash >> 8) % 256) + "." + std::to_string(host);
}

}  // namespace

HollowNodes::HollowNodes(HollowNodeOptions options, std::shared_ptr<client::Client> client)
    : options_(std::move(options)), client_(std::move(client)) {}

Result<std::unique_ptr<HollowNodes>> HollowNodes::Start(const HollowNodeOptions& options,
                                                        std::shared_ptr<client::Client> client) {
  std::unique_ptr<HollowNodes> nodes(new HollowNodes(options, std::move(client)));
  if (Status status = nodes->Register(); !status.ok()) return status;
  nodes->queue_ = std::make_unique<client::WorkQueue>();
  // Only bound pods, as each kubelet watches only its node's (spec.nodeName=<node>): the server
  // filters, so pods waiting for the scheduler never reach this process, and a pod arrives as
  // ADDED when it is bound.
  client::InformerOptions informer_options;
  informer_options.field_selector = "spec.nodeName!=";
  nodes->pods_ =
      std::make_unique<client::Informer>(nodes->client_, client::kPods, informer_options);
  HollowNodes* self = nodes.get();
  auto enqueue = [self](const client::ObjectPtr& pod) {
    if (self->Ours(client::StringAtPath(*pod, {"spec", "nodeName"}))) {
      self->queue_->Add(client::ObjectKey(*pod));
    }
  };
  nodes->pods_->AddEventHandler(
      {enqueue, [enqueue](const client::ObjectPtr&, const client::ObjectPtr& pod) { enqueue(pod); },
       nullptr});
  nodes->pods_->Start();
  for (int i = 0; i < options.workers; ++i) nodes->threads_.emplace_back([self] { self->Work(); });
  nodes->threads_.emplace_back([self] { self->Heartbeat(); });
  spdlog::info("hollow nodes: {} registered ({}0 .. {}{})", options.count, options.name_prefix,
               options.name_prefix, options.count - 1);
  return nodes;
}

HollowNodes::~HollowNodes() { Stop(); }

void HollowNodes::Stop() {
  if (stopping_.exchange(true)) return;
  heartbeat_cv_.notify_all();
  if (queue_) queue_->ShutDown();
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
  if (pods_) pods_->Stop();
}

std::vector<std::string> HollowNodes::node_names() const {
  std::vector<std::string> names;
  for (int i = 0; i < options_.count; ++i) names.push_back(options_.name_prefix + std::to_string(i));
  return names;
}

bool HollowNodes::Ours(const std::string& node) const {
  if (node.rfind(options_.name_prefix, 0) != 0) return false;
  const std::string suffix = node.substr(options_.name_prefix.size());
  if (suffix.empty() || !std::all_of(suffix.begin(), suffix.end(), ::isdigit)) return false;
  return std::stoll(suffix) < options_.count;
}

Status HollowNodes::Register() {
  json allocatable = {{"cpu", options_.cpu}, {"memory", options_.memory}, {"pods", options_.pods},
                      {"ephemeral-storage", "100Gi"}};
  for (const auto& [name, value] : options_.extended_resources) allocatable[name] = value;
  for (const std::string& name : node_names()) {
    const std::string now = Now();
    json status = {
        {"capacity", allocatable},
        {"allocatable", allocatable},
        {"conditions",
         json::array({{{"type", "Ready"}, {"status", "True"}, {"reason", "KubeletReady"},
                       {"message", "hollow kubelet is posting ready status"},
                       {"lastHeartbeatTime", now}, {"lastTransitionTime", now}}})},
        {"addresses", json::array({{{"type", "InternalIP"}, {"address", "127.0.0.1"}},
                                   {{"type", "Hostname"}, {"address", name}}})},
        {"daemonEndpoints", {{"kubeletEndpoint", {{"Port", 10250}}}}},
        {"nodeInfo",
         {{"architecture", "amd64"}, {"bootID", name}, {"containerRuntimeVersion", "hollow://1.0"},
          {"kernelVersion", "hollow"}, {"kubeProxyVersion", "v1.32.4"},
          {"kubeletVersion", "v1.32.4"}, {"machineID", name}, {"operatingSystem", "linux"},
          {"osImage", "mk8s hollow node"}, {"systemUUID", name}}}};
    json node = {{"apiVersion", "v1"},
                 {"kind", "Node"},
                 {"metadata",
                  {{"name", name},
                   {"labels", {{"kubernetes.io/hostname", name}, {"kubernetes.io/os", "linux"},
                               {"kubernetes.io/arch", "amd64"}, {"mk8s.io/hollow", "true"}}}}},
                 {"spec", json::object()}};
    auto created = client_->Create(client::kNodes, "", node);
    if (!created.ok() && !client::IsAlreadyExists(created.error())) return created.status();
    // Node IPAM may write the node between our read and our write: retry on conflict.
    for (int attempt = 0;; ++attempt) {
      auto current = client_->Get(client::kNodes, "", name);
      if (!current.ok()) return current.status();
      json updated = *current;
      updated["status"] = status;
      auto written = client_->UpdateStatus(client::kNodes, updated);
      if (written.ok()) {
        node_uids_[name] = (*written)["metadata"].value("uid", "");
        break;
      }
      if (!client::IsConflict(written.error()) || attempt >= 10) return written.status();
    }
  }
  return Status::Ok();
}

void HollowNodes::Heartbeat() {
  // Each node renews its Lease once per heartbeat_interval, as a kubelet does; the renewals are
  // spread evenly over the interval (kubelets start at unrelated times), so the API server sees a
  // steady count/interval renewals per second instead of a burst of all of them.
  const std::vector<std::string> names = node_names();
  if (names.empty()) return;
  const auto interval = std::chrono::duration_cast<std::chrono::steady_clock::duration>(
      options_.heartbeat_interval);
  auto cycle_start = std::chrono::steady_clock::now();
  bool first = true;  // the first Leases are created at once, so the nodes start with one
  while (!stopping_) {
    for (size_t i = 0; i < names.size(); ++i) {
      const auto count = static_cast<int64_t>(names.size());
      const std::chrono::steady_clock::time_point due =
          first ? cycle_start : cycle_start + interval * static_cast<int64_t>(i) / count;
      {
        std::unique_lock lock(heartbeat_mu_);
        if (heartbeat_cv_.wait_until(lock, due, [this] { return stopping_.load(); })) return;
      }
      const std::string& name = names[i];
      const auto uid = node_uids_.find(name);
      const json lease = client::NodeLease(name, options_.lease_duration.count(),
                                           Now(/*micro=*/true),
                                           uid == node_uids_.end() ? "" : uid->second);
      // The renewed Lease is not needed back: the status-only form does not parse it.
      auto renewed = std::make_shared<std::promise<std::optional<client::ApiError>>>();
      client_->PatchStatusOnlyAsync(
          client::kLeases, client::kNodeLeaseNamespace, name, client::PatchType::kMerge,
          {{"spec", lease["spec"]}},
          [renewed](std::optional<client::ApiError> error) { renewed->set_value(std::move(error)); });
      const std::optional<client::ApiError> error = renewed->get_future().get();
      if (error && client::IsNotFound(*error)) {
        (void)client_->Create(client::kLeases, client::kNodeLeaseNamespace, lease);
      }
    }
    // The next cycle starts one interval after this one (or now, if the renewals fell behind).
    cycle_start = std::max(cycle_start + interval, std::chrono::steady_clock::now());
    first = false;
  }
}

void HollowNodes::Work() {
  while (auto key = queue_->Get()) {
    Status status = SyncPod(*key);
    if (status.ok()) {
      queue_->Forget(*key);
    } else {
      queue_->AddRateLimited(*key);
    }
    queue_->Done(*key);
  }
}

Status HollowNodes::SyncPod(const std::string& key) {
  client::ObjectPtr pod_ptr = pods_->Get(key);
  if (!pod_ptr) return Status::Ok();
  const json& pod = *pod_ptr;
  auto [ns, name] = client::SplitKey(key);
  const std::string uid = pod["metadata"].value("uid", "");
  if (pod["metadata"].contains("deletionTimestamp")) {
    ForgetStart(uid);
    // The fake runtime stops at once: finish the deletion as a kubelet does, with grace 0.
    client::DeleteOptions options;
    options.grace_period_seconds = 0;
    options.precondition_uid = pod["metadata"].value("uid", "");
    auto deleted = client_->Delete(client::kPods, ns, name, options);
    if (!deleted.ok() && !client::IsNotFound(deleted.error()) && !client::IsConflict(deleted.error())) {
      return deleted.status();
    }
    return Status::Ok();
  }
  const std::string& phase = client::StringAtPath(pod, {"status", "phase"});
  if (phase == "Running") return ExitIfDue(key, pod);
  if (phase != "Pending") {
    ForgetStart(uid);
    return Status::Ok();
  }
  // Container start takes a while, like a real runtime's.
  std::string created = pod["metadata"].value("creationTimestamp", "");
  const auto age = [&] {
    std::tm tm{};
    if (strptime(created.c_str(), "%Y-%m-%dT%H:%M:%S", &tm) == nullptr) return std::chrono::milliseconds(0);
    return std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::system_clock::now() - std::chrono::system_clock::from_time_t(timegm(&tm)));
  }();
  if (age + std::chrono::seconds(1) < options_.pod_start_delay) {
    queue_->AddAfter(key, options_.pod_start_delay - age);
    return Status::Ok();
  }
  const std::string node = pod["spec"].value("nodeName", "");
  const std::string cidr = PodCidr(node);
  const std::string now = Now();
  json statuses = json::array();
  for (const json& container : pod.value("/spec/containers"_json_pointer, json::array())) {
    statuses.push_back({{"name", container.value("name", "")},
                        {"image", container.value("image", "")},
                        {"imageID", "hollow://" + container.value("image", "")},
                        {"containerID", "hollow://" + pod["metadata"].value("uid", "") + "/" + container.value("name", "")},
                        {"ready", true},
                        {"started", true},
                        {"restartCount", 0},
                        {"state", {{"running", {{"startedAt", now}}}}}});
  }
  auto condition = [&](const char* type) {
    return json{{"type", type}, {"status", "True"}, {"lastProbeTime", nullptr},
                {"lastTransitionTime", now}};
  };
  json status = pod.value("status", json::object());
  status["phase"] = "Running";
  status["hostIP"] = "127.0.0.1";
  status["hostIPs"] = json::array({{{"ip", "127.0.0.1"}}});
  status["podIP"] = FakePodIp(pod["metadata"].value("uid", ""), cidr);
  status["podIPs"] = json::array({{{"ip", status["podIP"]}}});
  status["startTime"] = now;
  status["containerStatuses"] = statuses;
  status["conditions"] = json::array({condition("PodScheduled"), condition("Initialized"),
                                      condition("ContainersReady"), condition("Ready")});
  json updated = pod;
  updated["status"] = status;
  auto written = client_->UpdateStatus(client::kPods, updated);
  if (!written.ok() && !client::IsNotFound(written.error())) return written.status();
  if (written.ok()) NoteStart(key, *written);
  return Status::Ok();
}

std::string HollowNodes::PodCidr(const std::string& node) {
  {
    std::lock_guard lock(cidr_mu_);
    if (auto it = pod_cidrs_.find(node); it != pod_cidrs_.end()) return it->second;
  }
  auto node_object = client_->Get(client::kNodes, "", node);
  if (!node_object.ok()) return "";
  const std::string cidr = client::StringAtPath(*node_object, {"spec", "podCIDR"});
  if (!cidr.empty()) {  // immutable once set
    std::lock_guard lock(cidr_mu_);
    pod_cidrs_.emplace(node, cidr);
  }
  return cidr;
}

void HollowNodes::NoteStart(const std::string& key, const json& pod) {
  const auto run_time = PlannedRunTime(pod);
  if (!run_time) return;
  {
    std::lock_guard lock(starts_mu_);
    started_[pod["metadata"].value("uid", "")] = std::chrono::steady_clock::now();
  }
  queue_->AddAfter(key, *run_time);
}

void HollowNodes::ForgetStart(const std::string& uid) {
  std::lock_guard lock(starts_mu_);
  started_.erase(uid);
}

Status HollowNodes::ExitIfDue(const std::string& key, const json& pod) {
  const auto run_time = PlannedRunTime(pod);
  if (!run_time) return Status::Ok();
  const std::string uid = pod["metadata"].value("uid", "");
  std::chrono::steady_clock::time_point started;
  {
    std::lock_guard lock(starts_mu_);
    // Not known (started before a restart of mk8sd): count from now.
    started = started_.emplace(uid, std::chrono::steady_clock::now()).first->second;
  }
  const auto elapsed = std::chrono::steady_clock::now() - started;
  if (elapsed < *run_time) {
    queue_->AddAfter(key, std::chrono::duration_cast<std::chrono::milliseconds>(*run_time - elapsed) +
                              std::chrono::milliseconds(1));
    return Status::Ok();
  }
  bool restarted = false;
  json updated = pod;
  updated["status"] = ExitedStatus(pod, Now(), &restarted);
  auto written = client_->UpdateStatus(client::kPods, updated);
  if (!written.ok()) {
    if (client::IsNotFound(written.error())) return Status::Ok();
    return written.status();
  }
  ForgetStart(uid);
  if (restarted) NoteStart(key, *written);
  return Status::Ok();
}

}  // namespace mk8s::hollownode
