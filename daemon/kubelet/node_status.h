// The kubelet's Node: registration (capacity, labels, addresses, nodeInfo), the status refresh
// (every 10 s; written when it changed or once a minute), the Lease heartbeat in kube-node-lease
// (every 10 s, 40 s duration), and waiting for spec.podCIDR from node IPAM (then `on_pod_cidr`
// writes the CNI config; until then the node is NotReady "network plugin not ready: no pod CIDR").
//
// Threads: one loop thread (started by Start) does all writes; the accessors are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "client/client.h"
#include "common/status.h"
#include "kubelet/node_pressure.h"

namespace mk8s::kubelet {

// What the runtime says of itself (CRI Version + Status).
struct RuntimeReadiness {
  bool runtime_ready = false;
  bool network_ready = false;
  std::string version;  // "containerd://1.6.20"
  std::string message;  // why not ready
};

// Facts of this machine, gathered once (MachineFacts::Detect) or given by tests.
struct MachineFacts {
  int64_t cpus = 1;
  int64_t memory_bytes = 0;
  int64_t ephemeral_storage_bytes = 0;
  std::string kernel_version, os_image, architecture = "amd64", boot_id, machine_id;
  static MachineFacts Detect(const std::string& state_dir);
};

struct NodeOptions {
  std::string node_name;
  std::vector<std::string> node_ips;  // InternalIPs, first is primary
  int kubelet_port = 10250;
  std::string state_dir;
  std::vector<std::pair<std::string, std::string>> extended_resources;  // nvidia.com/gpu=1
  std::chrono::milliseconds status_interval{10000};
  std::chrono::milliseconds lease_interval{10000};
  std::chrono::seconds lease_duration{40};
  std::chrono::seconds force_write_interval{60};
  // Hard eviction thresholds (node_pressure.h): they set the pressure conditions and are taken
  // out of allocatable memory and ephemeral-storage. Empty: no pressure is ever reported.
  std::vector<EvictionThreshold> eviction_hard;
  // Soft eviction thresholds (--eviction-soft): they set the pressure conditions as soon as they
  // are met (upstream: the grace period only delays evictions), never allocatable.
  std::vector<EvictionThreshold> eviction_soft;
  std::chrono::seconds pressure_transition_period{300};
  // The runtime's image store (imagefs signals); empty: only the node filesystem is watched.
  std::string imagefs_dir;
};

// The Node object to create (metadata + spec) for `options`.
nlohmann::json NewNodeObject(const NodeOptions& options);
// The node status. `old_status` gives the conditions' transition times; heartbeat = `now`;
// `pressure` sets the MemoryPressure, DiskPressure and PIDPressure conditions.
nlohmann::json BuildNodeStatus(const NodeOptions& options, const MachineFacts& facts,
                               const RuntimeReadiness& runtime, bool has_pod_cidr,
                               const nlohmann::json& old_status, const std::string& now,
                               const NodePressure& pressure = {});

class NodeStatusManager {
 public:
  using ReadinessProbe = std::function<RuntimeReadiness()>;
  using PodCidrHook = std::function<Status(const std::string& cidr)>;

  NodeStatusManager(NodeOptions options, MachineFacts facts, std::shared_ptr<client::Client> client,
                    ReadinessProbe probe, PodCidrHook on_pod_cidr);
  ~NodeStatusManager();  // Stop()

  // Creates the Node (or refreshes its labels) and writes a first status. Blocking.
  Status Register();
  void Start();
  void Stop();

  std::string pod_cidr() const;
  const MachineFacts& facts() const { return facts_; }
  // The pressure conditions last reported (the kubelet's admission reads them). Any thread.
  NodePressure ReportedPressure() const;

 private:
  void Loop();
  void SyncStatus(bool force);
  void RenewLease();
  // The pressure conditions to report now (signals read, transition period applied).
  NodePressure ObservePressure();

  const NodeOptions options_;
  const MachineFacts facts_;
  std::shared_ptr<client::Client> client_;
  ReadinessProbe probe_;
  PodCidrHook on_pod_cidr_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // GUARDED_BY(mu_)
  std::string pod_cidr_;   // once the hook succeeded. GUARDED_BY(mu_)
  NodePressure last_pressure_;  // as last reported. GUARDED_BY(mu_)
  std::thread thread_;
  // Loop thread only:
  nlohmann::json last_written_;  // status without heartbeat times
  PressureTracker pressure_{options_.pressure_transition_period};
  bool reported_pressure_ = false;  // for logging transitions only
  std::string node_uid_;         // the Node's uid as last read (its Lease's owner)
  std::string lease_owner_uid_;  // the owner uid the Lease is known to carry
  std::chrono::steady_clock::time_point last_write_{};
};

}  // namespace mk8s::kubelet
