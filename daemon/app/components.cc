#include "app/components.h"

#include <spdlog/spdlog.h>

#include "client/client.h"
#include "client/leader_elector.h"
#include "client/shared_informer_factory.h"
#include "controllers/manager.h"
#include "scheduler/service/scheduler_service.h"

namespace mk8s::app {

ControlPlaneComponents::ControlPlaneComponents(ComponentOptions options, HealthRegistry* health)
    : options_(std::move(options)), health_(health) {}

Result<std::unique_ptr<ControlPlaneComponents>> ControlPlaneComponents::Start(
    ComponentOptions options, HealthRegistry* health) {
  std::unique_ptr<ControlPlaneComponents> components(
      new ControlPlaneComponents(std::move(options), health));
  ControlPlaneComponents& self = *components;
  const ComponentOptions& o = self.options_;
  auto election = [&o](const std::string& lease) {
    client::LeaderElectionOptions election;
    election.lease_name = lease;
    election.identity = o.identity;
    election.lease_duration = o.lease_duration;
    election.renew_deadline = o.renew_deadline;
    election.retry_period = o.retry_period;
    return election;
  };

  if (o.scheduler || o.controllers) {
    self.informer_client_ =
        std::make_shared<client::Client>(o.transport_for("system:kube-controller-manager"));
    self.informers_ = std::make_unique<client::SharedInformerFactory>(self.informer_client_);
  }

  if (o.scheduler) {
    health->Set("scheduler", false, "starting");
    self.scheduler_client_ =
        std::make_shared<client::Client>(o.transport_for("system:kube-scheduler"));
    scheduler::SchedulerServiceOptions scheduler_options;
    scheduler_options.shared_informers = self.informers_.get();
    auto started = scheduler::SchedulerService::Start(scheduler_options, self.scheduler_client_);
    if (!started.ok()) return started.status();
    self.scheduler_ = std::move(*started);
    if (o.leader_elect) {
      client::LeaderElectionOptions scheduler_election = election("kube-scheduler");
      scheduler::SchedulerService* service = self.scheduler_.get();
      scheduler_election.on_started_leading = [service, health] {
        service->SetLeading(true);
        health->Set("scheduler", true, "leading");
      };
      scheduler_election.on_stopped_leading = [service, health] {
        service->SetLeading(false);
        health->Set("scheduler", true, "standby");
      };
      health->Set("scheduler", true, "standby");
      self.scheduler_elector_ =
          client::LeaderElector::Start(std::move(scheduler_election), self.scheduler_client_);
    } else {
      self.scheduler_->SetLeading(true);
      health->Set("scheduler", true, "running");
    }
  }

  if (o.controllers) {
    health->Set("controllers", false, "starting");
    self.controller_client_ =
        std::make_shared<client::Client>(o.transport_for("system:kube-controller-manager"));
    self.runner_ = std::thread([raw = components.get()] { raw->RunControllers(); });
    if (o.leader_elect) {
      client::LeaderElectionOptions manager_election = election("kube-controller-manager");
      ControlPlaneComponents* raw = components.get();
      manager_election.on_started_leading = [raw] { raw->SetControllersWanted(true); };
      manager_election.on_stopped_leading = [raw] { raw->SetControllersWanted(false); };
      health->Set("controllers", true, "standby");
      self.controller_elector_ =
          client::LeaderElector::Start(std::move(manager_election), self.controller_client_);
    } else {
      self.SetControllersWanted(true);
    }
  }
  return components;
}

ControlPlaneComponents::~ControlPlaneComponents() { Stop(); }

void ControlPlaneComponents::Stop() {
  if (stopped_) return;
  stopped_ = true;
  // The work first, then the electors, which release their Leases: a standby must not start
  // while this process still acts.
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (runner_.joinable()) runner_.join();
  if (scheduler_) scheduler_->Stop();
  controller_elector_.reset();
  scheduler_elector_.reset();
  scheduler_.reset();
  if (informers_) informers_->Shutdown();  // nobody holds handlers on them any more
}

void ControlPlaneComponents::SetControllersWanted(bool wanted) {
  {
    std::lock_guard lock(mu_);
    controllers_wanted_ = wanted;
  }
  cv_.notify_all();
}

void ControlPlaneComponents::RunControllers() {
  std::unique_ptr<controllers::ControllerManager> manager;
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [&] { return stopping_ || controllers_wanted_ != (manager != nullptr); });
    if (stopping_) break;
    if (controllers_wanted_ && !manager) {
      lock.unlock();
      controllers::ControllerManagerOptions manager_options;
      manager_options.node_monitor_grace_period = options_.node_monitor_grace_period;
      manager_options.terminated_pod_gc_threshold = options_.terminated_pod_gc_threshold;
      manager_options.pod_gc_quarantine = options_.pod_gc_quarantine;
      manager_options.shared_informers = informers_.get();
      manager_options.cluster_signing_cert_file = options_.cluster_signing_cert_file;
      manager_options.cluster_signing_key_file = options_.cluster_signing_key_file;
      auto started = controllers::ControllerManager::Start(manager_options, controller_client_,
                                                           options_.cluster_ca_pem);
      lock.lock();
      if (!started.ok()) {
        spdlog::error("controller manager: {}; retrying", started.status().message());
        health_->Set("controllers", false, started.status().message());
        cv_.wait_for(lock, std::chrono::seconds(2), [&] { return stopping_; });
        continue;
      }
      manager = std::move(*started);
      health_->Set("controllers", true,
                   std::to_string(manager->running().size()) + " running (leading)");
    } else if (!controllers_wanted_ && manager) {
      lock.unlock();
      manager.reset();  // workers, then informers
      lock.lock();
      health_->Set("controllers", true, "standby");
      spdlog::info("controller manager: lost leadership, controllers stopped");
    }
  }
  lock.unlock();
  manager.reset();
}

}  // namespace mk8s::app
