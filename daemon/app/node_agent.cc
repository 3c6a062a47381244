#include "app/node_agent.h"

#include "app/app.h"
#include "common/paths.h"

#include <spdlog/spdlog.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>

#include <cstdio>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "apiserver/api_server.h"
#include "client/client.h"
#include "kubelet/kubelet.h"
#include "kubelet/pod_routes.h"
#include "kubelet/server/kubelet_server.h"
#include "kubelet/serving_cert.h"
#include "kubelet/streaming/cri_streaming_runtime.h"
#include "kubelet/streaming/streaming_service.h"
#include "pki/kubelet_certs.h"
#include "proxy/iptables.h"
#include "proxy/kube_proxy.h"
#include "runtime/containerd.h"
#include "runtime/containerd_config.h"
#include "runtime/cri_client.h"
#include "runtime/images.h"

namespace mk8s::app {

std::string DefaultProxyChainPrefix(const std::string& state_dir) {
  uint64_t hash = 1469598103934665603ULL;  // FNV-1a
  for (unsigned char c : state_dir) hash = (hash ^ c) * 1099511628211ULL;
  char buffer[16];
  std::snprintf(buffer, sizeof(buffer), "MK8S-%05llx", static_cast<unsigned long long>(hash >> 44));
  return buffer;
}

NodeAgentOptions NodeAgentOptionsFor(const DaemonOptions& options, const std::string& state_dir) {
  NodeAgentOptions node;
  node.proxy = options.run_proxy;
  node.node_name = options.node_name;
  if (node.node_name.empty()) {
    char name[256] = {};
    node.node_name =
        gethostname(name, sizeof(name) - 1) == 0 && name[0] != '\0' ? name : "localhost";
  }
  node.node_ips = options.node_ip.empty() ? apiserver::DetectNodeIps()
                                          : std::vector<std::string>{options.node_ip};
  node.proxy_chain_prefix = options.proxy_chain_prefix.empty() ? DefaultProxyChainPrefix(state_dir)
                                                               : options.proxy_chain_prefix;
  node.kubelet = options.run_kubelet;
  node.state_dir = state_dir;
  node.kubelet_port = options.kubelet_port;
  node.certificate_check_interval = options.certificate_check_interval;
  node.extended_resources = options.node_extended_resources;
  auto thresholds = kubelet::ParseEvictionHard(options.eviction_hard);
  if (thresholds.ok()) node.eviction_hard = std::move(*thresholds);  // main.cc validated it
  auto soft = kubelet::ParseEvictionSoft(options.eviction_soft, options.eviction_soft_grace_period);
  if (soft.ok()) node.eviction_soft = std::move(*soft);  // main.cc validated it too
  node.eviction_max_pod_grace_seconds = options.eviction_max_pod_grace_period;
  node.image_gc.high_threshold_percent = options.image_gc_high_threshold;
  node.image_gc.low_threshold_percent = options.image_gc_low_threshold;
  node.image_gc.minimum_age =
      std::chrono::duration_cast<std::chrono::seconds>(options.image_minimum_gc_age);
  node.image_gc.period = std::max(std::chrono::seconds(1),
      std::chrono::duration_cast<std::chrono::seconds>(options.image_gc_period));
  node.registry_mirrors = options.registry_mirrors;
  return node;
}

std::string DefaultBridgeName(const std::string& state_dir) {
  uint64_t hash = 1469598103934665603ULL;  // FNV-1a
  for (unsigned char c : state_dir) hash = (hash ^ c) * 1099511628211ULL;
  char buffer[16];
  std::snprintf(buffer, sizeof(buffer), "mk8s%04llx", static_cast<unsigned long long>(hash >> 48));
  return buffer;
}

namespace {

// Writes `text` to `path` through a temporary file and a rename (containerd watches the folder).
Status WriteFileAtomically(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << text;
    if (!out.good()) return Status(Code::kInternal, "cannot write " + temporary);
  }
  std::error_code error;
  std::filesystem::rename(temporary, path, error);
  if (error) return Status(Code::kInternal, "cannot rename " + temporary + ": " + error.message());
  return Status::Ok();
}

// A free TCP port on every address, bound and listening so nobody else can take it before the
// kubelet server serves it; the caller owns *fd_out. Connections wait in the backlog meanwhile.
Result<int> ReserveKubeletPort(int* fd_out) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return Status(Code::kInternal, "socket: cannot reserve a kubelet port");
  const int on = 1;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_ANY);
  socklen_t length = sizeof(address);
  const bool ok = ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) == 0 &&
                  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
                  ::listen(fd, SOMAXCONN) == 0 &&
                  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0;
  if (!ok) {
    ::close(fd);
    return Status(Code::kUnavailable, "cannot reserve a free kubelet port");
  }
  *fd_out = fd;
  return static_cast<int>(ntohs(address.sin_port));
}

}  // namespace

