// PodRoutes: host-gw routing between nodes. For every other node with a spec.podCIDR inside the
// cluster pod range (10.1.0.0/16) and an InternalIP, keeps the route
// `<podCIDR> via <InternalIP>` in this network namespace, following the Node objects (an
// informer): added or replaced when a node appears or changes, deleted when it goes away.
//
// The pure part (DesiredPodRoutes, DiffPodRoutes, ParseRouteTable) is separate from the runner
// so it can be unit-tested. The routes are changed with `ip route replace|del` through
// `run` (argv, never a shell). Failures are logged and retried every few seconds.
//
// Threads: one worker thread applies changes; informer handlers only mark the state dirty.
// Start()/Stop() from one thread. Routes stay in place when stopped (like kube-proxy's rules).
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"

namespace mk8s::client {
class Client;
class Informer;
}  // namespace mk8s::client

namespace mk8s::kubelet {

// Destination CIDR -> gateway address.
using RouteTable = std::map<std::string, std::string>;

// True if `cidr` is an IPv4 a.b.c.d/n subnet of 10.1.0.0/16 (n in 16..32).
bool InClusterPodRange(const std::string& cidr);

// The routes wanted from the Node objects: one per node other than `self` with a valid
// spec.podCIDR in the pod range and a status address of type InternalIP (IPv4).
RouteTable DesiredPodRoutes(const std::vector<nlohmann::json>& nodes, const std::string& self);

struct RouteDiff {
  RouteTable replace;               // missing or with another gateway
  std::vector<std::string> remove;  // destinations no longer wanted
};
RouteDiff DiffPodRoutes(const RouteTable& current, const RouteTable& desired);

// `ip -4 route show` output -> the routes in the pod range that have a gateway ("via").
RouteTable ParseRouteTable(const std::string& ip_route_output);

struct CommandOutput {
  int exit_code = -1;
  std::string out;
  std::string err;
};
using CommandRunner = std::function<Result<CommandOutput>(const std::vector<std::string>& argv)>;

struct PodRoutesOptions {
  std::string node_name;  // our node: never routed
  std::string ip = "ip";  // the iproute2 binary
  CommandRunner run;
  std::chrono::milliseconds retry{3000};
};

class PodRoutes {
 public:
  static Result<std::unique_ptr<PodRoutes>> Start(PodRoutesOptions options,
                                                  std::shared_ptr<client::Client> client);
  ~PodRoutes();  // Stop()
  void Stop();   // idempotent

  // The routes this component believes are installed (tests, status).
  RouteTable Applied() const;

 private:
  PodRoutes() = default;
  void Run();
  // One pass: reads the node cache, applies the difference. False if something failed.
  bool SyncOnce();

  PodRoutesOptions options_;
  std::unique_ptr<client::Informer> nodes_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool dirty_ = true;
  bool stopping_ = false;
  RouteTable applied_;  // guarded by mu_
  std::thread worker_;
};

}  // namespace mk8s::kubelet
