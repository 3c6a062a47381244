// SchedulerService: kube-scheduler as a client of the API server. Informers on pods, nodes and
// namespaces keep the SchedulerCache and the SchedulingQueue current; one scheduling thread pops
// a pod, runs the algorithm (Scheduler::ScheduleAndAssume) and binds it through pods/binding
// asynchronously, so the next pod is scheduled while the binding is in flight (the assumed pod
// already counts against its node). A pod that fits nowhere gets a FailedScheduling event with
// upstream's message and the condition PodScheduled=False/Unschedulable, and waits in the queue
// for a cluster change.
//
// Informers: its own factory, or one shared with the controller manager (one cache of pods per
// process); on a shared one, Stop() removes exactly the handlers it added.
//
// Leadership: the informers and the cache run from Start(); the scheduling thread only pops pods
// while SetLeading(true), so a standby scheduler has a warm cache and takes over at once.
//
// Threads: the informers' dispatch threads call the handlers (cache/queue updates only); one
// scheduling thread; `binder_threads` threads send the bindings (an in-process transport runs
// the API server's side of a request on the caller's thread, so binding there would stall
// scheduling); binding replies arrive on the transport's callback thread. Stop() joins
// everything; the client and its transport must outlive the service.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "scheduler/registry.h"
#include "scheduler/scheduler.h"

namespace mk8s::client {
class Client;
class Informer;
class EventRecorder;
class SharedInformerFactory;
}  // namespace mk8s::client

namespace mk8s::scheduler {

class SchedulerCache;
class SchedulingQueue;

struct SchedulerServiceOptions {
  // Pods whose spec.schedulerName is this (or empty) are ours.
  std::string scheduler_name = "default-scheduler";
  Profile profile = Profile::Default();
  SchedulerOptions algorithm;
  // Bindings in flight at once; the scheduling thread waits when this many are outstanding.
  int max_inflight_bindings = 256;
  int binder_threads = 2;
  // "Scheduled" events are rate-limited (token bucket) so a burst of thousands of pods does not
  // double the API writes; FailedScheduling events are always written.
  double scheduled_events_per_second = 50;
  int scheduled_events_burst = 100;
  std::chrono::milliseconds sync_timeout{std::chrono::seconds(60)};
  // Informers shared with other components (not owned; must outlive the service). nullptr =
  // the service owns its own over its client.
  client::SharedInformerFactory* shared_informers = nullptr;
  std::chrono::milliseconds initial_backoff{1000};
  std::chrono::milliseconds max_backoff{10000};
};

struct SchedulerStats {
  uint64_t attempts = 0;
  uint64_t scheduled = 0;        // bindings acknowledged
  uint64_t unschedulable = 0;    // attempts that fit nowhere
  uint64_t binding_errors = 0;
};

class SchedulerService {
 public:
  // Builds the algorithm, starts the informers (its own factory over `client`) and waits for
  // them to sync. Scheduling begins with SetLeading(true).
  static Result<std::unique_ptr<SchedulerService>> Start(SchedulerServiceOptions options,
                                                         std::shared_ptr<client::Client> client);
  ~SchedulerService();  // Stop()
  // Idempotent. Waits for in-flight bindings' replies (bounded by the transport's timeouts).
  void Stop();
  void SetLeading(bool leading);

  SchedulerStats stats() const;
  size_t pending_pods() const;

 private:
  explicit SchedulerService(SchedulerServiceOptions options);
  void SetUpHandlers();
  void Loop();
  void ScheduleOne();
  // Queues the binding for a binder thread.
  void Bind(const std::string& uid, std::shared_ptr<const nlohmann::json> pod,
            const std::string& node, int attempts);
  void BinderLoop();
  void SendBinding(const std::string& uid, std::shared_ptr<const nlohmann::json> pod,
                   const std::string& node, int attempts);
  // FailedScheduling event and PodScheduled=False. `nomination` also writes
  // status.nominatedNodeName: a node the pod preempted on, or "" to clear an earlier one
  // (upstream's override); nullopt leaves it as it is.
  void RecordFailure(const nlohmann::json& pod, const std::string& message,
                     const std::optional<std::string>& nomination = std::nullopt);
  // Clears status.nominatedNodeName of a pod whose nomination the cache dropped (asynchronous).
  void ClearNominationInApi(const PodInfo& pod);
  // Preemption's side effects: the pod is nominated to the node (in the cache at once, in the
  // API through RecordFailure), lower-priority pods nominated there lose their nomination (the
  // room is the preemptor's now) and each victim gets the DisruptionTarget condition, a Preempted
  // event and a graceful delete (asynchronous; a victim already gone is fine).
  void EvictVictims(const nlohmann::json& preemptor, const PreemptionResult& preemption);
  // The PodDisruptionBudgets preemption weighs (from the informer's cache).
  std::vector<DisruptionBudget> Budgets() const;
  bool TakeScheduledEventToken();

  const SchedulerServiceOptions options_;
  std::shared_ptr<client::Client> client_;
  std::unique_ptr<client::SharedInformerFactory> owned_informers_;
  client::SharedInformerFactory* informers_ = nullptr;  // owned_informers_ or the shared one
  std::vector<std::pair<client::Informer*, uint64_t>> handlers_;  // ours, on shared informers
  client::Informer* budgets_ = nullptr;  // PodDisruptionBudgets, read when preempting
  std::unique_ptr<client::EventRecorder> events_;
  std::unique_ptr<SchedulerCache> cache_;
  std::unique_ptr<SchedulingQueue> queue_;
  std::unique_ptr<Scheduler> scheduler_;

  std::mutex mu_;  // guards the fields below
  std::condition_variable cv_;
  bool leading_ = false;
  bool stopping_ = false;
  int inflight_bindings_ = 0;  // queued for a binder or awaiting the reply
  std::deque<std::function<void()>> bindings_;  // queued for a binder
  double event_tokens_ = 0;
  std::chrono::steady_clock::time_point event_tokens_at_;

  std::atomic<uint64_t> attempts_{0}, scheduled_{0}, unschedulable_{0}, binding_errors_{0};
  std::thread thread_;
  std::vector<std::thread> binders_;
  bool stopped_ = false;  // Stop() ran (owner's thread only)
};

}  // namespace mk8s::scheduler
