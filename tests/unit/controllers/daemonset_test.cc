// DaemonSet controller: one pod per eligible node (selectors, affinity, taints and the default
// daemon tolerations), node churn, failed pods, RollingUpdate (maxUnavailable and maxSurge),
// OnDelete, ControllerRevisions (and their names under status.collisionCount) and status. No
// scheduler runs here: pods stay pinned by their node affinity, and the test plays the kubelet
// (SetPodReady).
#include <set>

#include "controllers/common/template_hash.h"
#include "controllers/daemonset/node_eligibility.h"
#include "fixture.h"

namespace mk8s::controllers::test {
namespace {

json MakeDaemonSet(const std::string& name) {
  return {{"apiVersion", "apps/v1"},
          {"kind", "DaemonSet"},
          {"metadata", {{"name", name}}},
          {"spec", {{"selector", {{"matchLabels", {{"app", name}}}}}, {"template", MakePodTemplate({{"app", name}})}}}};
}

json Taint(const std::string& key, const std::string& effect) {
  return {{"key", key}, {"value", "x"}, {"effect", effect}};
}

class DaemonSetTest : public ControllerTest {
 protected:
  void SetUp() override {
    ControllerTest::SetUp();
    if (HasFatalFailure()) return;
    StartController("daemonset");
  }

