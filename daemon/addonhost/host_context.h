// HostContext: the daemon's side of mk8s_host_api_v1 for one loaded addon (logging, the API
// client as system:addon:<name>, apply/delete of manifests, list+watch subscriptions, listening
// sockets, configuration, HTTP routes and their streams). The C function pointers in api() cast
// the opaque mk8s_host_ctx back to this object.
//
// Threads: every host function is thread-safe and may be called from the addon's host thread or
// from threads the addon owns. Watch events are posted to the addon's AddonThread, so they run
// one at a time with its lifecycle calls. Nothing here throws into the addon.
// Lifetime: owned by LoadedAddon; its address is stable (heap). Close() revokes it (every later
// call fails with MK8S_ERR_UNAVAILABLE) and releases the API client, so it may outlive the API
// server when a hung addon forces the host to leak it.
#pragma once

#include <mk8s/abi.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "addonhost/http_stream.h"

namespace mk8s::client {
class Client;
}

namespace mk8s::addonhost {

class AddonThread;
class HttpRoutes;

// Cluster values every addon sees (mk8s_host_config_v1).
struct HostSettings {
  std::string cluster_domain = "cluster.local";
  std::string service_cidr = "10.152.183.0/24";
  std::string cluster_dns_ip = "10.152.183.10";
  std::vector<std::string> node_ips;
  std::string api_server_url;
  std::string daemon_state_dir;
};

// Makes the API client of one addon (identity system:addon:<name>). May return nullptr (no API,
// as in unit tests): API calls then fail with MK8S_ERR_UNAVAILABLE.
using ClientFactory = std::function<std::shared_ptr<client::Client>(const std::string& addon)>;

class HostContext {
 public:
  HostContext(const HostSettings& settings, ClientFactory make_client,
              std::shared_ptr<AddonThread> thread, std::string label);
  ~HostContext();  // Close()
  HostContext(const HostContext&) = delete;
  HostContext& operator=(const HostContext&) = delete;

  // Owned by this object; valid until it is destroyed.
  const mk8s_host_api_v1* api() const { return &api_; }
  // Names the addon once its manifest is known (before any lifecycle call; the config's
  // addon_name and state_dir are "" during mk8s_addon_init). Not thread-safe with addon calls.
  void SetIdentity(const std::string& name, const std::string& state_dir);
  // Where mk8s_host_serve_http registers routes; unset (the default): the call answers
  // MK8S_ERR_UNAVAILABLE. Set before the first addon call.
  void SetHttpRoutes(std::shared_ptr<HttpRoutes> routes);
  // Drops the addon's HTTP routes, on its AddonThread (inline when called there), so that no
  // handler of it runs once this returns, then ends its open streams (EndStreams). Call before
  // mk8s_on_stop / on_disable / on_unload (the ABI promises this point).
  void StopServingHttp(std::chrono::milliseconds timeout);
  // Ends every open stream of the addon (ABI 1.2): the client gets the terminating chunk after
  // what was queued, and the addon's writes answer MK8S_ERR_CLOSED, a waiting one at once. The
  // handles stay the addon's. Any thread; never calls into the addon.
  void EndStreams();
  // Called (on whatever thread) when an addon callback threw through the ABI.
  void SetFaultHandler(std::function<void(const std::string&)> on_fault);
  // Cancels the watches the addon left open. Safe from any thread but the addon's own.
  void CancelWatches();
  // Ends streams, cancels watches, releases the client, and makes every later host call fail.
  // Idempotent. Stream handles the addon never ended are freed by the destructor (it runs only
  // once the addon is unloaded; a faulted addon's context is leaked instead).
  void Close();

  struct Watch;  // internal: one subscription

 private:
  friend struct HostFunctions;
  std::shared_ptr<client::Client> Client();  // created on first use; nullptr when closed

  mk8s_host_api_v1 api_{};
  mk8s_host_config_v1 config_{};
  // Backing strings of config_ (never reassigned after SetIdentity).
  std::string addon_name_, state_dir_, node_ips_;
  const HostSettings settings_;
  const ClientFactory make_client_;
  const std::shared_ptr<AddonThread> thread_;
  std::string label_;  // for logs: the addon's name, or its file before the manifest is known

  std::mutex mu_;
  bool closed_ = false;                               // GUARDED_BY(mu_)
  std::shared_ptr<client::Client> client_;            // GUARDED_BY(mu_)
  std::set<std::shared_ptr<Watch>> watches_;          // GUARDED_BY(mu_)
  std::function<void(const std::string&)> on_fault_;  // set before the first call
  std::shared_ptr<HttpRoutes> http_routes_;           // set before the first call
  AddonStreams streams_;                              // the addon's HTTP streams (thread-safe)
};

}  // namespace mk8s::addonhost
