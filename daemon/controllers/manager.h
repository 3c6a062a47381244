// The controller manager: builds the enabled controllers from a typed factory registry, starts
// the shared informers, waits for them to sync, and runs every controller's workers.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "controllers/controller.h"

namespace mk8s::controllers {

using ControllerFactory = std::function<std::unique_ptr<Controller>(const ControllerContext&)>;

// Name -> factory. Builtin() holds mk8s's controllers; tests may build their own registry.
class ControllerRegistry {
 public:
  static const ControllerRegistry& Builtin();
  void Register(std::string name, ControllerFactory factory);
  std::vector<std::string> Names() const;
  const ControllerFactory* Find(const std::string& name) const;

 private:
  std::map<std::string, ControllerFactory> factories_;
};

struct ControllerManagerOptions {
  std::vector<std::string> enabled;  // empty = every registered controller
  int workers_per_controller = 2;
  std::chrono::milliseconds sync_timeout{std::chrono::seconds(30)};
  std::chrono::milliseconds node_monitor_grace_period{std::chrono::seconds(50)};
  // Pod GC (see ControllerContext): terminated pods kept; <= 0 = never delete them.
  int64_t terminated_pod_gc_threshold = 12500;
  // How long a pod's node must stay missing before the pod GC deletes the pod.
  std::chrono::milliseconds pod_gc_quarantine{std::chrono::seconds(40)};
  // The controllers' time seam (not owned; must outlive the manager). nullptr = the real clock.
  client::Clock* clock = nullptr;
  // Informers shared with other components of the process (not owned; must outlive the
  // manager). nullptr = the manager owns its own. Shared informers keep running after Stop();
  // the manager removes exactly the handlers its controllers added.
  client::SharedInformerFactory* shared_informers = nullptr;
  // The cluster CA's files for the csr-signing controller (upstream's --cluster-signing-*-file);
  // empty: approved CSRs stay unsigned (a controller manager without the CA key).
  std::string cluster_signing_cert_file;
  std::string cluster_signing_key_file;
};

class ControllerManager {
 public:
  // `client` is shared with the informers; `registry` must outlive the manager.
  static Result<std::unique_ptr<ControllerManager>> Start(
      const ControllerManagerOptions& options, std::shared_ptr<client::Client> client,
      std::string cluster_ca_pem,
      const ControllerRegistry& registry = ControllerRegistry::Builtin());
  ~ControllerManager();  // Stop()
  // Stops the workers, then the informers. Idempotent.
  void Stop();
  std::vector<std::string> running() const;

 private:
  ControllerManager() = default;
  std::unique_ptr<client::SharedInformerFactory> owned_informers_;
  client::SharedInformerFactory* informers_ = nullptr;  // owned_informers_ or the shared one
  std::vector<std::pair<client::Informer*, uint64_t>> handlers_;  // added on shared informers
  std::vector<std::unique_ptr<Controller>> controllers_;
  bool stopped_ = false;
};

}  // namespace mk8s::controllers
