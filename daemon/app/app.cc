#include "app/app.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <cstdio>
#include <pthread.h>
#include <thread>

#include "apiserver/api_server.h"
#include "app/logging.h"
#include "client/client.h"
#include "client/in_process_transport.h"
#include "controllers/manager.h"
#include "hollownode/hollow_nodes.h"
#include "app/state_lock.h"
#include "common/health.h"
#include "common/paths.h"
#include "common/version.h"
#include "control/control_server.h"
#include "store/store.h"

namespace mk8s::app {
namespace {

// Blocks the stop signals in every thread (call before any thread starts) and returns the set
// that the main thread then waits for.
sigset_t BlockStopSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  // A peer that hangs up must not kill the daemon.
  std::signal(SIGPIPE, SIG_IGN);
  return signals;
}

int Fail(const Status& status) {
  std::fprintf(stderr, "mk8sd: %s\n", status.message().c_str());
  if (spdlog::default_logger()) spdlog::error("{}", status.message());
  return 1;
}

}  // namespace

int Run(const DaemonOptions& options) {
  const sigset_t stop_signals = BlockStopSignals();
  const StatePaths paths(options.state_dir);

  Result<std::unique_ptr<StateLock>> lock = StateLock::Acquire(paths.state_dir, paths.pid_file);
  if (!lock.ok()) {
    std::fprintf(stderr, "mk8sd: %s\n", lock.status().message().c_str());
    return 1;
  }
  if (Status status = SetUpLogging(paths.log_file, options.log_level, options.log_to_stderr);
      !status.ok()) {
    return Fail(status);
  }
  spdlog::info("mk8sd {} ({}) starting, state folder {}", kVersion, kGitCommit, paths.state_dir);

  HealthRegistry health;
  health.Set("datastore", false, "opening");

  store::StoreOptions store_options;
  store_options.path = paths.datastore_db;
  store_options.history_revisions = options.store_history_revisions;
  store_options.compaction_interval = options.store_compaction_interval;
  std::error_code error;
  std::filesystem::create_directories(paths.datastore_dir, error);
  Result<std::unique_ptr<store::Store>> store = store::Store::Open(store_options);
  if (!store.ok()) return Fail(store.status());
  health.Set("datastore", true, "sqlite, revision " + std::to_string((*store)->CurrentRevision()));
  health.Set("apiserver", false, "starting");

  apiserver::ApiServerOptions api_options;
  api_options.bind_address = options.apiserver_bind_address;
  api_options.port = static_cast<uint16_t>(options.apiserver_port);
  api_options.credentials_dir = paths.credentials_dir;
  api_options.kubeconfig_path = paths.kubeconfig;
  api_options.node_ips = apiserver::DetectNodeIps();
  Result<std::unique_ptr<apiserver::ApiServer>> api =
      apiserver::ApiServer::Start(api_options, store->get());
  if (!api.ok()) return Fail(api.status());
  health.Set("apiserver", true, "https://" + options.apiserver_bind_address + ":" +
                                    std::to_string((*api)->port()));

  // The controller manager talks to the API server in-process, as its own identity.
  health.Set("controllers", false, "starting");
  std::shared_ptr<client::InProcessTransport> controller_transport =
      client::InProcessTransport::Create(
          (*api)->InProcessHandler("system:kube-controller-manager", {"system:authenticated"}),
          "system:kube-controller-manager");
  std::string cluster_ca;
  {
    std::ifstream ca(paths.credentials_dir + "/ca.crt");
    std::stringstream text;
    text << ca.rdbuf();
    cluster_ca = text.str();
  }
  Result<std::unique_ptr<controllers::ControllerManager>> manager =
      controllers::ControllerManager::Start(
          [&] {
            controllers::ControllerManagerOptions manager_options;
            manager_options.node_monitor_grace_period =
                std::chrono::seconds(options.node_monitor_grace_period_seconds);
            return manager_options;
          }(),
          std::make_shared<client::Client>(controller_transport), cluster_ca);
  if (!manager.ok()) return Fail(manager.status());
  health.Set("controllers", true, std::to_string((*manager)->running().size()) + " running");

  std::shared_ptr<client::InProcessTransport> node_transport;
  std::unique_ptr<hollownode::HollowNodes> hollow_nodes;
  if (options.hollow_nodes > 0) {
    node_transport = client::InProcessTransport::Create(
        (*api)->InProcessHandler("system:node:hollow", {"system:nodes"}), "system:node:hollow");
    hollownode::HollowNodeOptions hollow;
    hollow.count = options.hollow_nodes;
    hollow.pod_start_delay = std::chrono::milliseconds(options.hollow_pod_start_delay_ms);
    auto started = hollownode::HollowNodes::Start(hollow, std::make_shared<client::Client>(node_transport));
    if (!started.ok()) return Fail(started.status());
    hollow_nodes = std::move(*started);
    health.Set("hollow-nodes", true, std::to_string(options.hollow_nodes) + " nodes");
  }

  control::ControlContext context;
  context.store = store->get();
  context.health = &health;
  context.request_stop = [] { kill(getpid(), SIGTERM); };  // the main thread's sigwait picks it up
  context.state_dir = paths.state_dir;
  context.datastore_path = paths.datastore_db;
  context.kubeconfig_path = paths.kubeconfig;
  const std::string socket = options.socket.empty() ? paths.socket : options.socket;
  Result<std::unique_ptr<control::ControlServer>> control =
      control::ControlServer::Start(socket, std::move(context));
  if (!control.ok()) return Fail(control.status());
  health.Set("control", true, socket);
  spdlog::info("mk8sd ready: control socket {}", socket);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  spdlog::info("received {}, shutting down", strsignal(signal_number));

  (*control)->Shutdown();
  control->reset();
  hollow_nodes.reset();
  node_transport.reset();
  manager->reset();               // workers, then informers
  controller_transport.reset();   // joins its callback thread
  (*api)->Stop();   // no new requests; watches end
  store->reset();   // waits for in-flight writes to become durable (their replies are dropped)
  api->reset();
  spdlog::info("mk8sd stopped cleanly");
  spdlog::default_logger()->flush();
  return 0;
}

}  // namespace mk8s::app
