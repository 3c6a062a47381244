#include "controllers/manager.h"

#include <spdlog/spdlog.h>

#include "controllers/certificates/csr_approver.h"
#include "controllers/certificates/csr_cleaner.h"
#include "controllers/certificates/csr_signer.h"
#include "controllers/cronjob/cronjob_controller.h"
#include "controllers/daemonset/daemonset_controller.h"
#include "controllers/deployment/deployment_controller.h"
#include "controllers/disruption/disruption_controller.h"
#include "controllers/endpoints/endpoints_controller.h"
#include "controllers/garbagecollector/garbage_collector.h"
#include "controllers/job/job_controller.h"
#include "controllers/namespace/namespace_controller.h"
#include "controllers/nodeipam/node_ipam_controller.h"
#include "controllers/nodelifecycle/node_lifecycle_controller.h"
#include "controllers/podgc/pod_gc_controller.h"
#include "controllers/replicaset/replicaset_controller.h"
#include "controllers/rootca/root_ca_controller.h"
#include "controllers/serviceaccount/serviceaccount_controller.h"

namespace mk8s::controllers {
namespace {

template <typename T>
ControllerFactory Make() {
  return [](const ControllerContext& context) { return std::make_unique<T>(context); };
}

}  // namespace

const ControllerRegistry& ControllerRegistry::Builtin() {
  static const ControllerRegistry* registry = [] {
    auto* built = new ControllerRegistry();
    built->Register("namespace", Make<NamespaceController>());
    built->Register("serviceaccount", Make<ServiceAccountController>());
    built->Register("root-ca-publisher", Make<RootCaController>());
    built->Register("garbage-collector", Make<GarbageCollector>());
    built->Register("replicaset", Make<ReplicaSetController>());
    built->Register("deployment", Make<DeploymentController>());
    built->Register("job", Make<JobController>());
    built->Register("cronjob", Make<CronJobController>());
    built->Register("daemonset", Make<DaemonSetController>());
    built->Register("disruption", Make<DisruptionController>());
    built->Register("endpoints", Make<EndpointsController>());
    built->Register("node-ipam", Make<NodeIpamController>());
    built->Register("node-lifecycle", Make<NodeLifecycleController>());
    built->Register("pod-garbage-collector", Make<PodGcController>());
    built->Register("csr-approving", Make<CsrApprover>());
    built->Register("csr-signing", Make<CsrSigner>());
    built->Register("csr-cleaner", Make<CsrCleaner>());
    return built;
  }();
  return *registry;
}

void ControllerRegistry::Register(std::string name, ControllerFactory factory) {
  factories_[std::move(name)] = std::move(factory);
}

std::vector<std::string> ControllerRegistry::Names() const {
  std::vector<std::string> names;
  for (const auto& [name, factory] : factories_) names.push_back(name);
  return names;
}

const ControllerFactory* ControllerRegistry::Find(const std::string& name) const {
  auto it = factories_.find(name);
  return it == factories_.end() ? nullptr : &it->second;
}

Result<std::unique_ptr<ControllerManager>> ControllerManager::Start(
    const ControllerManagerOptions& options, std::shared_ptr<client::Client> client,
    std::string cluster_ca_pem, const ControllerRegistry& registry) {
  std::unique_ptr<ControllerManager> manager(new ControllerManager());
  if (options.shared_informers != nullptr) {
    manager->informers_ = options.shared_informers;
  } else {
    manager->owned_informers_ = std::make_unique<client::SharedInformerFactory>(client);
    manager->informers_ = manager->owned_informers_.get();
  }
  ControllerContext context;
  context.client = client;
  context.informers = manager->informers_;
  context.cluster_ca_pem = std::move(cluster_ca_pem);
  context.clock = options.clock;
  context.cluster_signing_cert_file = options.cluster_signing_cert_file;
  context.cluster_signing_key_file = options.cluster_signing_key_file;
  context.node_monitor_grace_period = options.node_monitor_grace_period;
  context.node_monitor_period =
      std::min(context.node_monitor_period, options.node_monitor_grace_period / 5);
  context.terminated_pod_gc_threshold = options.terminated_pod_gc_threshold;
  context.pod_gc_quarantine = options.pod_gc_quarantine;

  const std::vector<std::string> names = options.enabled.empty() ? registry.Names() : options.enabled;
  // Record the handlers the controllers add, to remove them from shared informers at Stop().
  client::Informer::HandlerScope scope;
  for (const std::string& name : names) {
    const ControllerFactory* factory = registry.Find(name);
    if (factory == nullptr) {
      manager->handlers_ = scope.Take();
      return Status(Code::kInvalidArgument, "unknown controller '" + name + "'; known: " + [&] {
        std::string known;
        for (const auto& n : registry.Names()) known += (known.empty() ? "" : ", ") + n;
        return known;
      }());
    }
    manager->controllers_.push_back((*factory)(context));
    manager->controllers_.back()->Setup();
  }
  manager->handlers_ = scope.Take();
  manager->informers_->Start();
  if (!manager->informers_->WaitForCacheSync(options.sync_timeout)) {
    return Status(Code::kDeadlineExceeded, "controller informers did not sync within " +
                                               std::to_string(options.sync_timeout.count()) + " ms");
  }
  for (auto& controller : manager->controllers_) controller->Run(options.workers_per_controller);
  spdlog::info("controller manager running {} controllers", manager->controllers_.size());
  return manager;
}

ControllerManager::~ControllerManager() { Stop(); }

void ControllerManager::Stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& controller : controllers_) controller->Stop();
  if (owned_informers_) {
    owned_informers_->Shutdown();
  } else {
    for (const auto& [informer, id] : handlers_) informer->RemoveEventHandler(id);
  }
}

std::vector<std::string> ControllerManager::running() const {
  std::vector<std::string> names;
  for (const auto& controller : controllers_) names.push_back(controller->name());
  return names;
}

}  // namespace mk8s::controllers
