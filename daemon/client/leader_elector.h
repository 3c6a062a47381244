// LeaderElector: leader election through a coordination.k8s.io/v1 Lease (client-go's
// leaderelection with a LeaseLock), so only one controller manager and one scheduler act at a
// time while standbys wait.
//
// Protocol: the holder renews spec.renewTime every `retry_period`. A candidate takes the Lease
// when it is free or when its record has not changed for `lease_duration` by the candidate's own
// clock (the observed time, so clocks need not agree), bumping leaseTransitions. Every write is
// a compare-and-swap on resourceVersion, so two candidates never both win. A leader that cannot
// renew for `renew_deadline` steps down. Stop() releases a held Lease (holder cleared,
// leaseDurationSeconds 1), so a standby takes over at once after a clean shutdown.
//
// Threads: one elector thread makes the (blocking) API calls and runs the callbacks, which must
// be quick (flip a flag, signal a thread). on_stopped_leading runs at most once per
// on_started_leading, including from Stop().
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <nlohmann/json_fwd.hpp>

#include "client/client.h"

namespace mk8s::client {

struct LeaderElectionOptions {
  std::string lease_namespace = "kube-system";
  std::string lease_name;  // e.g. "kube-controller-manager", "kube-scheduler"
  std::string identity;    // this candidate; unique among candidates
  std::chrono::milliseconds lease_duration{15000};
  std::chrono::milliseconds renew_deadline{10000};
  std::chrono::milliseconds retry_period{2000};
  std::function<void()> on_started_leading;
  std::function<void()> on_stopped_leading;
};

class LeaderElector {
 public:
  // Starts the elector thread. `client` must outlive the elector.
  static std::unique_ptr<LeaderElector> Start(LeaderElectionOptions options,
                                              std::shared_ptr<Client> client);
  ~LeaderElector();  // Stop()
  // Steps down (releasing the Lease if held) and joins the thread. Idempotent.
  void Stop();
  bool IsLeader() const { return leading_.load(); }
  const std::string& identity() const { return options_.identity; }

 private:
  LeaderElector(LeaderElectionOptions options, std::shared_ptr<Client> client);
  void Run();
  // One attempt to acquire or renew. True when this candidate holds the Lease afterwards.
  bool TryAcquireOrRenew();
  void Release();
  bool WaitFor(std::chrono::milliseconds delay);  // false when stopping
  nlohmann::json LeaseSpec(bool taking_over, const nlohmann::json* old_spec) const;

  const LeaderElectionOptions options_;
  const std::shared_ptr<Client> client_;
  std::atomic<bool> leading_{false};

  // Elector thread only: the last record seen and when it was first seen by our clock.
  std::string observed_record_;
  std::chrono::steady_clock::time_point observed_at_;
  std::chrono::steady_clock::time_point last_renew_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;
  bool stopped_ = false;   // Stop() ran (owner's thread)
};

// A default identity: "<hostname>_<suffix>".
std::string DefaultLeaderIdentity(const std::string& suffix);

}  // namespace mk8s::client
