// Node lifecycle: watches node Leases and conditions. A node silent for longer than the grace
// period turns Ready=Unknown and gets the node.kubernetes.io/unreachable taints (NoSchedule and
// NoExecute); a node whose kubelet reports Ready=False gets node.kubernetes.io/not-ready (both
// effects). Pods on a node with either NoExecute taint that do not tolerate it are evicted once
// their tolerationSeconds (counted from the taint's timeAdded) run out, so their ReplicaSets
// replace them elsewhere. The MemoryPressure, DiskPressure, PIDPressure and NetworkUnavailable
// conditions and spec.unschedulable (kubectl cordon) become NoSchedule taints
// (node.kubernetes.io/memory-pressure, ..., node.kubernetes.io/unschedulable), as upstream's
// TaintNodesByCondition does. Each taint goes away when its cause does; taints with other keys
// are never touched.
//
// Time: "now" is WallNow() and the periodic re-check of every node (node_monitor_period) is a
// timer on the controller's clock, so a test drives both with FakeClock::Advance().
#pragma once

#include <memory>
#include <mutex>

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
  // Arms the periodic tick (every node_monitor_period on clock()): enqueue every node.
  // No-op once stopping.
  void ScheduleMonitor();
  void ArmMonitorLocked();  // REQUIRES(monitor_->mu)
  // Deletes the node's pods that do not tolerate the NoExecute taint `taint_key` added at
  // `taint_time` (RFC 3339) for long enough; requeues the node for the next deadline.
  Status EvictPods(const nlohmann::json& node, const std::string& taint_key,
                   const std::string& taint_time);

  client::Informer* nodes_ = nullptr;
  client::Informer* leases_ = nullptr;
  client::Informer* pods_ = nullptr;
  EventRecorder events_;
  // Shared with the pending timer's callback, which may run (on the clock's timer thread) while
  // the destructor runs: the callback only touches `this` under `mu` with `stopping` false, and
  // the destructor sets `stopping` under `mu` before anything is destroyed.
  struct MonitorState {
    std::mutex mu;
    bool stopping = false;  // GUARDED_BY(mu)
    uint64_t timer = 0;     // GUARDED_BY(mu): the pending tick's id on clock()
  };
  const std::shared_ptr<MonitorState> monitor_ = std::make_shared<MonitorState>();
};

}  // namespace mk8s::controllers
