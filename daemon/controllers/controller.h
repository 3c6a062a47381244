// The controller pattern (upstream sample-controller): informer handlers queue keys, workers take
// a key at a time and run an idempotent Reconcile(key) that re-reads the informer caches and moves
// the cluster toward the desired state through the API server. A failed reconcile is requeued with
// per-key exponential backoff; a successful one forgets the key's backoff.
//
// Threads: `workers` threads per controller run Reconcile; one key is never reconciled by two
// workers at once (WorkQueue guarantees it). Informer handlers only Enqueue.
#pragma once

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "client/shared_informer_factory.h"
#include "client/workqueue.h"
#include "common/status.h"

namespace mk8s::controllers {

// What every controller gets from the manager. Pointers are not owned and outlive controllers.
struct ControllerContext {
  std::shared_ptr<client::Client> client;
  client::SharedInformerFactory* informers = nullptr;
  client::Clock* clock = nullptr;      // nullptr = the real clock
  std::string cluster_ca_pem;          // for the root CA publisher
  // The CA that signs approved kubelet-serving CSRs (csr-signing); empty: nothing is signed.
  std::string cluster_signing_cert_file;
  std::string cluster_signing_key_file;
  // Node lifecycle: a node whose kubelet has not renewed its Lease (or posted status) for this
  // long turns Unknown and is tainted unreachable (Kubernetes 1.32 default: 50 s).
  std::chrono::milliseconds node_monitor_grace_period{std::chrono::seconds(50)};
  std::chrono::milliseconds node_monitor_period{std::chrono::seconds(5)};
  // Pod GC: how many terminated (Succeeded/Failed) pods may exist before the oldest are deleted
  // (<= 0: never; upstream --terminated-pod-gc-threshold, default 12500), how often it sweeps,
  // and how long a pod's missing node must stay missing before the pod is deleted.
  int64_t terminated_pod_gc_threshold = 12500;
  std::chrono::milliseconds pod_gc_period{std::chrono::seconds(20)};
  std::chrono::milliseconds pod_gc_quarantine{std::chrono::seconds(40)};
};

class Controller {
 public:
  Controller(std::string name, const ControllerContext& context);
  virtual ~Controller();

  const std::string& name() const { return name_; }
  // Called once before the informers start: take informers and add handlers.
  virtual void Setup() = 0;
  // Starts `workers` threads. Call after the informers synced.
  void Run(int workers);
  // Shuts the queue down and joins the workers. Idempotent.
  void Stop();

  void Enqueue(const std::string& key) { queue_.Add(key); }
  void EnqueueObject(const client::ObjectPtr& object);
  // Queues `key` after `delay`. Called from this controller's Reconcile, the delay counts from
  // the moment that reconcile started, not from the call: a reconcile computes its delays from
  // the time it read at its start (e.g. "next run - now"), and the clock may have moved on since
  // (a FakeClock's Advance(), or a slow reconcile), which would make the wake-up late by that
  // much. Counted from the start it is at worst early, and an early reconcile just finds nothing
  // due yet and asks again. From any other thread it counts from the call.
  void EnqueueAfter(const std::string& key, std::chrono::milliseconds delay);

  // Wall-clock time through the clock seam, for times written to or compared with API objects
  // (Lease renewTime, condition and taint times). With the real clock (context.clock null or a
  // RealClock) it is system_clock::now(). With any other clock (a FakeClock in tests) it is the
  // system time when this controller was built plus how far that clock has moved since, so a
  // test's Advance() moves it and nothing else does. Thread-safe.
  std::chrono::system_clock::time_point WallNow() const;
  // The clock the work queue and periodic timers run on (never null).
  client::Clock* clock() const { return clock_; }

 protected:
  // Brings the object behind `key` to its desired state. Returning an error requeues the key with
  // backoff. Must be idempotent and must not mutate cached objects.
  virtual Status Reconcile(const std::string& key) = 0;

  const ControllerContext context_;
  client::Client& api() { return *context_.client; }

 private:
  void Work();

  const std::string name_;
  client::Clock* const clock_;                                 // context.clock or RealClock
  const bool real_clock_;                                      // clock_ is a RealClock
  const std::chrono::system_clock::time_point wall_anchor_;    // system time at construction
  const client::Clock::TimePoint clock_anchor_;                // clock_->Now() at construction
  client::WorkQueue queue_;
  std::vector<std::thread> workers_;
  std::atomic<bool> stopped_{false};
};

}  // namespace mk8s::controllers
