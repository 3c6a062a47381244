// ControllerTest: the gtest fixture for unit tests of controllers (daemon/controllers/<name>/)
// against a real API server running in this process. Use it for every controller test.
//
// What each test gets (TEST_F(ControllerTest-derived, ...)):
//  - A fresh API server and store: SetUp() opens a SQLite store in a temp folder and starts
//    apiserver::ApiServer on 127.0.0.1 (port 0, or $MK8S_APISERVER_PORT). The PKI (CA, serving
//    certs) is generated once per test binary and reused, so a server costs only milliseconds.
//    Nothing leaks from one test to the next: no shared nodes, namespaces or leftovers.
//  - ns(): a namespace made for the test (named after it). Namespaced helpers default to it.
//  - api(): a client acting as "system:admin" (the test's own identity: the test plays users,
//    kubelets and kubectl). The controllers get another client, as system:kube-controller-manager.
//  - clock(): a client::FakeClock. Controllers get it as ControllerContext::clock, so their work
//    queue delays (EnqueueAfter, rate-limited retries), periodic timers and WallNow() move only
//    when the test calls Advance(). Nothing else moves fake time.
//  - context(): the ControllerContext the next StartController() uses; tweak it first if needed.
//    Defaults: node_monitor_grace_period 10 s, node_monitor_period 2 s, the server's cluster CA
//    (also as the csr-signing CA files).
//
// Starting controllers:
//  - StartController("replicaset") builds ONE controller from ControllerRegistry::Builtin(),
//    StartController(factory) one from any ControllerFactory (e.g. a NodeIpamController on a small
//    CIDR). StartControllers({"deployment", "replicaset"}) starts several on one informer factory.
//    Each call runs Setup(), starts the (new) informers, waits for their sync and Run(workers).
//    Call it more than once to add controllers. StopControllers() stops and destroys them all
//    with their informers (a "restart"): controllers started after it get fresh informers.
//  - TearDown() stops the controllers, then the informers, the transports, the server and the
//    store, in that order, and removes the temp folder.
//
// Waiting (never sleep blindly):
//  - WaitFor(predicate, timeout, what) polls the predicate every few ms until it holds or the
//    (real-time) timeout passes; it returns an AssertionResult, so write
//    ASSERT_TRUE(WaitFor([&] { ... }, 10s, "3 pods")). The predicate may call the API helpers.
//  - Advance(d) moves the fake clock by d; due timers run on this thread before it returns (the
//    work they queue is processed by controller workers right after: WaitFor the outcome).
//  - AdvanceUntil(predicate, step, max_advance, what) alternates Advance(step) with a short
//    WaitFor, for outcomes that need fake time to pass in steps (a controller that rechecks after
//    500 ms, a retry after an error, a backoff).
//  - A controller that fails a reconcile is retried after a backoff on the FAKE clock: if a test
//    expects a retry (an exhausted resource freed, a conflict), drive it with AdvanceUntil.
//  - Controllers read informer caches, which lag the API by a moment. Before an Advance() whose
//    outcome depends on a write the test just made (a renewed Lease), call
//    WaitUntilCached(resource, written_object) so the controllers' informer has seen it.
//
// Time seam for wall-clock fields: controllers compute "now" for API timestamps with
// Controller::WallNow() (system time at construction + fake clock movement). WallNow() /
// Timestamp() here do the same from the start of the test, so times the test writes (a Lease's
// renewTime, a Ready condition's lastTransitionTime) line up with what the controllers see, to
// well within the one-second granularity of API timestamps.
//
// Object helpers go through api() and fail the test (ADD_FAILURE, returning null/false/empty)
// on an unexpected error, so a test reads as a story. Builders below (MakePod, MakeReplicaSet,
// ...) return plain JSON to adjust before Create().
//
// Logs: warnings and errors only; set MK8S_TEST_VERBOSE=1 for the server's and controllers' info.
//
// Adding a test: see tests/unit/controllers/README.md.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "client/client.h"
#include "client/clock.h"
#include "client/shared_informer_factory.h"
#include "controllers/controller.h"
#include "controllers/manager.h"

