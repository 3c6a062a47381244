// Pod garbage collector, driven by the fake clock (sweeps every 20 s, orphan quarantine 40 s):
// pods of a deleted node are marked (Failed, DisruptionTarget) and force-deleted after the
// quarantine; terminating pods on a NotReady out-of-service node and unscheduled terminating pods
// are force-deleted; terminated pods beyond the threshold go evicted-first, then oldest first; a
// pod on an existing node is left alone.
#include "controllers/podgc/gc_order.h"
#include "fixture.h"

namespace mk8s::controllers::test {
namespace {

constexpr const char* kHold = "example.com/hold";

class PodGcTest : public ControllerTest {
 protected:
  void StartGc() { StartController("pod-garbage-collector"); }
  // A node with a Ready condition of `ready` ("True"/"False").
  void CreateNode(const std::string& name, const std::string& ready) {
    Create(client::kNodes, MakeNode(name));
    Mutate(
        client::kNodes, name,
        [&](json& node) {
          node["status"]["conditions"] = json::array({{{"type", "Ready"},
                                                       {"status", ready},
                                                       {"lastHeartbeatTime", Timestamp()},
                                                       {"lastTransitionTime", Timestamp()}}});
        },
        /*status=*/true);
  }
  json CreatePod(const std::string& name, const std::string& node, bool hold = false) {
    json pod = MakePod(name, {{"app", "gc"}}, node);
    if (hold) pod["metadata"]["finalizers"] = json::array({kHold});
    return Create(client::kPods, pod);
  }
  json SetPhase(const std::string& name, const std::string& phase, const std::string& reason = "") {
    return Mutate(
        client::kPods, name,
        [&](json& pod) {
          pod["status"]["phase"] = phase;
          if (!reason.empty()) pod["status"]["reason"] = reason;
        },
        /*status=*/true);
  }
  void Release(const std::string& name) {
    Mutate(client::kPods, name, [](json& pod) { pod["metadata"]["finalizers"] = json::array(); });
  }
  bool Gone(const std::string& pod) { return !Get(client::kPods, pod).has_value(); }
  // Waits for a full sweep that started after every earlier write was cached: a held,
  // unscheduled pod deleted now is marked Failed by such a sweep (each one sees every pod).
  // The marker is released afterwards, so it does not count as a terminated pod for long.
  void AwaitSweep() {
    const std::string marker = "marker-" + std::to_string(++markers_);
    CreatePod(marker, "", /*hold=*/true);
    ASSERT_TRUE(Delete(client::kPods, marker));
    ASSERT_TRUE(WaitFor([&] { return Phase(marker) == "Failed"; }, "a sweep marked " + marker));
    Release(marker);
    ASSERT_TRUE(WaitFor([&] { return Gone(marker); }, marker + " gone"));
  }
  bool Terminating(const std::string& pod) {
    auto got = Get(client::kPods, pod);
    return got && HasDeletionTimestamp(*got);
  }
  std::string Phase(const std::string& pod) {
    auto got = Get(client::kPods, pod);
    return got ? got->value("/status/phase"_json_pointer, std::string()) : "";
  }

