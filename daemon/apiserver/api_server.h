// The Kubernetes API server inside mk8sd: HTTPS on :16443, authentication, discovery, OpenAPI,
// and REST storage for every served resource. It is the only component that touches the store.
// Heavy headers stay in the .cc files.
#pragma once

#include <chrono>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "apiserver/http/http_types.h"
#include "common/status.h"

namespace mk8s::store {
class Store;
}

namespace mk8s::apiserver {

struct ApiServerOptions {
  std::string bind_address = "0.0.0.0";
  uint16_t port = 16443;            // 0 = any free port
  std::string credentials_dir;      // PKI and tokens; created on first start
  std::string kubeconfig_path;      // the admin kubeconfig written at start
  std::vector<std::string> node_ips;  // SANs and the `kubernetes` Endpoints
  std::string service_cidr = "10.152.183.0/24";
  int threads = 2;
  // The watch cache's event history (watches resume from it; older resourceVersions get 410).
  size_t watch_history_capacity = 10000;
  size_t watch_history_min_events = 1000;
  std::chrono::milliseconds watch_history_window{75000};
  // How often RefreshCertificates() runs on its own (on the timer thread).
  std::chrono::milliseconds certificate_check_interval{std::chrono::hours(1)};
};

class ApiServer {
 public:
  // `store` is not owned and must outlive the server.
  static Result<std::unique_ptr<ApiServer>> Start(const ApiServerOptions& options,
                                                  store::Store* store);
  virtual ~ApiServer() = default;
  virtual uint16_t port() const = 0;

  // Serves requests in-process as `user` (in `groups`), through the same pipeline as HTTPS
  // requests (authentication as that identity, admission, validation), skipping TCP and TLS.
  // Components inside mk8sd use it as their API transport. The handler may be called from any
  // thread until Stop(); it must not be called after the server is destroyed.
  virtual http::Handler InProcessHandler(std::string user, std::vector<std::string> groups) = 0;
  // Extra routes outside the Kubernetes API: every request whose path starts with `prefix`
  // (e.g. "/addons/") goes, once authenticated (anonymous ones get 401), to `handler` with the
  // user's name. The addons' HTTP routes use it. Thread-safe; `handler` may be called from any
  // transport thread until Stop() and must not block.
  using ExtensionHandler =
      std::function<void(const http::Request& request, const std::string& user,
                         std::shared_ptr<http::Responder> responder)>;
  virtual void SetExtension(std::string prefix, ExtensionHandler handler) = 0;
  // Renews what is due in the credentials folder (ClusterPki::LoadOrCreate: certificates in
  // their last 30 days or missing a SAN; the kubelet-client certificate likewise) and puts the
  // renewed ones to use without a restart: the serving certificate from the next handshake on,
  // the kubelet-client certificate from the next connection to a kubelet, and the admin
  // kubeconfig rewritten. Never creates a cluster CA: a missing or changed CA is an error.
  // Returns what it renewed ("" when nothing was due). One caller at a time.
  virtual Result<std::string> RefreshCertificates() = 0;
  // Stops serving: closes connections and watches. Idempotent.
  virtual void Stop() = 0;
};

// The host's IPv4 addresses other than loopback, in interface order (127.0.0.1 if none).
std::vector<std::string> DetectNodeIps();

}  // namespace mk8s::apiserver
