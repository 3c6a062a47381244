// NodeAgent: the per-node components of mk8sd that are API clients acting for this node:
// kube-proxy (daemon/proxy, identity system:kube-proxy) and the kubelet (daemon/kubelet,
// identity system:node:<name>) with its bundled containerd (daemon/runtime) under
// <state>/containerd, CNI config in <state>/cni/net.d, host-local IPAM data in <state>/cni/ipam.
//
// Start() returns once each enabled component has started (kube-proxy then syncs on its own
// thread). The kubelet's first registration is tried at once; when the API server is not
// reachable yet (or refuses the node's credential) a bootstrap thread retries it with back-off
// instead of failing the daemon. A worker (no cluster CA key in the state folder) gets its
// kubelet serving certificate from the cluster through a CSR (kubelet/serving_cert.h) on that
// thread, and serves the kubelet API once it is issued. Shutdown() is the `mk8s stop` path: every
// pod is stopped, then containerd. Destruction without Shutdown() (and a crash) leaves containerd
// and the pods running, for the next start to adopt. Destruction must happen while the transports'
// server is still up. Health is reported as "proxy" (ready after each successful sync,
// not ready after a failed one) and "kubelet". With the kubelet, PodRoutes keeps a route to each
// other node's podCIDR via its InternalIP (host-gw), so pods reach pods on every node.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "app/options.h"
#include "common/health.h"
#include "common/status.h"
#include "kubelet/image_gc.h"

namespace mk8s::client {
class Client;
class Transport;
}  // namespace mk8s::client
namespace mk8s::proxy {
class KubeProxy;
}  // namespace mk8s::proxy
namespace mk8s::pki {
struct CertFiles;
}  // namespace mk8s::pki
namespace mk8s::kubelet {
class Kubelet;
struct KubeletOptions;
struct ServingCertBootstrapOptions;
class KubeletServer;
class PodRoutes;
class StreamingService;
}  // namespace mk8s::kubelet
namespace mk8s::runtime {
class Containerd;
class CriClient;
}  // namespace mk8s::runtime

namespace mk8s::app {

struct NodeAgentOptions {
  bool proxy = false;
  std::string node_name;
  std::vector<std::string> node_ips;
  std::string proxy_chain_prefix;
  bool kubelet = false;
  std::string state_dir;
  int kubelet_port = 10250;
  // How often the kubelet's serving certificate is checked, and renewed when due.
  std::chrono::milliseconds certificate_check_interval{std::chrono::hours(1)};
  std::vector<std::pair<std::string, std::string>> extended_resources;  // nvidia.com/gpu=1
  std::vector<kubelet::EvictionThreshold> eviction_hard;  // the pressure conditions' thresholds
  std::vector<kubelet::EvictionThreshold> eviction_soft;  // with their grace periods
  int64_t eviction_max_pod_grace_seconds = 0;             // caps pods' grace on soft evictions
  kubelet::ImageGcOptions image_gc;  // imagefs_dir and protected_refs are filled by the agent
  std::map<std::string, std::string> registry_mirrors;  // host -> URL, for containerd's certs.d
  // The cluster CA (PEM) from the kubeconfig: on a worker it verifies the serving certificate
  // the cluster issues and the API server's kubelet-client certificate.
  std::string cluster_ca_pem;
  // A transport acting as `user` (system:kube-proxy).
  std::function<std::shared_ptr<client::Transport>(const std::string& user)> transport_for;
};

class NodeAgent {
 public:
  static Result<std::unique_ptr<NodeAgent>> Start(NodeAgentOptions options, HealthRegistry* health);
  ~NodeAgent();
  // Stops every pod and then containerd (mk8sd is stopping for good). Idempotent.
  void Shutdown();
  // The bundled containerd's socket ("" without the kubelet), for `mk8s images`.
  std::string containerd_socket() const;

 private:
  NodeAgent() = default;
  Status StartKubelet(const NodeAgentOptions& options, HealthRegistry* health);
  // Kubelet::Start (registration) + PodRoutes; sets kubelet_ and pod_routes_ on success.
  Status StartNodeComponents(const kubelet::KubeletOptions& kubelet_options,
                             const std::string& node_name);
  Status StartKubeletServer(const pki::CertFiles& files, int port, const std::string& state);
  // The bootstrap thread: retries registration with back-off (1 s doubling to 30 s), then,
  // with `cert_options` (a worker), obtains the serving certificate and starts the server.
  // False when it ended because the agent is stopping.
  bool Bootstrap(kubelet::KubeletOptions kubelet_options,
                 const kubelet::ServingCertBootstrapOptions* cert_options, int port,
                 const std::string& state, HealthRegistry* health);
  // On the bootstrap thread once the kubelet server runs, until Shutdown: every `interval`,
  // renews the serving certificate when due (from the local CA, or with `cert_options` from
  // the cluster through a CSR) and serves the new one without dropping open connections.
  void KeepServingCertFresh(const kubelet::ServingCertBootstrapOptions* cert_options,
                            std::chrono::milliseconds interval);
  bool WaitForStop(std::chrono::milliseconds delay);  // true when stopping
  void StopBootstrap();                               // wakes and joins the bootstrap thread
  std::unique_ptr<proxy::KubeProxy> proxy_;
  std::unique_ptr<runtime::Containerd> containerd_;
  std::shared_ptr<runtime::CriClient> cri_;
  // exec / attach / port-forward behind the kubelet server; declared after cri_ (it uses it).
  std::unique_ptr<kubelet::StreamingService> streaming_;
  std::unique_ptr<kubelet::KubeletServer> kubelet_server_;  // :10250 (logs, exec, port-forward)
  std::unique_ptr<kubelet::Kubelet> kubelet_;
  // host-gw routes to the other nodes' pod CIDRs (with the kubelet).
  std::unique_ptr<kubelet::PodRoutes> pod_routes_;
  std::atomic<kubelet::Kubelet*> kubelet_ptr_{nullptr};  // for the server's threads
  std::shared_ptr<client::Client> node_client_;          // acting as system:node:<name>
  std::string credentials_dir_;   // with ca.key: the kubelet's certificate is issued locally
  std::string node_name_;
  std::vector<std::string> node_ips_;
  std::string served_cert_pem_;  // what kubelet_server_ presents; bootstrap thread (or Start)
  // A worker's kubelet port when --kubelet-port 0, bound and listening from StartKubelet until
  // the server takes it (StartKubeletServer, on the bootstrap thread); -1 otherwise. Closed by
  // the destructor after StopBootstrap when the server never started.
  int reserved_kubelet_fd_ = -1;
  // The bootstrap thread writes kubelet_, pod_routes_, kubelet_server_ and streaming_ while it
  // runs, then stays to renew the serving certificate (KeepServingCertFresh, which alone uses
  // served_cert_pem_ from then on); everything else reads them only after StopBootstrap()
  // joined it. On a control-plane node whose first registration worked it only renews.
  std::thread bootstrap_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;  // GUARDED_BY(mu_)
};

// "mk8s" + 4 hex digits of the state folder's hash: this daemon's Linux bridge for pods.
std::string DefaultBridgeName(const std::string& state_dir);
// The node agent's part of the daemon's options, with defaults filled in: the host name, the
// first non-loopback IPv4 address, DefaultProxyChainPrefix(state_dir). No transport yet.
NodeAgentOptions NodeAgentOptionsFor(const DaemonOptions& options, const std::string& state_dir);

// "MK8S-" + 5 hex digits of the state folder's hash: unique per daemon, stable across restarts.
std::string DefaultProxyChainPrefix(const std::string& state_dir);

}  // namespace mk8s::app
