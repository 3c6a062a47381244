#include "app/app.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <sstream>
#include <cstdio>
#include <pthread.h>
#include <thread>

#include "addonhost/addon_host.h"
#include "addonhost/http_routes.h"
#include "apiserver/api_server.h"
#include "app/components.h"
#include "app/logging.h"
#include "app/node_agent.h"
#include "client/client.h"
#include "client/https_transport.h"
#include "client/in_process_transport.h"
#include "client/leader_elector.h"
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

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// A short stable hash of the state folder, so a restarted daemon keeps its leader identity and
// takes its own Leases back at once.
std::string StateFolderHash(const std::string& state_dir) {
  uint64_t hash = 1469598103934665603ULL;  // FNV-1a
  for (unsigned char c : state_dir) hash = (hash ^ c) * 1099511628211ULL;
  char buffer[20];
  std::snprintf(buffer, sizeof(buffer), "%08llx", static_cast<unsigned long long>(hash >> 32));
  return buffer;
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
  std::unique_ptr<store::Store> store;
  std::unique_ptr<apiserver::ApiServer> api;
  // Builds a transport acting as a component's identity: in-process when the API server is
  // here, otherwise HTTPS with the kubeconfig's credentials.
  std::function<std::shared_ptr<client::Transport>(const std::string&)> transport_for;
  std::string cluster_ca;
  if (options.run_apiserver) {
    health.Set("datastore", false, "opening");
    store::StoreOptions store_options;
    store_options.path = paths.datastore_db;
    store_options.history_revisions = options.store_history_revisions;
    store_options.compaction_interval = options.store_compaction_interval;
    std::error_code error;
    std::filesystem::create_directories(paths.datastore_dir, error);
    Result<std::unique_ptr<store::Store>> opened = store::Store::Open(store_options);
    if (!opened.ok()) return Fail(opened.status());
    store = std::move(*opened);
    health.Set("datastore", true, "sqlite, revision " + std::to_string(store->CurrentRevision()));
    health.Set("apiserver", false, "starting");

    apiserver::ApiServerOptions api_options;
    api_options.bind_address = options.apiserver_bind_address;
    api_options.port = static_cast<uint16_t>(options.apiserver_port);
    api_options.credentials_dir = paths.credentials_dir;
    api_options.kubeconfig_path = paths.kubeconfig;
    api_options.node_ips = apiserver::DetectNodeIps();
    api_options.certificate_check_interval = options.certificate_check_interval;
    Result<std::unique_ptr<apiserver::ApiServer>> started =
        apiserver::ApiServer::Start(api_options, store.get());
    if (!started.ok()) return Fail(started.status());
    api = std::move(*started);
    health.Set("apiserver", true, "https://" + options.apiserver_bind_address + ":" +
                                      std::to_string(api->port()));
    cluster_ca = ReadFile(paths.credentials_dir + "/ca.crt");
    apiserver::ApiServer* server = api.get();
    transport_for = [server](const std::string& user) -> std::shared_ptr<client::Transport> {
      const std::vector<std::string> groups =
          user.rfind("system:node:", 0) == 0
              ? std::vector<std::string>{"system:nodes", "system:authenticated"}
              : std::vector<std::string>{"system:authenticated"};
      return client::InProcessTransport::Create(server->InProcessHandler(user, groups), user);
    };
  } else {
    Result<client::HttpsConfig> config = client::LoadKubeconfig(options.kubeconfig);
    if (!config.ok()) return Fail(config.status());
    if (!options.server.empty()) config->server = options.server;
    Result<std::shared_ptr<client::HttpsTransport>> remote =
        client::HttpsTransport::Create(*config);
    if (!remote.ok()) return Fail(remote.status());
    cluster_ca = config->ca_pem;
    std::shared_ptr<client::Transport> shared = *remote;
    transport_for = [shared](const std::string&) { return shared; };
    spdlog::info("components are clients of {}", config->server);
  }

  ComponentOptions components;
  components.controllers = options.run_controllers;
  components.scheduler = options.run_scheduler;
  components.transport_for = transport_for;
  components.cluster_ca_pem = cluster_ca;
  // The cluster CA signs the workers' kubelet serving certificates, where its key is.
  if (std::filesystem::exists(paths.credentials_dir + "/ca.key")) {
    components.cluster_signing_cert_file = paths.credentials_dir + "/ca.crt";
    components.cluster_signing_key_file = paths.credentials_dir + "/ca.key";
  }
  components.node_monitor_grace_period =
      std::chrono::seconds(options.node_monitor_grace_period_seconds);
  components.terminated_pod_gc_threshold = options.terminated_pod_gc_threshold;
  components.pod_gc_quarantine = std::chrono::seconds(options.pod_gc_quarantine_seconds);
  components.leader_elect = options.leader_elect;
  components.identity = options.leader_elect_identity.empty()
                            ? client::DefaultLeaderIdentity(StateFolderHash(paths.state_dir))
                            : options.leader_elect_identity;
  components.lease_duration = options.leader_elect_lease_duration;
  components.renew_deadline = options.leader_elect_renew_deadline;
  components.retry_period = options.leader_elect_retry_period;
  Result<std::unique_ptr<ControlPlaneComponents>> control_plane =
      ControlPlaneComponents::Start(std::move(components), &health);
  if (!control_plane.ok()) return Fail(control_plane.status());

  NodeAgentOptions node = NodeAgentOptionsFor(options, paths.state_dir);
  node.transport_for = transport_for;
  node.cluster_ca_pem = cluster_ca;
  Result<std::unique_ptr<NodeAgent>> node_agent = NodeAgent::Start(std::move(node), &health);
  if (!node_agent.ok()) return Fail(node_agent.status());

  std::unique_ptr<hollownode::HollowNodes> hollow_nodes;
  if (options.hollow_nodes > 0) {
    hollownode::HollowNodeOptions hollow;
    hollow.count = options.hollow_nodes;
    hollow.pod_start_delay = std::chrono::milliseconds(options.hollow_pod_start_delay_ms);
    auto started = hollownode::HollowNodes::Start(
        hollow, std::make_shared<client::Client>(transport_for("system:node:hollow")));
    if (!started.ok()) return Fail(started.status());
    hollow_nodes = std::move(*started);
    health.Set("hollow-nodes", true, std::to_string(options.hollow_nodes) + " nodes");
  }

  // Addons (daemon/addonhost): API clients as system:addon:<name>; stopped before the control
  // plane and the API server.
  addonhost::AddonHostOptions addon_options;
  addon_options.state_dir = paths.state_dir;
  addon_options.addon_dirs = addonhost::DefaultAddonDirs(paths.state_dir, options.addon_dirs);
  addon_options.settings.node_ips = apiserver::DetectNodeIps();
  addon_options.settings.api_server_url =
      api ? "https://127.0.0.1:" + std::to_string(api->port()) : options.server;
  addon_options.make_client = [transport_for](const std::string& name) {
    return std::make_shared<client::Client>(transport_for("system:addon:" + name));
  };
  addon_options.is_root = geteuid() == 0;
  if (api) {  // the addons' HTTP routes: /addons/<name>/... on the API server, authenticated
    auto routes = std::make_shared<addonhost::HttpRoutes>();
    api->SetExtension(addonhost::HttpRoutes::kRoot,
                      [routes](const apiserver::http::Request& request, const std::string& user,
                               std::shared_ptr<apiserver::http::Responder> responder) {
                        routes->Serve(request, user, std::move(responder));
                      });
    addon_options.http_routes = routes;
  }
  Result<std::unique_ptr<addonhost::AddonHost>> addons =
      addonhost::AddonHost::Start(std::move(addon_options));
  if (!addons.ok()) return Fail(addons.status());

  // The control socket: status and stop everywhere; the datastore commands (dbctl, backup) only
  // where the API server and its store run.
  control::ControlContext context;
  context.store = store.get();
  context.health = &health;
  context.request_stop = [] { kill(getpid(), SIGTERM); };  // the main thread's sigwait picks it up
  context.state_dir = paths.state_dir;
  context.addons = addons->get();
  context.containerd_socket = (*node_agent)->containerd_socket();  // `mk8s images`
  context.datastore_path = options.run_apiserver ? paths.datastore_db : "";
  context.kubeconfig_path = options.run_apiserver ? paths.kubeconfig : options.kubeconfig;
  const std::string socket = options.socket.empty() ? paths.socket : options.socket;
  Result<std::unique_ptr<control::ControlServer>> control =
      control::ControlServer::Start(socket, std::move(context));
  if (!control.ok()) return Fail(control.status());
  health.Set("control", true, socket);
  spdlog::info("mk8sd ready: control socket {}", socket);

  int signal_number = 0;
  sigwait(&stop_signals, &signal_number);
  spdlog::info("received {}, shutting down", strsignal(signal_number));
  (*node_agent)->Shutdown();  // every pod, then containerd (a crash never gets here)

  (*control)->Shutdown();
  control->reset();
  addons->reset();  // addons stop (on_stop) and unload while the API still serves them
  hollow_nodes.reset();
  node_agent->reset();
  control_plane->reset();  // controllers and scheduler stop, then their Leases are released
  if (api) api->Stop();    // no new requests; watches end
  store.reset();  // waits for in-flight writes to become durable (their replies are dropped)
  api.reset();
  spdlog::info("mk8sd stopped cleanly");
  spdlog::default_logger()->flush();
  return 0;
}

}  // namespace mk8s::app