Status NodeAgent::StartKubelet(const NodeAgentOptions& options, HealthRegistry* health) {
  health->Set("kubelet", false, "starting containerd");
  const std::string state = options.state_dir;
  const std::string cni_conf_dir = state + "/cni/net.d";
  std::error_code error;
  std::filesystem::create_directories(cni_conf_dir, error);
  runtime::ContainerdOptions containerd_options;
  containerd_options.state_dir = state + "/containerd";
  containerd_options.cni_conf_dir = cni_conf_dir;
  containerd_options.sandbox_image = runtime::PauseImageRef();
  containerd_options.registry_mirrors = options.registry_mirrors;
  auto containerd = runtime::Containerd::Start(containerd_options);
  if (!containerd.ok()) return containerd.status();
  containerd_ = std::move(*containerd);
  auto cri = runtime::CriClient::Connect(containerd_->socket());
  if (!cri.ok()) return cri.status();
  cri_ = std::move(*cri);
  auto tarball = runtime::FindPauseImageTarball();
  if (!tarball.ok()) return tarball.status();
  auto imported =
      runtime::EnsurePauseImage(*cri_, containerd_->socket(), *tarball, runtime::PauseImageRef());
  if (!imported.ok()) return imported.status();

  // The kubelet's HTTPS API (logs, exec, attach, port-forward). With the cluster CA key here
  // the serving certificate is issued locally; a worker asks the cluster for it (a CSR) on the
  // bootstrap thread once its node is registered, and serves from then on.
  const StatePaths paths(state);
  const bool has_ca = std::filesystem::exists(paths.credentials_dir + "/ca.key");
  credentials_dir_ = paths.credentials_dir;
  node_name_ = options.node_name;
  node_ips_ = options.node_ips;
  int kubelet_port = options.kubelet_port;
  if (has_ca) {
    auto files = pki::LoadOrCreateKubeletServingCert(credentials_dir_, node_name_, node_ips_);
    if (!files.ok()) return files.status();
    if (Status started = StartKubeletServer(*files, kubelet_port, state); !started.ok()) {
      return started;
    }
    kubelet_port = kubelet_server_->port();
  } else if (kubelet_port == 0) {
    // The Node must name the port before the server can start (it waits for a certificate).
    auto port = ReserveKubeletPort(&reserved_kubelet_fd_);
    if (!port.ok()) return port.status();
    kubelet_port = *port;
  }

  kubelet::KubeletOptions kubelet_options;
  kubelet_options.node.node_name = options.node_name;
  kubelet_options.node.node_ips = options.node_ips;
  kubelet_options.node.kubelet_port = kubelet_port == 0 ? 10250 : kubelet_port;
  kubelet_options.node.state_dir = state;
  kubelet_options.node.extended_resources = options.extended_resources;
  kubelet_options.node.eviction_hard = options.eviction_hard;
  kubelet_options.node.eviction_soft = options.eviction_soft;
  kubelet_options.eviction_max_pod_grace_seconds = options.eviction_max_pod_grace_seconds;
  kubelet_options.node.imagefs_dir = runtime::ContainerdPaths(state + "/containerd").root;
  kubelet_options.image_gc = options.image_gc;
  kubelet_options.image_gc.imagefs_dir = kubelet_options.node.imagefs_dir;
  kubelet_options.image_gc.protected_refs = {runtime::PauseImageRef()};
  kubelet_options.root_dir = state + "/kubelet";
  const std::string bridge = DefaultBridgeName(state);
  kubelet_options.on_pod_cidr = [cni_conf_dir, bridge, state](const std::string& cidr) -> Status {
    runtime::CniNetworkOptions network;
    network.bridge_name = bridge;
    network.subnet = cidr;
    network.ipam_data_dir = state + "/cni/ipam";
    auto conflist = runtime::CniConflist(network);
    if (!conflist.ok()) return conflist.status();
    return WriteFileAtomically(cni_conf_dir + "/10-mk8s.conflist", *conflist);
  };
  node_client_ =
      std::make_shared<client::Client>(options.transport_for("system:node:" + options.node_name));
  health->Set("kubelet", false, "registering node " + options.node_name);
  Status first = StartNodeComponents(kubelet_options, options.node_name);
  const std::chrono::milliseconds check_interval = options.certificate_check_interval;
  if (first.ok() && has_ca) {
    health->Set("kubelet", true,
                "node " + options.node_name + ", containerd " + containerd_->socket());
    bootstrap_ = std::thread([this, check_interval] {
      KeepServingCertFresh(/*cert_options=*/nullptr, check_interval);
    });
    return Status::Ok();
  }
  if (!first.ok()) {
    spdlog::warn("kubelet: {}; retrying in the background", first.message());
    health->Set("kubelet", false, "waiting for the API server: " + first.message());
  }
  // Registration retries and (on a worker) the serving certificate, with back-off.
  kubelet::ServingCertBootstrapOptions cert_options;
  cert_options.pki_dir = state + "/kubelet/pki";
  cert_options.node_name = options.node_name;
  cert_options.node_ips = options.node_ips;
  cert_options.cluster_ca_pem = options.cluster_ca_pem;
  bootstrap_ = std::thread(
      [this, kubelet_options, cert_options, has_ca, kubelet_port, state, health, check_interval] {
        const kubelet::ServingCertBootstrapOptions* from_cluster = has_ca ? nullptr : &cert_options;
        if (Bootstrap(kubelet_options, from_cluster, kubelet_port, state, health)) {
          KeepServingCertFresh(from_cluster, check_interval);
        }
      });
  return Status::Ok();
}