 private:
  int markers_ = 0;
};

TEST_F(PodGcTest, OrphanedPodsAreMarkedAndForceDeletedAfterQuarantine) {
  StartGc();
  CreateNode("doomed", "True");
  CreateNode("kept", "True");
  CreatePod("held", "doomed", /*hold=*/true);  // a finalizer keeps it visible after the delete
  CreatePod("plain", "doomed");
  const json safe = CreatePod("safe", "kept");
  ASSERT_TRUE(WaitUntilCached(client::kPods, safe));
  ASSERT_TRUE(Delete(client::kNodes, "doomed"));

  Advance(30s);  // a sweep ran (20 s), but every quarantine lasts 40 s
  EXPECT_FALSE(Gone("plain")) << "deleted before the quarantine ended";
  EXPECT_FALSE(Terminating("held"));

  ASSERT_TRUE(AdvanceUntil([&] { return Gone("plain") && Terminating("held"); }, 5s, 60s,
                           "pods of the deleted node force-deleted"));
  const json held = *Get(client::kPods, "held");
  EXPECT_EQ(held.value("/status/phase"_json_pointer, std::string()), "Failed");
  EXPECT_EQ(held["metadata"].value("deletionGracePeriodSeconds", int64_t{-1}), 0);
  ASSERT_NE(FindCondition(held, "DisruptionTarget"), nullptr);
  EXPECT_EQ(ConditionStatus(held, "DisruptionTarget"), "True");
  EXPECT_EQ(FindCondition(held, "DisruptionTarget")->value("reason", ""), "DeletionByPodGC");
  EXPECT_FALSE(Terminating("safe")) << "a pod on an existing node was deleted";
  Release("held");
  ASSERT_TRUE(WaitFor([&] { return Gone("held"); }, "held pod gone once released"));
}

// The quarantine re-checks the API: a node that is back before it ends keeps its pods.
TEST_F(PodGcTest, NodeBackWithinQuarantineKeepsItsPods) {
  StartGc();
  CreateNode("flap", "True");
  const json pod = CreatePod("stays", "flap");
  ASSERT_TRUE(WaitUntilCached(client::kPods, pod));
  ASSERT_TRUE(Delete(client::kNodes, "flap"));
  Advance(20s);
  const json node = Create(client::kNodes, MakeNode("flap"));
  ASSERT_TRUE(WaitUntilCached(client::kNodes, node));
  // A witness on a node that never exists, quarantined from now (20 s later than "flap"): once
  // it is collected, the check of "flap" has run too.
  CreatePod("witness", "ghost");
  ASSERT_TRUE(AdvanceUntil([&] { return Gone("witness"); }, 5s, 80s, "witness collected"));
  EXPECT_FALSE(Terminating("stays"));
  EXPECT_FALSE(Gone("stays"));
}

TEST_F(PodGcTest, TerminatingPodsOnOutOfServiceNotReadyNodeAreForceDeleted) {
  StartGc();
  CreateNode("down", "False");
  CreateNode("up", "True");
  CreateNode("down-untainted", "False");
  CreatePod("stuck", "down");
  CreatePod("on-ready", "up");
  CreatePod("no-taint", "down-untainted");
  for (const char* name : {"stuck", "on-ready", "no-taint"}) {
    ASSERT_TRUE(Delete(client::kPods, name));
    ASSERT_TRUE(Terminating(name)) << name << ": a bound pod ends gracefully";
  }
  const json taint = {{"key", "node.kubernetes.io/out-of-service"},
                      {"effect", "NoExecute"},
                      {"value", "nodeshutdown"}};
  Patch(client::kNodes, "up", {{"spec", {{"taints", json::array({taint})}}}});
  Patch(client::kNodes, "down", {{"spec", {{"taints", json::array({taint})}}}});
  ASSERT_TRUE(WaitFor([&] { return Gone("stuck"); },
                      "terminating pod on the out-of-service node force-deleted"));
  ASSERT_NO_FATAL_FAILURE(AwaitSweep());
  EXPECT_TRUE(Terminating("on-ready")) << "node Ready: the kubelet finishes this one";
  EXPECT_TRUE(Terminating("no-taint")) << "no out-of-service taint: left to the kubelet";
}

TEST_F(PodGcTest, UnscheduledTerminatingPodIsForceDeleted) {
  StartGc();
  CreatePod("pending", "", /*hold=*/true);
  ASSERT_TRUE(Delete(client::kPods, "pending"));
  ASSERT_TRUE(Terminating("pending"));
  ASSERT_TRUE(WaitFor([&] { return Phase("pending") == "Failed"; },
                      "unscheduled terminating pod marked Failed"));
  const json pod = *Get(client::kPods, "pending");
  EXPECT_EQ(pod["metadata"].value("deletionGracePeriodSeconds", int64_t{-1}), 0);
  Release("pending");
  ASSERT_TRUE(WaitFor([&] { return Gone("pending"); }, "pod gone once released"));
}

TEST_F(PodGcTest, TerminatedPodsBeyondThresholdGoEvictedThenOldestFirst) {
  context().terminated_pod_gc_threshold = 2;
  StartGc();
  CreateNode("n", "True");
  for (const char* name : {"t1", "t2", "t3", "t4", "t5", "running"}) CreatePod(name, "n");
  // Created in this order, so creationTimestamp (then name) orders them t1..t5; the newest one
  // was evicted, which puts it first.
  for (const char* name : {"t1", "t2", "t3", "t4"}) SetPhase(name, "Succeeded");
  SetPhase("running", "Running");
  const json last = SetPhase("t5", "Failed", "Evicted");
  ASSERT_TRUE(WaitUntilCached(client::kPods, last));
  ASSERT_TRUE(AdvanceUntil([&] { return Gone("t5") && Gone("t1") && Gone("t2"); }, 20s, 60s,
                           "3 terminated pods over the threshold of 2 deleted"));
  EXPECT_FALSE(Gone("t3"));
  EXPECT_FALSE(Gone("t4"));
  EXPECT_FALSE(Gone("running"));
}

TEST_F(PodGcTest, ThresholdZeroKeepsEveryTerminatedPod) {
  context().terminated_pod_gc_threshold = 0;
  StartGc();
  CreateNode("n", "True");
  for (const char* name : {"s1", "s2", "s3"}) {
    CreatePod(name, "n");
    SetPhase(name, "Succeeded");
  }
  Advance(20s);
  ASSERT_NO_FATAL_FAILURE(AwaitSweep());
  for (const char* name : {"s1", "s2", "s3"}) EXPECT_FALSE(Gone(name)) << name;
}

TEST_F(PodGcTest, PodOnExistingNodeIsLeftAlone) {
  StartGc();
  CreateNode("healthy", "True");
  CreatePod("app", "healthy");
  ASSERT_TRUE(SetPodReady("app", true));
  CreatePod("leaving", "healthy");
  ASSERT_TRUE(Delete(client::kPods, "leaving"));  // graceful: the kubelet's job
  // A witness on a missing node: by the time it is collected, sweeps at 20 s and 40 s ran.
  CreatePod("witness", "nowhere");
  ASSERT_TRUE(AdvanceUntil([&] { return Gone("witness"); }, 10s, 80s, "witness collected"));
  ASSERT_NO_FATAL_FAILURE(AwaitSweep());
  EXPECT_EQ(Phase("app"), "Running");
  EXPECT_FALSE(Terminating("app"));
  EXPECT_TRUE(Terminating("leaving")) << "a graceful deletion on a live node was forced";
}

json OrderPod(const std::string& name, const std::string& created, const std::string& phase,
              const std::string& reason = "") {
  json pod = {{"metadata", {{"namespace", "ns"}, {"name", name}, {"creationTimestamp", created}}},
              {"status", {{"phase", phase}}}};
  if (!reason.empty()) pod["status"]["reason"] = reason;
  return pod;
}

TEST(PodGcOrder, EvictedFirstThenOldestThenName) {
  std::vector<client::ObjectPtr> pods = {
      std::make_shared<json>(OrderPod("new", "2026-01-01T00:00:09Z", "Succeeded")),
      std::make_shared<json>(OrderPod("b-old", "2026-01-01T00:00:01Z", "Failed")),
      std::make_shared<json>(OrderPod("a-old", "2026-01-01T00:00:01Z", "Succeeded")),
      std::make_shared<json>(OrderPod("evicted-new", "2026-01-01T00:00:10Z", "Failed", "Evicted")),
      std::make_shared<json>(OrderPod("mid", "2026-01-01T00:00:05Z", "Failed"))};
  podgc::SortForDeletion(&pods);
  std::vector<std::string> names;
  for (const auto& pod : pods) names.push_back((*pod)["metadata"].value("name", ""));
  EXPECT_EQ(names, (std::vector<std::string>{"evicted-new", "a-old", "b-old", "mid", "new"}));
}

}  // namespace
}  // namespace mk8s::controllers::test
