// KubeProxy: the node's service proxy in iptables mode (upstream kube-proxy's iptables proxier).
// It watches Services and EndpointSlices and keeps the kernel's nat and filter rules in line
// with them: ClusterIPs, NodePorts and external IPs DNAT to ready endpoints (random spread,
// optional ClientIP affinity); services without endpoints are REJECTed; off-cluster and hairpin
// traffic is masqueraded. See rules.h for the chain layout.
//
// Each sync rebuilds the whole rule set and applies it in ONE `iptables-restore --noflush`
// transaction; only chains named "<chain prefix>-..." are touched, so several instances (one
// per test cluster) can share a network namespace. The jumps from the built-in chains are
// ensured on the first sync and on every periodic resync.
//
// Threads: the informers' dispatch threads only mark the state dirty. One sync thread does all
// iptables work: a change is applied `min_sync_interval` after it was seen (changes arriving
// meanwhile are coalesced; syncs start at least that far apart), and everything is re-applied
// every `sync_period`. A failed sync is retried after `retry_interval`, doubling per failure in
// a row up to `sync_period`. So at most one sync is ever in flight. After a successful sync,
// conntrack entries of UDP flows to endpoints that left are deleted (conntrack.h).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "proxy/iptables.h"
#include "proxy/rules.h"
#include "proxy/service_snapshot.h"

namespace mk8s::client {
class Client;
class Informer;
class SharedInformerFactory;
}  // namespace mk8s::client

namespace mk8s::proxy {

struct ProxyOptions {
  std::string node_name;
  std::vector<std::string> node_ips;             // for logs; node ports match any local address
  RuleOptions rules;                             // chain prefix, cluster CIDR, masquerade mark bit
  std::string service_cidr = "10.152.183.0/24";  // for logs
  IptablesPaths iptables;
  std::chrono::milliseconds min_sync_interval{100};
  std::chrono::milliseconds sync_period{30000};
  std::chrono::milliseconds retry_interval{1000};
  // Called on the sync thread after every sync attempt, with no lock held (keep it quick):
  // whether it worked and a one-line summary or the error. Optional.
  std::function<void(bool ok, const std::string& message)> on_sync;
  // Informers to share (their owner starts and stops them); null: KubeProxy makes its own.
  client::SharedInformerFactory* shared_informers = nullptr;
};

struct SyncStats {
  uint64_t syncs = 0;     // successful syncs
  uint64_t failures = 0;  // failed syncs
  std::string last_error;
  size_t service_ports = 0;                    // in the last successful sync
  std::chrono::microseconds last_duration{0};  // generation + apply of the last successful sync
};

class KubeProxy {
 public:
  // Validates the options, finds the iptables tools, starts the informers and the sync thread.
  static Result<std::unique_ptr<KubeProxy>> Start(ProxyOptions options,
                                                  std::shared_ptr<client::Client> client);
  ~KubeProxy();  // Stop()
  KubeProxy(const KubeProxy&) = delete;
  KubeProxy& operator=(const KubeProxy&) = delete;

  // Stops the sync thread and removes this proxy's event handlers. The rules stay in place
  // (as upstream: traffic keeps flowing across a restart); CleanUp() removes them. Idempotent.
  void Stop();

  SyncStats stats() const;

 private:
  KubeProxy(ProxyOptions options, std::shared_ptr<client::Client> client);
  void MarkDirty();
  void Run();  // the sync thread
  Status Sync(bool full);
  Status EnsureJumps();
  void ClearStaleUdpFlows(const ServiceSnapshot& snapshot);

  const ProxyOptions options_;
  const std::shared_ptr<client::Client> client_;
  const Iptables iptables_;
  std::unique_ptr<client::SharedInformerFactory> own_informers_;
  client::Informer* services_ = nullptr;
  client::Informer* slices_ = nullptr;
  std::vector<std::pair<client::Informer*, uint64_t>> handlers_;

  // Sync-thread-only state.
  ExistingChains chains_;  // ours in the kernel after the last successful restore
  bool need_full_ = true;  // re-read the kernel's chains and re-ensure the jumps
  std::unique_ptr<ServiceSnapshot> applied_;  // the last snapshot applied (null before the first)
  bool conntrack_missing_ = false;            // warned once; no more attempts

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool dirty_ = true;                                  // GUARDED_BY(mu_)
  bool stopping_ = false;                              // GUARDED_BY(mu_)
  std::chrono::steady_clock::time_point dirty_since_;  // GUARDED_BY(mu_)
  SyncStats stats_;                                    // GUARDED_BY(mu_)
  std::thread thread_;
  bool stopped_ = false;
};

// Removes every rule and chain of the instance with options.chain_prefix: the jumps from the
// built-in chains, then all "<prefix>-..." chains in nat and filter. For `mk8s reset`, tests, and
// turning the proxy off. Idempotent.
Status CleanUp(const RuleOptions& options, const IptablesPaths& paths);

}  // namespace mk8s::proxy
