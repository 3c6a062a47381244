// Hollow nodes (the kubemark idea): N Nodes that register with capacity, heartbeat through
// Leases in kube-node-lease, and play their kubelets with a fake runtime: a pod bound to a hollow
// node turns Running and Ready after a configurable delay, and a pod being deleted on one is
// finished (deleted with grace 0). Pods annotated hollow.mk8s.io/exit-code (fake_runtime.h)
// finish after hollow.mk8s.io/run-ms, Succeeded or Failed, so Jobs can complete. For testing and measuring the control loops at scale without
// containers; the real kubelet sets the same status fields.
//
// Threads: one informer (pods) dispatch thread feeds a work queue; `workers` threads write pod
// status; one heartbeat thread renews Leases (each node once per heartbeat_interval, spread evenly).
#pragma once

#include <atomic>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <condition_variable>
#include <mutex>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "common/status.h"

namespace mk8s::client {
class Informer;
class WorkQueue;
}  // namespace mk8s::client

namespace mk8s::hollownode {

struct HollowNodeOptions {
  int count = 0;
  std::string name_prefix = "hollow-node-";
  std::string cpu = "4";
  std::string memory = "16Gi";
  std::string pods = "110";
  // Extra allocatable resources on every node, e.g. {"nvidia.com/gpu", "1"}.
  std::vector<std::pair<std::string, std::string>> extended_resources;
  std::chrono::milliseconds pod_start_delay{200};
  std::chrono::seconds lease_duration{40};
  std::chrono::seconds heartbeat_interval{10};
  int workers = 2;
};

class HollowNodes {
 public:
  // Registers the nodes (creating or refreshing them) and starts their loops.
  static Result<std::unique_ptr<HollowNodes>> Start(const HollowNodeOptions& options,
                                                    std::shared_ptr<client::Client> client);
  ~HollowNodes();  // Stop()
  void Stop();
  std::vector<std::string> node_names() const;

 private:
  HollowNodes(HollowNodeOptions options, std::shared_ptr<client::Client> client);
  Status Register();
  void Heartbeat();
  void Work();
  Status SyncPod(const std::string& key);
  // Fake runtime (fake_runtime.h): pods annotated with an exit code finish after their run time.
  void NoteStart(const std::string& key, const nlohmann::json& pod);
  void ForgetStart(const std::string& uid);
  Status ExitIfDue(const std::string& key, const nlohmann::json& pod);
  bool Ours(const std::string& node) const;
  // The node's spec.podCIDR (node IPAM sets it once), read on first use and then remembered, as
  // a kubelet knows its own node; "" while unset.
  std::string PodCidr(const std::string& node);

  const HollowNodeOptions options_;
  std::shared_ptr<client::Client> client_;
  std::unique_ptr<client::Informer> pods_;
  std::unique_ptr<client::WorkQueue> queue_;
  std::vector<std::thread> threads_;
  std::atomic<bool> stopping_{false};
  std::mutex starts_mu_;
  // When each annotated pod's containers (last) started, by pod uid. GUARDED_BY(starts_mu_)
  std::map<std::string, std::chrono::steady_clock::time_point> started_;
  std::mutex cidr_mu_;
  std::map<std::string, std::string> pod_cidrs_;  // node -> podCIDR. GUARDED_BY(cidr_mu_)
  // Node name -> uid, written by Register() before the heartbeat thread starts, then read-only:
  // each node's Lease is owned by its Node (as a kubelet's), so deleting a node collects it.
  std::map<std::string, std::string> node_uids_;
  std::mutex heartbeat_mu_;
  std::condition_variable heartbeat_cv_;
};

}  // namespace mk8s::hollownode