  void AddNode(const std::string& name, const json& labels = json::object(), const json& taints = json::array()) {
    json node = MakeNode(Unique(name));
    for (const auto& [key, value] : labels.items()) node["metadata"]["labels"][key] = value;
    if (!taints.empty()) node["spec"]["taints"] = taints;
    Create(client::kNodes, node);
  }
  json GetDs(const std::string& name) { return Get(client::kDaemonSets, name).value_or(json()); }
  // Live pods of the daemon set by target node (the node-affinity pin).
  std::map<std::string, std::vector<json>> PodsByNode(const std::string& ds) {
    std::map<std::string, std::vector<json>> out;
    for (const json& pod : List(client::kPods, "app=" + ds)) {
      if (!HasDeletionTimestamp(pod)) out[TargetNodeName(pod)].push_back(pod);
    }
    return out;
  }
  std::set<std::string> Nodes(const std::string& ds) {
    std::set<std::string> nodes;
    for (const auto& [node, pods] : PodsByNode(ds)) nodes.insert(node);
    return nodes;
  }
  std::string Image(const json& pod) { return pod["spec"]["containers"][0]["image"]; }
  void SetImage(const std::string& ds, const std::string& image) {
    Mutate(client::kDaemonSets, ds, [&](json& d) { d["spec"]["template"]["spec"]["containers"][0]["image"] = image; });
  }
  bool StatusIs(const std::string& ds, int64_t desired, int64_t updated, int64_t available) {
    const json got = GetDs(ds);
    return StatusInt(got, "desiredNumberScheduled") == desired &&
           StatusInt(got, "updatedNumberScheduled") == updated &&
           StatusInt(got, "numberAvailable") == available &&
           StatusInt(got, "observedGeneration") == got["metadata"].value("generation", -1);
  }
};

TEST_F(DaemonSetTest, OnePodPerEligibleNode) {
  AddNode("a");
  AddNode("b", {{"disk", "ssd"}});
  AddNode("tainted", json::object(), json::array({Taint("dedicated", "NoSchedule")}));
  // Cordoned and pressured nodes still run daemons (default tolerations).
  AddNode("cordoned", json::object(), json::array({Taint("node.kubernetes.io/unschedulable", "NoSchedule"),
                                                   Taint("node.kubernetes.io/memory-pressure", "NoSchedule")}));
  Create(client::kDaemonSets, MakeDaemonSet("agent"));
  const std::set<std::string> expected = {Unique("a"), Unique("b"), Unique("cordoned")};
  ASSERT_TRUE(WaitFor([&] { return Nodes("agent") == expected; }, "pods on a, b and cordoned"));
  for (const auto& [node, pods] : PodsByNode("agent")) {
    ASSERT_EQ(pods.size(), 1u) << node;
    const json& pod = pods[0];
    EXPECT_FALSE(pod["spec"].contains("nodeName"));  // the scheduler binds it
    const json term = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
                         ["nodeSelectorTerms"][0]["matchFields"][0];
    EXPECT_EQ(term, json({{"key", "metadata.name"}, {"operator", "In"}, {"values", {node}}}));
    EXPECT_FALSE(pod["metadata"]["labels"].value("controller-revision-hash", "").empty());
    EXPECT_EQ(pod["metadata"]["labels"]["pod-template-generation"], "1");
    std::set<std::string> tolerated;
    for (const json& t : pod["spec"]["tolerations"]) tolerated.insert(t.value("key", "") + ":" + t.value("effect", ""));
    for (const char* key : {"node.kubernetes.io/not-ready:NoExecute", "node.kubernetes.io/unreachable:NoExecute",
                            "node.kubernetes.io/disk-pressure:NoSchedule", "node.kubernetes.io/memory-pressure:NoSchedule",
                            "node.kubernetes.io/pid-pressure:NoSchedule", "node.kubernetes.io/unschedulable:NoSchedule"}) {
      EXPECT_TRUE(tolerated.count(key)) << key;
    }
    EXPECT_EQ(pod["metadata"]["ownerReferences"][0]["kind"], "DaemonSet");
  }
  ASSERT_TRUE(WaitFor([&] {
    const json ds = GetDs("agent");
    return StatusInt(ds, "desiredNumberScheduled") == 3 && StatusInt(ds, "currentNumberScheduled") == 3 &&
           StatusInt(ds, "numberMisscheduled") == 0 && StatusInt(ds, "numberReady") == 0;
  }, "status 3 desired/current"));
  for (const auto& [node, pods] : PodsByNode("agent")) SetPodReady(pods[0]["metadata"]["name"], true);
  ASSERT_TRUE(WaitFor([&] { return StatusIs("agent", 3, 3, 3) && StatusInt(GetDs("agent"), "numberReady") == 3; },
                      "3 ready and available"));

  // A new node gets a pod; a deleted node's pod goes; a NoExecute taint evicts it.
  AddNode("late");
  ASSERT_TRUE(WaitFor([&] { return Nodes("agent").count(Unique("late")) == 1; }, "pod on the new node"));
  ASSERT_TRUE(Delete(client::kNodes, Unique("a")));
  ASSERT_TRUE(WaitFor([&] { return Nodes("agent").count(Unique("a")) == 0; }, "pod of the deleted node gone"));
  Mutate(client::kNodes, Unique("b"), [&](json& n) { n["spec"]["taints"] = json::array({Taint("evict", "NoExecute")}); });
  ASSERT_TRUE(WaitFor([&] { return Nodes("agent").count(Unique("b")) == 0; }, "pod off the NoExecute node"));
  EXPECT_TRUE(WaitFor([&] { return EventsWithReason("SuccessfulDelete", "agent").size() >= 2; }, "delete events"));
}

TEST_F(DaemonSetTest, NodeSelectorAffinityAndTolerations) {
  AddNode("ssd-1", {{"disk", "ssd"}, {"zone", "z1"}});
  AddNode("ssd-2", {{"disk", "ssd"}, {"zone", "z2"}}, json::array({Taint("gpu", "NoSchedule")}));
  AddNode("hdd", {{"disk", "hdd"}, {"zone", "z1"}});
  json ds = MakeDaemonSet("picky");
  ds["spec"]["template"]["spec"]["nodeSelector"] = {{"disk", "ssd"}};
  ds["spec"]["template"]["spec"]["tolerations"] = json::array({{{"key", "gpu"}, {"operator", "Exists"}}});
  ds["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] = {
      {"nodeSelectorTerms", json::array({{{"matchExpressions", json::array({{{"key", "zone"}, {"operator", "In"},
                                                                              {"values", json::array({"z1", "z2"})}}})}}})}};
  Create(client::kDaemonSets, ds);
  const std::set<std::string> expected = {Unique("ssd-1"), Unique("ssd-2")};
  ASSERT_TRUE(WaitFor([&] { return Nodes("picky") == expected; }, "pods on the ssd nodes only"));
  // A relabelled node leaves (the pod counts as misscheduled no more: it is deleted).
  Mutate(client::kNodes, Unique("ssd-1"), [&](json& n) { n["metadata"]["labels"]["zone"] = "z9"; });
  ASSERT_TRUE(WaitFor([&] { return Nodes("picky") == std::set<std::string>{Unique("ssd-2")}; }, "ssd-1 pod gone"));
  ASSERT_TRUE(WaitFor([&] { return StatusInt(GetDs("picky"), "desiredNumberScheduled") == 1; }, "desired 1"));
}

TEST_F(DaemonSetTest, FailedPodIsReplaced) {
  AddNode("n");
  Create(client::kDaemonSets, MakeDaemonSet("crashy"));
  ASSERT_TRUE(WaitFor([&] { return PodsByNode("crashy")[Unique("n")].size() == 1; }, "pod"));
  const std::string first = PodsByNode("crashy")[Unique("n")][0]["metadata"]["name"];
  Mutate(client::kPods, first, [](json& p) { p["status"]["phase"] = "Failed"; }, /*status=*/true);
  ASSERT_TRUE(WaitFor([&] {
    auto pods = PodsByNode("crashy")[Unique("n")];
    return pods.size() == 1 && pods[0]["metadata"]["name"] != first;
  }, "replacement pod"));
  EXPECT_TRUE(WaitFor([&] { return EventsWithReason("FailedDaemonPod", "crashy").size() == 1; }, "FailedDaemonPod"));
}

// The failed-pod backoff belongs to the DaemonSet: one deleted and made again under the same
// name replaces its first failed pod at once (no fake time passes here), not after the old
// DaemonSet's backoff.
TEST_F(DaemonSetTest, RecreatedDaemonSetStartsWithoutBackoff) {
  AddNode("n");
  auto fail_pod_and_wait_for_replacement = [&] {
    std::vector<json> pods;
    EXPECT_TRUE(WaitFor([&] { return (pods = PodsByNode("again")[Unique("n")]).size() == 1; },
                        "pod"));
    if (pods.size() != 1) return false;
    const std::string failed = pods[0]["metadata"]["name"];
    Mutate(client::kPods, failed, [](json& p) { p["status"]["phase"] = "Failed"; },
           /*status=*/true);
    return static_cast<bool>(WaitFor([&] {
      auto now = PodsByNode("again")[Unique("n")];
      return now.size() == 1 && now[0]["metadata"]["name"] != failed;
    }, "replacement pod"));
  };
  Create(client::kDaemonSets, MakeDaemonSet("again"));
  ASSERT_TRUE(fail_pod_and_wait_for_replacement());  // the node's backoff is now 1 s
  ASSERT_TRUE(Delete(client::kDaemonSets, "again"));
  // No garbage collector runs here: play it (the old pods and ControllerRevision go).
  for (const json& pod : List(client::kPods, "app=again")) {
    Delete(client::kPods, pod["metadata"]["name"]);
  }
  for (const json& revision : List(client::kControllerRevisions, "app=again")) {
    Delete(client::kControllerRevisions, revision["metadata"]["name"]);
  }
  ASSERT_TRUE(WaitFor([&] {
    return List(client::kPods, "app=again").empty() &&
           List(client::kControllerRevisions, "app=again").empty();
  }, "old pods and history gone"));
  Create(client::kDaemonSets, MakeDaemonSet("again"));
  EXPECT_TRUE(fail_pod_and_wait_for_replacement()) << "the old DaemonSet's backoff applied";
}

TEST_F(DaemonSetTest, RollingUpdateKeepsMaxUnavailable) {
  for (const char* name : {"r1", "r2", "r3"}) AddNode(name);
  Create(client::kDaemonSets, MakeDaemonSet("roll"));
  ASSERT_TRUE(WaitFor([&] { return Nodes("roll").size() == 3; }, "3 pods"));
  ASSERT_TRUE(WaitFor([&] { ReadyAllPods("app=roll"); return StatusIs("roll", 3, 3, 3); }, "3 available"));

  SetImage("roll", "registry.k8s.io/pause:3.10");
  // maxUnavailable 1 (the default): never fewer than 2 ready pods while it rolls.
  ASSERT_TRUE(WaitFor([&] {
    int ready = 0;
    for (const auto& [node, pods] : PodsByNode("roll")) {
      for (const json& pod : pods) {
        const json* condition = FindCondition(pod, "Ready");
        if (condition != nullptr && condition->value("status", "") == "True") ++ready;
      }
    }
    EXPECT_GE(ready, 2);
    ReadyAllPods("app=roll");
    return StatusIs("roll", 3, 3, 3);
  }, 30s, "rollout to the new image"));
  for (const auto& [node, pods] : PodsByNode("roll")) {
    ASSERT_EQ(pods.size(), 1u);
    EXPECT_EQ(Image(pods[0]), "registry.k8s.io/pause:3.10");
    EXPECT_EQ(pods[0]["metadata"]["labels"]["pod-template-generation"], "2");
  }
  // History: one ControllerRevision per template, the current one numbered highest.
  ASSERT_TRUE(WaitFor([&] { return List(client::kControllerRevisions, "app=roll").size() == 2; }, "2 revisions"));
  const std::string hash = PodsByNode("roll").begin()->second[0]["metadata"]["labels"]["controller-revision-hash"];
  for (const json& revision : List(client::kControllerRevisions, "app=roll")) {
    const bool current = revision["metadata"]["labels"]["controller-revision-hash"] == hash;
    EXPECT_EQ(revision["revision"], current ? 2 : 1);
    EXPECT_EQ(revision["metadata"]["name"], "roll-" + revision["metadata"]["labels"]["controller-revision-hash"].get<std::string>());
  }
}

TEST_F(DaemonSetTest, RollingUpdateWithSurgeStartsNewPodsFirst) {
  for (const char* name : {"s1", "s2"}) AddNode(name);
  json ds = MakeDaemonSet("surge");
  ds["spec"]["updateStrategy"] = {{"type", "RollingUpdate"}, {"rollingUpdate", {{"maxSurge", 1}, {"maxUnavailable", 0}}}};
  Create(client::kDaemonSets, ds);
  ASSERT_TRUE(WaitFor([&] { ReadyAllPods("app=surge"); return StatusIs("surge", 2, 2, 2); }, "2 available"));
  SetImage("surge", "registry.k8s.io/pause:3.10");
  // One node gets a new pod beside its old one; nothing is deleted before the new pod is ready.
  ASSERT_TRUE(WaitFor([&] {
    for (const auto& [node, pods] : PodsByNode("surge")) {
      if (pods.size() == 2) return true;
    }
    return false;
  }, "a surge pod"));
  EXPECT_TRUE(EventsWithReason("SuccessfulDelete", "surge").empty());
  ASSERT_TRUE(WaitFor([&] { ReadyAllPods("app=surge"); return StatusIs("surge", 2, 2, 2); }, 30s, "rollout done"));
  for (const auto& [node, pods] : PodsByNode("surge")) {
    ASSERT_EQ(pods.size(), 1u);
    EXPECT_EQ(Image(pods[0]), "registry.k8s.io/pause:3.10");
  }
}

TEST_F(DaemonSetTest, OnDeleteReplacesOnlyDeletedPods) {
  for (const char* name : {"o1", "o2"}) AddNode(name);
  json ds = MakeDaemonSet("manual");
  ds["spec"]["updateStrategy"] = {{"type", "OnDelete"}};
  Create(client::kDaemonSets, ds);
  ASSERT_TRUE(WaitFor([&] { ReadyAllPods("app=manual"); return StatusIs("manual", 2, 2, 2); }, "2 available"));
  SetImage("manual", "registry.k8s.io/pause:3.10");
  // The new generation is observed with no pod updated.
  ASSERT_TRUE(WaitFor([&] { return StatusIs("manual", 2, 0, 2); }, "generation 2 observed, 0 updated"));
  const json victim = PodsByNode("manual")[Unique("o1")][0];
  ASSERT_TRUE(Delete(client::kPods, victim["metadata"]["name"]));
  ASSERT_TRUE(WaitFor([&] {
    auto pods = PodsByNode("manual")[Unique("o1")];
    return pods.size() == 1 && Image(pods[0]) == "registry.k8s.io/pause:3.10";
  }, "o1 recreated with the new template"));
  EXPECT_EQ(Image(PodsByNode("manual")[Unique("o2")][0]), "registry.k8s.io/pause:3.9");
}

// The ControllerRevision of an earlier DaemonSet of the same name (same template, its owner's
// uid gone, not collected: no garbage collector follows revisions) holds the name the new
// DaemonSet's revision would take: status.collisionCount goes to 1, the revision and the pods
// take the next hash, and the old revision is left as it was.
TEST_F(DaemonSetTest, TakenRevisionNameRaisesCollisionCount) {
  AddNode("c1");
  // The template as the server stores it, from a DaemonSet of the same spec in another namespace.
  const std::string probe_ns = Unique("probe");
  CreateNamespace(probe_ns);
  json probe = MakeDaemonSet("agent");
  probe["metadata"]["namespace"] = probe_ns;
  const json pod_template = Create(client::kDaemonSets, probe)["spec"]["template"];
  ASSERT_TRUE(DeleteIn(client::kDaemonSets, probe_ns, "agent"));
  const std::string taken = "agent-" + PodTemplateHash(pod_template);
  json template_patch = pod_template;
  template_patch["$patch"] = "replace";
  const json planted = Create(client::kControllerRevisions, {
      {"apiVersion", "apps/v1"},
      {"kind", "ControllerRevision"},
      {"metadata", {{"name", taken},
                    {"labels", {{"app", "agent"}}},
                    {"ownerReferences", json::array({{{"apiVersion", "apps/v1"}, {"kind", "DaemonSet"},
                                                      {"name", "agent"}, {"uid", "0d0d0d0d-gone"},
                                                      {"controller", true}}})}}},
      {"data", {{"spec", {{"template", template_patch}}}}},
      {"revision", 1}});

  const json ds = Create(client::kDaemonSets, MakeDaemonSet("agent"));
  const std::string next_hash = PodTemplateHash(pod_template, 1);
  ASSERT_TRUE(WaitFor([&] {
    ReadyAllPods("app=agent");
    return StatusIs("agent", 1, 1, 1);
  }, "the DaemonSet's pod available"));
  EXPECT_EQ(GetDs("agent").value("/status/collisionCount"_json_pointer, -1), 1);
  const auto pods = PodsByNode("agent")[Unique("c1")];
  ASSERT_EQ(pods.size(), 1u);
  EXPECT_EQ(pods[0]["metadata"]["labels"]["controller-revision-hash"], next_hash);
  const std::optional<json> revision = Get(client::kControllerRevisions, "agent-" + next_hash);
  ASSERT_TRUE(revision.has_value());
  EXPECT_EQ((*revision)["metadata"]["ownerReferences"][0]["uid"], ds["metadata"]["uid"]);
  EXPECT_EQ((*revision)["revision"], 1);
  const std::optional<json> old = Get(client::kControllerRevisions, taken);
  ASSERT_TRUE(old.has_value());
  EXPECT_EQ((*old)["metadata"]["resourceVersion"], planted["metadata"]["resourceVersion"]);

  // No loop: a later reconcile (a new node's) keeps the count and the hash.
  AddNode("c2");
  ASSERT_TRUE(WaitFor([&] { return Nodes("agent").size() == 2; }, "a pod on the new node"));
  EXPECT_EQ(PodsByNode("agent")[Unique("c2")].at(0)["metadata"]["labels"]["controller-revision-hash"], next_hash);
  EXPECT_EQ(GetDs("agent").value("/status/collisionCount"_json_pointer, -1), 1);
  EXPECT_EQ(List(client::kControllerRevisions, "app=agent").size(), 2u);
}

// A revision made before collisionCount moved is still found by its template: raising the count
// leaves the pods alone, and new pods keep the current revision's hash.
TEST_F(DaemonSetTest, RaisedCollisionCountDoesNotRollPodsOut) {
  AddNode("k1");
  Create(client::kDaemonSets, MakeDaemonSet("steady"));
  ASSERT_TRUE(WaitFor([&] { ReadyAllPods("app=steady"); return StatusIs("steady", 1, 1, 1); }, "1 available"));
  const json before = PodsByNode("steady")[Unique("k1")].at(0);
  const std::string hash = before["metadata"]["labels"]["controller-revision-hash"];

  const json counted = Mutate(client::kDaemonSets, "steady",
                              [](json& object) { object["status"]["collisionCount"] = 1; },
                              /*status=*/true);
  ASSERT_TRUE(WaitUntilCached(client::kDaemonSets, counted));
  // Barrier: the new node's reconcile reads the DaemonSet with the count.
  AddNode("k2");
  ASSERT_TRUE(WaitFor([&] { ReadyAllPods("app=steady"); return StatusIs("steady", 2, 2, 2); }, "2 available"));
  EXPECT_EQ(PodsByNode("steady")[Unique("k2")].at(0)["metadata"]["labels"]["controller-revision-hash"], hash);
  EXPECT_EQ(PodsByNode("steady")[Unique("k1")].at(0)["metadata"]["uid"], before["metadata"]["uid"]);
  const auto revisions = List(client::kControllerRevisions, "app=steady");
  ASSERT_EQ(revisions.size(), 1u);
  EXPECT_EQ(revisions[0]["metadata"]["name"], "steady-" + hash);
  EXPECT_EQ(GetDs("steady").value("/status/collisionCount"_json_pointer, -1), 1);
}

TEST(NodeEligibilityTest, TaintsTolerationsAndTerms) {
  const json node = {{"metadata", {{"name", "n1"}, {"labels", {{"zone", "z1"}, {"cores", "8"}}}}},
                     {"spec", {{"taints", json::array({{{"key", "k"}, {"value", "v"}, {"effect", "NoSchedule"}}})}}}};
  json spec = WithDaemonTolerations(json::object());
  NodeVerdict verdict = EvaluateNode(node, spec);
  EXPECT_FALSE(verdict.should_run);
  EXPECT_TRUE(verdict.should_continue_running);  // NoSchedule lets a running pod stay
  spec["tolerations"].push_back({{"key", "k"}, {"operator", "Equal"}, {"value", "v"}});
  EXPECT_TRUE(EvaluateNode(node, spec).should_run);
  EXPECT_FALSE(Tolerates({{"key", "k"}, {"value", "other"}}, node["spec"]["taints"][0]));
  EXPECT_TRUE(Tolerates({{"operator", "Exists"}}, node["spec"]["taints"][0]));
  EXPECT_FALSE(Tolerates({{"operator", "Exists"}, {"effect", "NoExecute"}}, node["spec"]["taints"][0]));

  auto terms = [](json expressions, json fields = json::array()) {
    return json::array({{{"matchExpressions", expressions}, {"matchFields", fields}}});
  };
  EXPECT_TRUE(NodeSelectorTermsMatch(terms(json::array({{{"key", "cores"}, {"operator", "Gt"}, {"values", {"4"}}}})), node));
  EXPECT_FALSE(NodeSelectorTermsMatch(terms(json::array({{{"key", "cores"}, {"operator", "Lt"}, {"values", {"4"}}}})), node));
  EXPECT_TRUE(NodeSelectorTermsMatch(terms(json::array({{{"key", "gpu"}, {"operator", "DoesNotExist"}}})), node));
  EXPECT_FALSE(NodeSelectorTermsMatch(terms(json::array({{{"key", "zone"}, {"operator", "NotIn"}, {"values", {"z1"}}}})), node));
  EXPECT_TRUE(NodeSelectorTermsMatch(
      terms(json::array(), json::array({{{"key", "metadata.name"}, {"operator", "In"}, {"values", {"n1"}}}})), node));
  EXPECT_FALSE(NodeSelectorTermsMatch(json::array({json::object()}), node));  // empty term: nothing

  json host_network = WithDaemonTolerations({{"hostNetwork", true}});
  bool network = false;
  for (const json& t : host_network["tolerations"]) network |= t["key"] == "node.kubernetes.io/network-unavailable";
  EXPECT_TRUE(network);
  const json pinned = PinToNode({{"affinity", {{"nodeAffinity", {{"preferredDuringSchedulingIgnoredDuringExecution",
                                                                  json::array({{{"weight", 1}}})}}}}}},
                                "n1");
  EXPECT_EQ(TargetNodeName({{"spec", pinned}}), "n1");
  EXPECT_TRUE(pinned["affinity"]["nodeAffinity"].contains("preferredDuringSchedulingIgnoredDuringExecution"));
}

}  // namespace
}  // namespace mk8s::controllers::test