Status NodeAgent::StartNodeComponents(const kubelet::KubeletOptions& kubelet_options,
                                      const std::string& node_name) {
  auto started = kubelet::Kubelet::Start(kubelet_options, node_client_, cri_);
  if (!started.ok()) return started.status();
  kubelet_ = std::move(*started);
  kubelet_ptr_ = kubelet_.get();

  kubelet::PodRoutesOptions routes_options;
  routes_options.node_name = node_name;
  routes_options.run = [](const std::vector<std::string>& argv) -> Result<kubelet::CommandOutput> {
    auto ran = proxy::RunProcess(argv, "", std::chrono::seconds(10));
    if (!ran.ok()) return ran.status();
    return kubelet::CommandOutput{ran->exit_code, ran->out, ran->err};
  };
  auto routes = kubelet::PodRoutes::Start(std::move(routes_options), node_client_);
  if (!routes.ok()) return routes.status();
  pod_routes_ = std::move(*routes);
  return Status::Ok();
}

Status NodeAgent::StartKubeletServer(const pki::CertFiles& files, int port,
                                     const std::string& state) {
  kubelet::KubeletServerOptions server_options;
  server_options.port = static_cast<uint16_t>(port);
  server_options.listening_fd = std::exchange(reserved_kubelet_fd_, -1);  // the server's now
  server_options.log_root = state + "/kubelet/logs";
  server_options.cert_file = files.cert_file;
  server_options.key_file = files.key_file;
  server_options.client_ca_file = files.ca_file;
  server_options.pod_uid_lookup = [this](const std::string& ns,
                                         const std::string& name) -> std::optional<std::string> {
    kubelet::Kubelet* k = kubelet_ptr_.load();
    return k != nullptr ? k->PodUid(ns, name) : std::nullopt;
  };
  if (!streaming_) {
    streaming_ =
        std::make_unique<kubelet::StreamingService>(kubelet::MakeCriStreamingRuntime(cri_.get()));
  }
  server_options.streaming = [streaming = streaming_.get()](auto& request, auto& responder) {
    return streaming->Serve(request, responder);
  };
  std::ifstream cert(files.cert_file);
  std::stringstream cert_text;
  cert_text << cert.rdbuf();
  auto server = kubelet::KubeletServer::Start(std::move(server_options));
  if (!server.ok()) return server.status();
  kubelet_server_ = std::move(*server);
  served_cert_pem_ = cert_text.str();
  return Status::Ok();
}

