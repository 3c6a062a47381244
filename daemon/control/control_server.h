// The daemon's gRPC control service (proto/mk8s/v1/control.proto) on a unix socket.
//
// Serves `mk8s.v1.Control` (status, version, stop, backup/restore, kubeconfig) and `mk8s.v1.KV`
// (the datastore, for `mk8s dbctl`). gRPC headers stay in the .cc files.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "common/status.h"

namespace mk8s {
class HealthRegistry;
namespace store {
class Store;
}
namespace addonhost {
class AddonHost;
}
}  // namespace mk8s

namespace mk8s::control {

// What the control service needs from the daemon. Pointers are not owned and must outlive the
// server.
struct ControlContext {
  store::Store* store = nullptr;
  HealthRegistry* health = nullptr;
  // Asks the daemon to shut down. Called on a gRPC thread after the Stop reply is queued; must
  // not block (the daemon's main thread does the shutdown).
  std::function<void()> request_stop;
  std::string state_dir;
  std::string datastore_path;
  std::string kubeconfig_path;
  // Addons; nullptr when this daemon has no addon host (the addon RPCs then fail).
  addonhost::AddonHost* addons = nullptr;
  // The node's containerd socket (runtime::Containerd::socket()), for `mk8s images`; "" when this
  // daemon runs no container runtime (the image RPCs then fail with FAILED_PRECONDITION).
  std::string containerd_socket;
  std::chrono::steady_clock::time_point started_at = std::chrono::steady_clock::now();
};

class ControlServer {
 public:
  // Binds unix:`socket_path` (replacing a stale socket file), sets mode 0660 and starts serving.
  static Result<std::unique_ptr<ControlServer>> Start(const std::string& socket_path,
                                                      ControlContext context);
  virtual ~ControlServer() = default;
  // Ends open streams, waits for running handlers, removes the socket file. Idempotent.
  virtual void Shutdown() = 0;
};

}  // namespace mk8s::control
