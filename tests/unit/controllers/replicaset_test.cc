// ReplicaSet controller: exact replica count, bursts with expectations (no overshoot), adoption
// of orphans by selector, release of pods that stop matching, and status counts.
#include <atomic>
#include <mutex>
#include <set>

#include "client/informer.h"
#include "fault_transport.h"
#include "fixture.h"

namespace mk8s::controllers::test {
namespace {

class ReplicaSetTest : public ControllerTest {
 protected:
  void SetUp() override {
    ControllerTest::SetUp();
    if (HasFatalFailure()) return;
    StartController("replicaset");
  }

  // Active pods controlled by the ReplicaSet with this uid.
  std::vector<json> OwnedPods(const std::string& uid, const std::string& selector = "") {
    std::vector<json> out;
    for (const json& pod : List(client::kPods, selector)) {
      if (HasDeletionTimestamp(pod)) continue;
      for (const json& ref : pod["metadata"].value("ownerReferences", json::array())) {
        if (ref.value("uid", "") == uid && ref.value("controller", false)) out.push_back(pod);
      }
    }
    return out;
  }
  json GetRs(const std::string& name) { return Get(client::kReplicaSets, name).value_or(json()); }
};

TEST_F(ReplicaSetTest, KeepsExactReplicaCount) {
  const json rs = Create(client::kReplicaSets, MakeReplicaSet("web", 3, {{"app", "web"}}));
  const std::string uid = rs["metadata"]["uid"];
  ASSERT_TRUE(WaitFor([&] { return OwnedPods(uid).size() == 3; }, "3 pods"));
  for (const json& pod : OwnedPods(uid)) {
    EXPECT_EQ(pod["metadata"]["labels"]["app"], "web");
    EXPECT_EQ(pod["metadata"]["generateName"], "web-");
    const json& ref = pod["metadata"]["ownerReferences"][0];
    EXPECT_EQ(ref["kind"], "ReplicaSet");
    EXPECT_EQ(ref["name"], "web");
    EXPECT_EQ(ref["blockOwnerDeletion"], true);
  }
  ASSERT_TRUE(WaitFor([&] { return StatusInt(GetRs("web"), "replicas") == 3; }, "status 3"));

  // A deleted pod is replaced.
  const std::string victim = OwnedPods(uid)[0]["metadata"]["name"];
  ASSERT_TRUE(Delete(client::kPods, victim));
  ASSERT_TRUE(WaitFor(
      [&] {
        auto pods = OwnedPods(uid);
        return pods.size() == 3 && std::none_of(pods.begin(), pods.end(), [&](const json& p) {
                 return p["metadata"]["name"] == victim;
               });
      },
      "a replacement for " + victim));

  Patch(client::kReplicaSets, "web", {{"spec", {{"replicas", 5}}}});
  ASSERT_TRUE(WaitFor([&] { return OwnedPods(uid).size() == 5; }, "scaled up to 5"));
  Patch(client::kReplicaSets, "web", {{"spec", {{"replicas", 1}}}});
  ASSERT_TRUE(WaitFor([&] { return List(client::kPods).size() == 1; }, "scaled down to 1"));
  ASSERT_TRUE(WaitFor(
      [&] {
        json got = GetRs("web");
        return StatusInt(got, "replicas") == 1 &&
               StatusInt(got, "observedGeneration") == got["metadata"].value("generation", -1);
      },
      "status replicas 1 at the latest generation"));
  EXPECT_TRUE(WaitFor([&] { return EventsWithReason("SuccessfulCreate", "web").size() >= 6; },
                      "SuccessfulCreate events"));
  EXPECT_TRUE(WaitFor([&] { return EventsWithReason("SuccessfulDelete", "web").size() >= 4; },
                      "SuccessfulDelete events"));
}

// Expectations: while the pod informer catches up with a burst of creates, later reconciles must
// not create more. Every pod ADDED/DELETED event in the namespace is counted by a test informer.
TEST_F(ReplicaSetTest, BurstsDoNotOvershoot) {
  std::atomic<int> adds{0}, deletes{0};
  std::mutex mu;
  std::set<std::string> seen;
  client::InformerOptions options;
  options.namespace_ = ns();
  client::Informer pods(api_ptr(), client::kPods, options);
  pods.AddEventHandler({[&](const client::ObjectPtr& pod) {
                          std::lock_guard lock(mu);
                          seen.insert((*pod)["metadata"].value("name", ""));
                          ++adds;
                        },
                        nullptr, [&](const client::ObjectPtr&) { ++deletes; }});
  pods.Start();
  ASSERT_TRUE(pods.WaitForSync(kDefaultTimeout));

  const json rs = Create(client::kReplicaSets, MakeReplicaSet("burst", 40, {{"app", "burst"}}));
  ASSERT_TRUE(WaitFor([&] { return StatusInt(GetRs("burst"), "replicas") == 40; },
                      "status replicas 40"));
  // Barrier: once the informer sees a pod created now, it has seen every earlier pod event.
  Create(client::kPods, MakePod("barrier-1", {{"app", "other"}}));
  ASSERT_TRUE(WaitFor([&] { std::lock_guard lock(mu); return seen.count("barrier-1") == 1; },
                      "barrier pod seen"));
  EXPECT_EQ(adds.load(), 41) << "the burst created more pods than replicas";
  EXPECT_EQ(deletes.load(), 0) << "an overshoot was corrected by deletes";
  EXPECT_EQ(List(client::kPods, "app=burst").size(), 40u);

  Patch(client::kReplicaSets, "burst", {{"spec", {{"replicas", 10}}}});
  ASSERT_TRUE(WaitFor([&] { return StatusInt(GetRs("burst"), "replicas") == 10; },
                      "status replicas 10"));
  Create(client::kPods, MakePod("barrier-2", {{"app", "other"}}));
  ASSERT_TRUE(WaitFor([&] { std::lock_guard lock(mu); return seen.count("barrier-2") == 1; },
                      "barrier pod seen"));
  EXPECT_EQ(deletes.load(), 30);
  EXPECT_EQ(adds.load(), 42) << "scaling down created pods";
  EXPECT_EQ(List(client::kPods, "app=burst").size(), 10u);
  pods.Stop();
}

TEST_F(ReplicaSetTest, AdoptsMatchingOrphans) {
  Create(client::kPods, MakePod("orphan-1", {{"app", "db"}}));
  Create(client::kPods, MakePod("orphan-2", {{"app", "db"}}));
  Create(client::kPods, MakePod("stranger", {{"app", "cache"}}));
  // A matching pod with another controller is not ours to adopt.
  const json other = Create(client::kConfigMaps, MakeConfigMap("other-owner"));
  json owned_elsewhere = MakePod("owned-elsewhere", {{"app", "db"}});
  owned_elsewhere["metadata"]["ownerReferences"] = json::array({OwnerRef(other, true)});
  Create(client::kPods, owned_elsewhere);

  const json rs = Create(client::kReplicaSets, MakeReplicaSet("db", 3, {{"app", "db"}}));
  const std::string uid = rs["metadata"]["uid"];
  ASSERT_TRUE(WaitFor([&] { return OwnedPods(uid).size() == 3; }, "3 owned pods"));
  std::set<std::string> names;
  for (const json& pod : OwnedPods(uid)) names.insert(pod["metadata"]["name"]);
  EXPECT_TRUE(names.count("orphan-1") && names.count("orphan-2")) << "orphans not adopted";
  EXPECT_EQ(List(client::kPods, "app=db").size(), 4u) << "only one pod should be created";
  EXPECT_FALSE(Get(client::kPods, "stranger")->at("metadata").contains("ownerReferences"));
  EXPECT_EQ((*Get(client::kPods, "owned-elsewhere"))["metadata"]["ownerReferences"][0]["uid"],
            other["metadata"]["uid"]);
}

TEST_F(ReplicaSetTest, ReleasesPodsThatStopMatching) {
  const json rs = Create(client::kReplicaSets, MakeReplicaSet("api", 2, {{"app", "api"}}));
  const std::string uid = rs["metadata"]["uid"];
  ASSERT_TRUE(WaitFor([&] { return OwnedPods(uid).size() == 2; }, "2 pods"));
  const std::string relabelled = OwnedPods(uid)[0]["metadata"]["name"];
  Patch(client::kPods, relabelled, {{"metadata", {{"labels", {{"app", "debug"}}}}}});

  ASSERT_TRUE(WaitFor(
      [&] {
        auto pod = Get(client::kPods, relabelled);
        return pod && (*pod)["metadata"].value("ownerReferences", json::array()).empty() &&
               OwnedPods(uid, "app=api").size() == 2;
      },
      "the relabelled pod released and replaced"));
  EXPECT_EQ(List(client::kPods).size(), 3u);
  if (HasFailure()) {
    for (const json& pod : List(client::kPods)) ADD_FAILURE() << pod["metadata"].dump();
  }
}

// Status: replicas, fullyLabeledReplicas, readyReplicas, and availableReplicas only once a pod
// has been ready for minReadySeconds (driven by the fake clock).
TEST_F(ReplicaSetTest, StatusCountsReadyAndAvailable) {
  json spec = MakeReplicaSet("st", 3, {{"app", "st"}});
  spec["spec"]["minReadySeconds"] = 30;
  spec["spec"]["template"]["metadata"]["labels"]["tier"] = "front";
  const json rs = Create(client::kReplicaSets, spec);
  const std::string uid = rs["metadata"]["uid"];
  ASSERT_TRUE(WaitFor([&] { return OwnedPods(uid).size() == 3; }, "3 pods"));
  auto pods = OwnedPods(uid);
  // One pod loses a template label (still matching the selector): not fully labelled.
  Patch(client::kPods, pods[2]["metadata"]["name"], {{"metadata", {{"labels", {{"tier", nullptr}}}}}});
  ASSERT_TRUE(SetPodReady(pods[0]["metadata"]["name"], true));
  ASSERT_TRUE(SetPodReady(pods[1]["metadata"]["name"], true));

  ASSERT_TRUE(WaitFor(
      [&] {
        json got = GetRs("st");
        return StatusInt(got, "readyReplicas") == 2 && StatusInt(got, "fullyLabeledReplicas") == 2;
      },
      "2 ready, 2 fully labelled"));
  json got = GetRs("st");
  EXPECT_EQ(StatusInt(got, "replicas"), 3);
  EXPECT_EQ(StatusInt(got, "availableReplicas"), 0) << "available before minReadySeconds";

  Advance(28s);
  EXPECT_EQ(StatusInt(GetRs("st"), "availableReplicas"), 0) << "available before minReadySeconds";
  EXPECT_TRUE(AdvanceUntil([&] { return StatusInt(GetRs("st"), "availableReplicas") == 2; }, 1s,
                           5s, "2 available after minReadySeconds"));
  if (HasFailure()) {
    ADD_FAILURE() << GetRs("st").dump() << " fake-wall " << Timestamp();
    for (const json& pod : List(client::kPods)) ADD_FAILURE() << pod["status"].dump();
  }
}

// A pod delete that fails (not NotFound) ends the burst, and the deletes it did not send are no
// longer expected: the retry after the backoff deletes again instead of waiting for deletions
// that will never be observed (which stalled the ReplicaSet until the expectation timeout).
TEST_F(ReplicaSetTest, FailedDeleteDoesNotStallScaleDown) {
  StopControllers();
  auto faults = std::make_shared<FaultTransport>(context().client->transport(), "DELETE",
                                                 "/pods/", 1);
  context().client = std::make_shared<client::Client>(faults);
  StartController("replicaset");

  const json rs = Create(client::kReplicaSets, MakeReplicaSet("shrink", 4, {{"app", "shrink"}}));
  const std::string uid = rs["metadata"]["uid"];
  ASSERT_TRUE(WaitFor([&] { return OwnedPods(uid).size() == 4; }, "4 pods"));
  Patch(client::kReplicaSets, "shrink", {{"spec", {{"replicas", 1}}}});
  ASSERT_TRUE(WaitFor([&] { return faults->failed() == 1; }, "the first delete failed"));
  // The retry comes after a backoff on the fake clock; well within the 5 min expectation TTL.
  ASSERT_TRUE(AdvanceUntil([&] { return OwnedPods(uid).size() == 1; }, 500ms, 15s,
                           "scaled down to 1 after the failed delete"));
}

}  // namespace
}  // namespace mk8s::controllers::test