void NodeAgent::KeepServingCertFresh(const kubelet::ServingCertBootstrapOptions* cert_options,
                                     std::chrono::milliseconds interval) {
  auto stopping = [this] {
    std::lock_guard lock(mu_);
    return stopping_;
  };
  while (!WaitForStop(interval)) {
    Result<pki::CertFiles> files =
        cert_options == nullptr
            ? pki::LoadOrCreateKubeletServingCert(credentials_dir_, node_name_, node_ips_)
            : kubelet::EnsureServingCertFromCluster(*node_client_, *cert_options, stopping);
    if (!files.ok()) {
      if (!stopping()) {
        spdlog::warn("kubelet: renewing the serving certificate: {}", files.status().message());
      }
      continue;
    }
    std::ifstream cert_in(files->cert_file), key_in(files->key_file);
    std::stringstream cert, key;
    cert << cert_in.rdbuf();
    key << key_in.rdbuf();
    if (cert.str() == served_cert_pem_) continue;
    if (Status replaced = kubelet_server_->ReplaceCertificate(cert.str(), key.str());
        !replaced.ok()) {
      spdlog::warn("kubelet: serving the renewed certificate: {}", replaced.message());
      continue;
    }
    served_cert_pem_ = cert.str();
    spdlog::info("kubelet: serving a renewed certificate ({})",
                 cert_options == nullptr ? "from the cluster CA here" : "issued through a CSR");
  }
}

bool NodeAgent::WaitForStop(std::chrono::milliseconds delay) {
  std::unique_lock lock(mu_);
  return cv_.wait_for(lock, delay, [this] { return stopping_; });
}

bool NodeAgent::Bootstrap(kubelet::KubeletOptions kubelet_options,
                          const kubelet::ServingCertBootstrapOptions* cert_options, int port,
                          const std::string& state, HealthRegistry* health) {
  const std::string node = kubelet_options.node.node_name;
  std::chrono::milliseconds delay{1000};
  const std::chrono::milliseconds max_delay{30000};
  while (!kubelet_) {
    if (WaitForStop(delay)) return false;
    delay = std::min(delay * 2, max_delay);
    if (Status started = StartNodeComponents(kubelet_options, node); !started.ok()) {
      spdlog::warn("kubelet: {}; retrying in {} ms", started.message(), delay.count());
      health->Set("kubelet", false, "waiting for the API server: " + started.message());
      continue;
    }
    spdlog::info("kubelet: node {} registered after retrying", node);
  }
  const std::string running = "node " + node + ", containerd " + containerd_->socket();
  if (cert_options == nullptr) {
    health->Set("kubelet", true, running);
    return true;
  }
  health->Set("kubelet", true, running + " (kubelet API: waiting for its serving certificate)");
  delay = std::chrono::milliseconds(1000);
  auto stopping = [this] {
    std::lock_guard lock(mu_);
    return stopping_;
  };
  while (true) {
    auto files = kubelet::EnsureServingCertFromCluster(*node_client_, *cert_options, stopping);
    Status status = files.ok() ? StartKubeletServer(*files, port, state) : files.status();
    if (status.ok()) {
      spdlog::info(
          "kubelet: serving the kubelet API on port {} with a certificate from the "
          "cluster",
          kubelet_server_->port());
      health->Set("kubelet", true, running);
      return true;
    }
    if (stopping()) return false;
    spdlog::warn("kubelet: serving certificate: {}; retrying in {} ms", status.message(),
                 delay.count());
    health->Set("kubelet", true, running + " (kubelet API: " + status.message() + ")");
    if (WaitForStop(delay)) return false;
    delay = std::min(delay * 2, max_delay);
  }
}

