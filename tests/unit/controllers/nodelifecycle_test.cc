// Node lifecycle controller, driven by the fake clock: a node whose Lease stops being renewed
// turns Ready=Unknown after the grace period (10 s in the fixture), gets the unreachable taints,
// and its pods are evicted once their tolerationSeconds run out; a node that reports again loses
// the taints.
#include "fixture.h"

namespace mk8s::controllers::test {
namespace {

constexpr const char* kUnreachable = "node.kubernetes.io/unreachable";

class NodeLifecycleTest : public ControllerTest {
 protected:
  void SetUp() override {
    ControllerTest::SetUp();
    if (HasFatalFailure()) return;
    StartController("node-lifecycle");
  }
  // A node that is Ready, with a Lease renewed now (fake wall time), as a kubelet would leave it.
  void CreateHealthyNode(const std::string& name) {
    Create(client::kNodes, MakeNode(name));
    Mutate(client::kNodes, name, [&](json& node) {
      node["status"]["conditions"] = json::array({{{"type", "Ready"},
                                                   {"status", "True"},
                                                   {"reason", "KubeletReady"},
                                                   {"lastHeartbeatTime", Timestamp()},
                                                   {"lastTransitionTime", Timestamp()}}});
    }, /*status=*/true);
    json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                  {"kind", "Lease"},
                  {"metadata", {{"name", name}, {"namespace", "kube-node-lease"}}},
                  {"spec", {{"holderIdentity", name}, {"leaseDurationSeconds", 40},
                            {"renewTime", Timestamp()}}}};
    Create(client::kLeases, lease);
  }
  // Renews the Lease now (fake wall time) and waits until the controller's cache has it.
  void RenewLease(const std::string& name) {
    auto renewed = api().Patch(client::kLeases, "kube-node-lease", name, client::PatchType::kMerge,
                               {{"spec", {{"renewTime", Timestamp()}}}});
    ASSERT_TRUE(renewed.ok()) << renewed.error().ToString();
    ASSERT_TRUE(WaitUntilCached(client::kLeases, *renewed));
  }
  json Node(const std::string& name) { return Get(client::kNodes, "", name).value_or(json()); }
  std::vector<std::string> UnreachableEffects(const json& node) {
    std::vector<std::string> effects;
    for (const json& taint : node.value("/spec/taints"_json_pointer, json::array())) {
      if (taint.value("key", "") == kUnreachable) effects.push_back(taint.value("effect", ""));
    }
    std::sort(effects.begin(), effects.end());
    return effects;
  }
  // The node's taints as "key:effect", sorted.
  std::vector<std::string> Taints(const json& node) {
    std::vector<std::string> out;
    for (const json& taint : node.value("/spec/taints"_json_pointer, json::array())) {
      out.push_back(taint.value("key", "") + ":" + taint.value("effect", ""));
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  // Sets condition `type` to `status` the way the kubelet writes it (status subresource).
  void SetCondition(const std::string& node_name, const std::string& type, const std::string& status) {
    Mutate(client::kNodes, node_name, [&](json& node) {
      json& conditions = node["status"]["conditions"];
      for (json& condition : conditions) {
        if (condition.value("type", "") == type) {
          condition["status"] = status;
          condition["lastHeartbeatTime"] = Timestamp();
          return;
        }
      }
      conditions.push_back({{"type", type}, {"status", status}, {"lastHeartbeatTime", Timestamp()},
                            {"lastTransitionTime", Timestamp()}});
    }, /*status=*/true);
  }
  bool Evicted(const std::string& pod) {
    auto got = Get(client::kPods, pod);
    return !got || HasDeletionTimestamp(*got);
  }
  json PodOn(const std::string& name, const std::string& node, const json& tolerations) {
    json pod = MakePod(name, {{"app", "x"}}, node);
    if (!tolerations.is_null()) pod["spec"]["tolerations"] = tolerations;
    return pod;
  }
};

TEST_F(NodeLifecycleTest, SilentNodeIsTaintedAndItsPodsEvicted) {
  CreateHealthyNode("silent");
  CreateHealthyNode("alive");
  Create(client::kPods, PodOn("fast", "silent", json::array({{{"key", kUnreachable},
                                                              {"operator", "Exists"},
                                                              {"effect", "NoExecute"},
                                                              {"tolerationSeconds", 30}}})));
  Create(client::kPods, PodOn("default", "silent", nullptr));  // admission: 300 s
  Create(client::kPods, PodOn("forever", "silent", json::array({{{"key", kUnreachable},
                                                                 {"operator", "Exists"},
                                                                 {"effect", "NoExecute"}}})));
  Create(client::kPods, PodOn("healthy", "alive", nullptr));

  // 6 s in, "alive" renews its Lease; "silent" never does. At 13 s only "silent" is past the
  // 10 s grace period.
  Advance(6s);
  ASSERT_NO_FATAL_FAILURE(RenewLease("alive"));
  Advance(7s);
  ASSERT_TRUE(WaitFor([&] {
    const json node = Node("silent");
    return ConditionStatus(node, "Ready") == "Unknown" &&
           UnreachableEffects(node) == std::vector<std::string>{"NoExecute", "NoSchedule"};
  }, "silent node Unknown and tainted unreachable"));
  const json silent = Node("silent");
  EXPECT_EQ(FindCondition(silent, "Ready")->value("reason", ""), "NodeStatusUnknown");
  const json alive = Node("alive");
  EXPECT_EQ(ConditionStatus(alive, "Ready"), "True");
  EXPECT_TRUE(UnreachableEffects(alive).empty());
  EXPECT_TRUE(WaitFor([&] { return !ListIn(client::kEvents, "default").empty(); },
                      "a NodeNotReady event"));

  // Eviction counts from the NoExecute taint's timeAdded.
  Advance(20s);
  EXPECT_FALSE(Evicted("fast")) << "evicted before its 30 s toleration";
  Advance(12s);
  ASSERT_TRUE(WaitFor([&] { return Evicted("fast"); }, "pod tolerating 30 s evicted"));
  // The reconcile that evicted "fast" judged the others at the same time.
  EXPECT_FALSE(Evicted("default"));
  EXPECT_FALSE(Evicted("forever"));

  Advance(275s);
  ASSERT_TRUE(WaitFor([&] { return Evicted("default"); }, "pod with the default 300 s evicted"));
  EXPECT_FALSE(Evicted("forever")) << "a pod tolerating unreachable forever was evicted";
  EXPECT_FALSE(Evicted("healthy")) << "a pod on a healthy node was evicted";
  bool recorded = false;
  for (const json& event : EventsWithReason("TaintManagerEviction")) {
    recorded |= event["involvedObject"].value("name", "") == "fast";
  }
  EXPECT_TRUE(recorded) << "no TaintManagerEviction event for the evicted pod";
}

TEST_F(NodeLifecycleTest, NodeThatReportsAgainLosesTheTaints) {
  CreateHealthyNode("flaky");
  Advance(13s);
  ASSERT_TRUE(WaitFor([&] { return UnreachableEffects(Node("flaky")).size() == 2; },
                      "flaky tainted"));
  ASSERT_NO_FATAL_FAILURE(RenewLease("flaky"));
  Advance(2s);  // the next periodic check
  ASSERT_TRUE(WaitFor([&] { return UnreachableEffects(Node("flaky")).empty(); },
                      "taints removed after the Lease is renewed"));
}

// Pressure conditions, NetworkUnavailable and a cordon become NoSchedule taints and go away with
// their cause; a taint of someone else's is kept throughout.
TEST_F(NodeLifecycleTest, ConditionsAndCordonBecomeNoScheduleTaints) {
  CreateHealthyNode("busy");
  Mutate(client::kNodes, "busy", [](json& node) {
    node["spec"]["taints"] = json::array({{{"key", "dedicated"}, {"value", "gpu"}, {"effect", "NoSchedule"}}});
  });
  SetCondition("busy", "MemoryPressure", "True");
  SetCondition("busy", "DiskPressure", "True");
  SetCondition("busy", "PIDPressure", "False");
  const std::vector<std::string> pressured = {"dedicated:NoSchedule",
                                              "node.kubernetes.io/disk-pressure:NoSchedule",
                                              "node.kubernetes.io/memory-pressure:NoSchedule"};
  ASSERT_TRUE(WaitFor([&] { return Taints(Node("busy")) == pressured; }, "pressure taints"))
      << json(Taints(Node("busy"))).dump();
  Mutate(client::kNodes, "busy", [](json& node) { node["spec"]["unschedulable"] = true; });
  SetCondition("busy", "MemoryPressure", "False");
  const std::vector<std::string> cordoned = {"dedicated:NoSchedule",
                                             "node.kubernetes.io/disk-pressure:NoSchedule",
                                             "node.kubernetes.io/unschedulable:NoSchedule"};
  ASSERT_TRUE(WaitFor([&] { return Taints(Node("busy")) == cordoned; }, "cordon taint"))
      << json(Taints(Node("busy"))).dump();
  Mutate(client::kNodes, "busy", [](json& node) { node["spec"]["unschedulable"] = false; });
  SetCondition("busy", "DiskPressure", "False");
  ASSERT_TRUE(WaitFor([&] { return Taints(Node("busy")) == std::vector<std::string>{"dedicated:NoSchedule"}; },
                      "only the foreign taint left"))
      << json(Taints(Node("busy"))).dump();
}

// A kubelet that reports Ready=False (runtime down) gets the not-ready taints; its pods are
// evicted after their tolerationSeconds, and the taints go when it is Ready again.
TEST_F(NodeLifecycleTest, NotReadyNodeIsTaintedAndItsPodsEvicted) {
  CreateHealthyNode("sick");
  Create(client::kPods, PodOn("patient", "sick",
                              json::array({{{"key", "node.kubernetes.io/not-ready"}, {"operator", "Exists"},
                                            {"effect", "NoExecute"}, {"tolerationSeconds", 30}}})));
  Create(client::kPods, PodOn("stoic", "sick",
                              json::array({{{"key", "node.kubernetes.io/not-ready"}, {"operator", "Exists"},
                                            {"effect", "NoExecute"}}})));
  SetCondition("sick", "Ready", "False");
  ASSERT_TRUE(WaitFor([&] {
    return Taints(Node("sick")) == std::vector<std::string>{"node.kubernetes.io/not-ready:NoExecute",
                                                            "node.kubernetes.io/not-ready:NoSchedule"};
  }, "not-ready taints")) << json(Taints(Node("sick"))).dump();
  EXPECT_FALSE(Evicted("patient"));
  // Keep the node alive (not silent) while its tolerationSeconds run out.
  ASSERT_TRUE(AdvanceUntil([&] {
    RenewLease("sick");
    return Evicted("patient");
  }, 2s, 40s, "the patient pod evicted after 30 s"));
  EXPECT_FALSE(Evicted("stoic"));  // tolerates forever
  SetCondition("sick", "Ready", "True");
  ASSERT_TRUE(WaitFor([&] { return Taints(Node("sick")).empty(); }, "not-ready taints removed"))
      << json(Taints(Node("sick"))).dump();
}

// A node that never posted anything still gets a full grace period from its creation.
TEST_F(NodeLifecycleTest, NewNodeGetsAFullGracePeriod) {
  Create(client::kNodes, MakeNode("quiet"));
  Advance(6s);  // checked at 2, 4 and 6 s: still inside the grace period
  EXPECT_EQ(ConditionStatus(Node("quiet"), "Ready"), "");
  Advance(6s);
  ASSERT_TRUE(WaitFor([&] { return ConditionStatus(Node("quiet"), "Ready") == "Unknown"; },
                      "quiet node Unknown after the grace period"));
}

}  // namespace
}  // namespace mk8s::controllers::test
