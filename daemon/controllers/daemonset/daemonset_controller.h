// DaemonSet (apps/v1): one pod per eligible node (node_eligibility.h: nodeName, nodeSelector,
// required node affinity, taints against the template's tolerations plus the default daemon
// tolerations). Pods are pinned with node affinity matchFields metadata.name=<node>, as upstream
// does, and the scheduler binds them.
//
//  - A node that stops being eligible loses its pod (NoSchedule taints let a running pod stay);
//    duplicates on a node are deleted (the oldest stays); failed pods are deleted and replaced
//    after a backoff (1 s doubling to 15 min per node; event FailedDaemonPod); pods pinned to
//    nodes that no longer exist are deleted.
//  - Updates: RollingUpdate with maxUnavailable (delete old, then create new) or maxSurge
//    (create new beside old, delete old once the new one is available); OnDelete replaces only
//    pods someone deleted. Pods carry controller-revision-hash and pod-template-generation;
//    history is kept as ControllerRevisions (history.h).
//  - Status: desired/current/updated NumberScheduled, numberReady, numberAvailable,
//    numberUnavailable, numberMisscheduled, observedGeneration.
//  - Events: SuccessfulCreate, SuccessfulDelete, FailedCreate, FailedDaemonPod.
//
// Threads: workers run Reconcile; informer handlers enqueue (and drop the backoff of deleted
// DaemonSets and nodes). The failed-pod backoff map is guarded by mu_.
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "controllers/common/event_recorder.h"
#include "controllers/common/expectations.h"
#include "controllers/controller.h"

namespace mk8s::controllers {

class DaemonSetController final : public Controller {
 public:
  explicit DaemonSetController(const ControllerContext& context);
  void Setup() override;

 protected:
  Status Reconcile(const std::string& key) override;

 private:
  struct Plan {
    std::vector<std::string> create_on;         // node names
    std::vector<client::ObjectPtr> delete_pods;
  };
  using NodePods = std::map<std::string, std::vector<client::ObjectPtr>>;

  void EnqueueAll();
  // Drops failed-pod backoff entries ("<ds key>/<node>") starting with `ds_prefix` and ending
  // with `node_suffix` (either may be empty). Takes mu_.
  void ForgetBackoff(const std::string& ds_prefix, const std::string& node_suffix);
  // What the node set demands: missing pods, extra or failed pods, misplaced pods.
  Plan Manage(const nlohmann::json& ds, const std::string& hash, const NodePods& by_node,
              std::chrono::milliseconds* wake_after);
  // Which old pods to replace now under the RollingUpdate limits.
  Plan RollingUpdate(const nlohmann::json& ds, const std::string& hash, const NodePods& by_node);
  Status Execute(const nlohmann::json& ds, const std::string& hash, const Plan& plan);
  Status UpdateStatus(const nlohmann::json& ds, const std::string& hash, const NodePods& by_node);

  client::Informer* daemonsets_ = nullptr;
  client::Informer* pods_ = nullptr;
  client::Informer* nodes_ = nullptr;
  client::Informer* revisions_ = nullptr;
  Expectations expectations_;
  EventRecorder events_;

  struct Backoff {
    std::chrono::milliseconds delay{0};
    client::Clock::TimePoint until;
  };
  std::mutex mu_;
  std::map<std::string, Backoff> failed_backoff_;  // "<ds key>/<node>". GUARDED_BY(mu_)
};

}  // namespace mk8s::controllers