namespace mk8s::apiserver {
class ApiServer;
}
namespace mk8s::store {
class Store;
}

namespace mk8s::controllers::test {

using nlohmann::json;
using namespace std::chrono_literals;

class ControllerTest : public ::testing::Test {
 protected:
  ControllerTest();
  ~ControllerTest() override;
  void SetUp() override;
  void TearDown() override;

  // --- what the test works with
  const std::string& ns() const { return ns_; }
  client::Client& api() { return *client_; }
  // Another client of the same server acting as `user` in `groups` (e.g. a node,
  // "system:node:n1" in {"system:nodes", "system:authenticated"}); valid until TearDown().
  std::shared_ptr<client::Client> ClientAs(const std::string& user,
                                           const std::vector<std::string>& groups);
  const std::shared_ptr<client::Client>& api_ptr() { return client_; }
  client::FakeClock& clock() { return clock_; }
  ControllerContext& context() { return context_; }
  const std::string& cluster_ca_pem() const { return context_.cluster_ca_pem; }
  // A name unique to this test for cluster-scoped objects ("<ns>-<base>"), kept short.
  std::string Unique(const std::string& base) const;

  // --- controllers
  // From ControllerRegistry::Builtin(); fails the test if the name is unknown.
  void StartController(const std::string& name, int workers = 2);
  void StartController(const ControllerFactory& factory, int workers = 2);
  void StartControllers(const std::vector<std::string>& names, int workers = 2);
  // Stops every started controller (workers joined, timers cancelled), shuts its informers down
  // and destroys it; StartController() may be called again (it gets a fresh informer factory).
  void StopControllers();

  // --- waiting and time
  ::testing::AssertionResult WaitFor(const std::function<bool()>& predicate,
                                     std::chrono::milliseconds timeout, const std::string& what);
  ::testing::AssertionResult WaitFor(const std::function<bool()>& predicate,
                                     const std::string& what) {
    return WaitFor(predicate, kDefaultTimeout, what);
  }
  void Advance(client::Clock::Duration d) { clock_.Advance(d); }
  // Until predicate() holds: Advance(step), then WaitFor(predicate, settle). Fails once
  // max_advance of fake time has passed and a final default-deadline wait did not see it.
  ::testing::AssertionResult AdvanceUntil(const std::function<bool()>& predicate,
                                          client::Clock::Duration step,
                                          client::Clock::Duration max_advance,
                                          const std::string& what,
                                          std::chrono::milliseconds settle = 200ms);
  // Waits until the controllers' informer for `resource` (the one created with namespace
  // `informer_ns`, "" = all namespaces, exactly as the controller asked the factory) holds
  // `object` at its resourceVersion or newer. Fails at once if no such informer was started.
  ::testing::AssertionResult WaitUntilCached(const client::ResourceRef& resource,
                                             const json& object,
                                             const std::string& informer_ns = "");
  // The wall time controllers see (see the header comment) and as an API timestamp.
  std::chrono::system_clock::time_point WallNow();
  std::string Timestamp() { return FormatTimestamp(WallNow()); }
  static std::string FormatTimestamp(std::chrono::system_clock::time_point time);

  // --- objects (through api(); `ns` "" for cluster-scoped resources, ignored by the server)
  // Creates a namespace and waits until it accepts content. (The API server checks a create's
  // namespace against its watch cache, which lags the write by a moment: a create right after
  // the namespace's would get 404 NotFound.) Use it instead of Create(kNamespaces, ...).
  json CreateNamespace(const std::string& name);
  // Creates the object; metadata.namespace defaults to ns() for namespaced resources.
  json Create(const client::ResourceRef& resource, json object);
  // nullopt if NotFound (other errors fail the test).
  std::optional<json> Get(const client::ResourceRef& resource, const std::string& name);
  std::optional<json> Get(const client::ResourceRef& resource, const std::string& ns,
                          const std::string& name);
  // Every object of the resource in ns() (or `ns`; "" = all), optionally by label selector.
  std::vector<json> List(const client::ResourceRef& resource, const std::string& label_selector = "");
  std::vector<json> ListIn(const client::ResourceRef& resource, const std::string& ns,
                           const std::string& label_selector = "");
  // Merge patch of the object named `name` in ns() (cluster-scoped: ns ignored).
  json Patch(const client::ResourceRef& resource, const std::string& name, const json& patch);
  // Reads the object, applies `mutate`, writes it back (retrying conflicts). Returns the result.
  json Mutate(const client::ResourceRef& resource, const std::string& name,
              const std::function<void(json&)>& mutate, bool status = false);
  // Deletes (NotFound counts as done). `propagation`: "", "Background", "Foreground", "Orphan".
  bool Delete(const client::ResourceRef& resource, const std::string& name,
              const std::string& propagation = "");
  bool DeleteIn(const client::ResourceRef& resource, const std::string& ns, const std::string& name,
                const std::string& propagation = "");

