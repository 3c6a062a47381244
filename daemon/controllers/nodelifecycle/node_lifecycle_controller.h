// Node lifecycle: watches node Leases and Ready conditions. A node silent for longer than the
// grace period turns Ready=Unknown and gets the node.kubernetes.io/unreachable taints (NoSchedule
// and NoExecute); pods on it that do not tolerate NoExecute are evicted once their
// tolerationSeconds (counted from the taint's timeAdded) run out, so their ReplicaSets replace them
// elsewhere. A node that reports again loses the taints.
#pragma once

#include <thread>

#include "controllers/common/event_recorder.h"
#include "controllers/controller.h"

namespace mk8s::controllers {

class NodeLifecycleController final : public Controller {
 public:
  explicit NodeLifecycleController(const ControllerContext& context);
  ~NodeLifecycleController() override;
  void Setup() override;

 protected:
  Status Reconcile(const std::string& key) override;

 private:
  void Monitor();  // periodic: enqueue every node
  Status EvictPods(const nlohmann::json& node, const std::string& taint_time);

  client::Informer* nodes_ = nullptr;
  client::Informer* leases_ = nullptr;
  client::Informer* pods_ = nullptr;
  EventRecorder events_;
  std::thread monitor_;
  std::mutex monitor_mu_;
  std::condition_variable monitor_cv_;
  bool stopping_ = false;  // GUARDED_BY(monitor_mu_)
};

}  // namespace mk8s::controllers
