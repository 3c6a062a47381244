// ControlPlaneComponents: the controller manager and the scheduler, each behind its own leader
// election (Leases kube-system/kube-controller-manager and kube-system/kube-scheduler), run as
// API clients of an in-process or remote API server. The same code serves the all-in-one daemon
// and `mk8sd --components=controllers,scheduler --server=https://...`.
//
//  - scheduler: started at once (warm cache); schedules only while it holds its Lease.
//  - controllers: a ControllerManager is built when the Lease is won and torn down when it is
//    lost (it owns its informers, so nothing of it outlives leadership).
//
// Both share one SharedInformerFactory, so the process holds one cache of pods (and nodes,
// namespaces) however many components read it; each removes its own handlers when it stops.
//
// Threads: the electors' threads only flip the desired state; one runner thread starts and stops
// the controller manager (which blocks while its informers sync). Health is reported through the
// HealthRegistry ("controllers", "scheduler"). Destruction stops everything and releases held
// Leases; the transports' servers must still be up then.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/health.h"
#include "common/status.h"

namespace mk8s::client {
class Client;
class LeaderElector;
class SharedInformerFactory;
class Transport;
}  // namespace mk8s::client
namespace mk8s::controllers {
class ControllerManager;
}  // namespace mk8s::controllers
namespace mk8s::scheduler {
class SchedulerService;
}  // namespace mk8s::scheduler

namespace mk8s::app {

struct ComponentOptions {
  bool controllers = true;
  bool scheduler = true;
  // A transport acting as `user` (system:kube-controller-manager, system:kube-scheduler).
  std::function<std::shared_ptr<client::Transport>(const std::string& user)> transport_for;
  std::string cluster_ca_pem;
  // The CA files the controller manager signs kubelet-serving CSRs with (empty: no signing).
  std::string cluster_signing_cert_file;
  std::string cluster_signing_key_file;
  std::chrono::milliseconds node_monitor_grace_period{std::chrono::seconds(50)};
  int64_t terminated_pod_gc_threshold = 12500;
  std::chrono::milliseconds pod_gc_quarantine{std::chrono::seconds(40)};
  // Leader election (upstream's flags and defaults).
  bool leader_elect = true;
  std::string identity;
  std::chrono::milliseconds lease_duration{15000};
  std::chrono::milliseconds renew_deadline{10000};
  std::chrono::milliseconds retry_period{2000};
};

class ControlPlaneComponents {
 public:
  static Result<std::unique_ptr<ControlPlaneComponents>> Start(ComponentOptions options,
                                                               HealthRegistry* health);
  ~ControlPlaneComponents();  // Stop()
  void Stop();                // idempotent

 private:
  ControlPlaneComponents(ComponentOptions options, HealthRegistry* health);
  void RunControllers();  // the runner thread
  void SetControllersWanted(bool wanted);

  const ComponentOptions options_;
  HealthRegistry* const health_;

  std::shared_ptr<client::Client> informer_client_;  // lists and watches for both components
  std::unique_ptr<client::SharedInformerFactory> informers_;
  std::shared_ptr<client::Client> scheduler_client_;
  std::unique_ptr<scheduler::SchedulerService> scheduler_;
  std::unique_ptr<client::LeaderElector> scheduler_elector_;

  std::shared_ptr<client::Client> controller_client_;
  std::unique_ptr<client::LeaderElector> controller_elector_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool controllers_wanted_ = false;  // GUARDED_BY(mu_)
  bool stopping_ = false;            // GUARDED_BY(mu_)
  std::thread runner_;
  bool stopped_ = false;
};

}  // namespace mk8s::app