  // --- playing the kubelet
  // Sets a pod's status: phase Running, podIP `ip` (if not empty) and the Ready condition
  // (lastTransitionTime = Timestamp() when readiness changes). False if the pod is gone.
  bool SetPodReady(const std::string& pod_name, bool ready, const std::string& ip = "");
  // Marks every active, not-ready pod in ns() matching `label_selector` Ready (with an IP).
  // Returns how many it changed.
  int ReadyAllPods(const std::string& label_selector = "");
  // Events in ns() with this reason (optionally about the object `name`).
  std::vector<json> EventsWithReason(const std::string& reason, const std::string& name = "");

  static constexpr std::chrono::milliseconds kDefaultTimeout{15000};

 private:
  void BuildAndRun(const std::vector<const ControllerFactory*>& factories, int workers);

  std::string dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<apiserver::ApiServer> server_;
  std::shared_ptr<client::Transport> test_transport_;
  std::shared_ptr<client::Transport> controller_transport_;
  std::vector<std::shared_ptr<client::Transport>> other_transports_;  // ClientAs()
  std::shared_ptr<client::Client> client_;
  client::FakeClock clock_;  // outlives the controllers (their queues cancel timers on it)
  std::unique_ptr<client::SharedInformerFactory> informers_;
  ControllerContext context_;
  std::vector<std::unique_ptr<Controller>> controllers_;
  std::string ns_;
  std::chrono::system_clock::time_point wall_anchor_;
  client::Clock::TimePoint clock_anchor_;
  int ip_counter_ = 0;
};

// --- builders (plain JSON; namespace is filled in by Create())
json MakeNamespace(const std::string& name);
// A pod template {metadata: {labels}, spec: {containers: [{name: app, image}]}}.
json MakePodTemplate(const json& labels, const std::string& image = "registry.k8s.io/pause:3.9");
json MakePod(const std::string& name, const json& labels, const std::string& node_name = "");
json MakeReplicaSet(const std::string& name, int64_t replicas, const json& labels);
json MakeDeployment(const std::string& name, int64_t replicas, const json& labels);
json MakeService(const std::string& name, const json& selector, const json& ports);
json MakeNode(const std::string& name);
// A certificates.k8s.io/v1 CertificateSigningRequest for `request_pem` (base64-encoded here).
// A kube-apiserver-client CSR for user "alice" with a fresh key (client auth usages).
json MakeClientCsr(const std::string& name);
json MakeCsr(const std::string& name, const std::string& request_pem, const std::string& signer,
             const std::vector<std::string>& usages);
json MakeConfigMap(const std::string& name, const json& data = json::object());
// An ownerReference to `owner` (controller=false unless asked).
json OwnerRef(const json& owner, bool controller = false, bool block_owner_deletion = false);

// Helpers over objects.
// status.conditions[type]: a pointer INTO `object` (keep the object alive: not a temporary).
const json* FindCondition(const json& object, const std::string& type);
std::string ConditionStatus(const json& object, const std::string& type);  // "" if absent
int64_t StatusInt(const json& object, const std::string& field);           // status.<field> or 0
bool HasDeletionTimestamp(const json& object);

}  // namespace mk8s::controllers::test