void NodeAgent::StopBootstrap() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (bootstrap_.joinable()) bootstrap_.join();
}

std::string NodeAgent::containerd_socket() const {
  return containerd_ ? containerd_->socket() : std::string();
}

void NodeAgent::Shutdown() {
  StopBootstrap();
  if (kubelet_server_) kubelet_server_->Stop();
  if (streaming_) streaming_->Stop();  // open exec / port-forward sessions end
  if (pod_routes_) pod_routes_->Stop();
  if (kubelet_) kubelet_->Stop(/*stop_pods=*/true);
  if (containerd_) {
    if (Status stopped = containerd_->Stop(); !stopped.ok()) {
      spdlog::warn("stopping containerd: {}", stopped.message());
    }
  }
}

Result<std::unique_ptr<NodeAgent>> NodeAgent::Start(NodeAgentOptions options,
                                                    HealthRegistry* health) {
  std::unique_ptr<NodeAgent> agent(new NodeAgent());
  if (options.proxy) {
    health->Set("proxy", false, "starting");
    proxy::ProxyOptions proxy_options;
    proxy_options.node_name = options.node_name;
    proxy_options.node_ips = options.node_ips;
    proxy_options.rules.chain_prefix = options.proxy_chain_prefix;
    proxy_options.on_sync = [health](bool ok, const std::string& message) {
      health->Set("proxy", ok, message);
    };
    auto started = proxy::KubeProxy::Start(
        proxy_options,
        std::make_shared<client::Client>(options.transport_for("system:kube-proxy")));
    if (!started.ok()) {
      health->Set("proxy", false, started.status().message());
      return started.status();
    }
    agent->proxy_ = std::move(*started);
    health->Set("proxy", false, "waiting for the first sync");
  }
  if (options.kubelet) {
    if (Status status = agent->StartKubelet(options, health); !status.ok()) {
      health->Set("kubelet", false, status.message());
      return Status(status.code(), "kubelet: " + status.message());
    }
  }
  return agent;
}

NodeAgent::~NodeAgent() {
  StopBootstrap();
  if (reserved_kubelet_fd_ >= 0) ::close(reserved_kubelet_fd_);  // the server never started
  if (kubelet_server_) kubelet_server_->Stop();
  if (streaming_) streaming_->Stop();
  kubelet_ptr_ = nullptr;
  pod_routes_.reset();
  kubelet_.reset();     // stops its loops; pods keep running unless Shutdown() ran
  containerd_.reset();  // ends the monitor; containerd keeps running unless stopped
  if (proxy_) proxy_->Stop();
}

int CleanUpProxyRules(const DaemonOptions& options) {
  proxy::RuleOptions rules;
  rules.chain_prefix = options.proxy_chain_prefix.empty()
                           ? DefaultProxyChainPrefix(StatePaths(options.state_dir).state_dir)
                           : options.proxy_chain_prefix;
  if (Status status = proxy::CleanUp(rules, proxy::IptablesPaths{}); !status.ok()) {
    std::fprintf(stderr, "mk8sd: cleaning up kube-proxy rules %s-*: %s\n",
                 rules.chain_prefix.c_str(), status.message().c_str());
    return 1;
  }
  std::printf("removed the kube-proxy rules %s-*\n", rules.chain_prefix.c_str());
  return 0;
}

}  // namespace mk8s::app
