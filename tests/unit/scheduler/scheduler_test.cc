// End-to-end behaviour of Scheduler over the default profile: messages, bursts, spreading,
// tie-breaks, registry injection, and a 5,000-node timing print.
#include <gtest/gtest.h>

#include <chrono>
#include <iostream>
#include <set>

#include "fixtures.h"

namespace mk8s::scheduler::testing {
namespace {

TEST(SchedulerTest, FailedSchedulingMessageMixedReasons) {
  SchedulerCache cache;
  cache.UpsertNode(Node("small", "1", "8Gi"));
  cache.UpsertNode(WithTaint(Node("down1"), "node.kubernetes.io/unreachable", "", "NoExecute"));
  cache.UpsertNode(WithTaint(Node("down2"), "node.kubernetes.io/unreachable", "", "NoExecute"));
  auto s = MakeScheduler(&cache);
  ASSERT_NE(s, nullptr);
  ScheduleResult r = s->Schedule(Pod("p", "2"));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.message,
            "0/3 nodes are available: 1 Insufficient cpu, 2 node(s) had untolerated taint "
            "{node.kubernetes.io/unreachable: }. preemption: 0/3 nodes are available: 1 No "
            "preemption victims found for incoming pod, 2 Preemption is not helpful for "
            "scheduling.");
  EXPECT_EQ(r.reasons.size(), 2u);
}

TEST(SchedulerTest, MessageCountsEveryReasonOfANode) {
  SchedulerCache cache;
  cache.UpsertNode(Node("a", "1", "1Gi"));
  cache.UpsertNode(Node("b", "1", "1Gi"));
  json cordoned = Node("c");
  cordoned["spec"]["unschedulable"] = true;
  cache.UpsertNode(cordoned);
  SchedulerOptions opts;
  opts.preemption_message = false;
  auto s = Scheduler::Create(&cache, PluginRegistry::InTree(), Profile::Default(), opts);
  ASSERT_TRUE(s.ok());
  ScheduleResult r = (*s)->Schedule(Pod("p", "2", "2Gi"));
  EXPECT_EQ(r.message,
            "0/3 nodes are available: 1 node(s) were unschedulable, 2 Insufficient cpu, 2 "
            "Insufficient memory.");
}

TEST(SchedulerTest, NoNodes) {
  SchedulerCache cache;
  auto s = MakeScheduler(&cache);
  ScheduleResult r = s->Schedule(Pod("p"));
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.message, "no nodes available to schedule pods");
}

TEST(SchedulerTest, GpuPodLandsOnGpuNode) {
  SchedulerCache cache;
  for (int i = 0; i < 5; ++i) cache.UpsertNode(Node("cpu" + std::to_string(i), "64", "256Gi"));
  cache.UpsertNode(Node("gpu", "8", "32Gi", json::object(), {{"nvidia.com/gpu", "1"}}));
  auto s = MakeScheduler(&cache);
  json pod = Pod("train", "1", "1Gi");
  pod["spec"]["containers"][0]["resources"]["limits"] = {{"nvidia.com/gpu", "1"}};
  ScheduleResult r = s->ScheduleAndAssume(pod);
  EXPECT_EQ(r.node, "gpu");
  ASSERT_TRUE(r.assume_status.ok());
  // The only GPU is now taken by the assumed pod.
  pod["metadata"]["uid"] = "uid-train-2";
  r = s->ScheduleAndAssume(pod);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.reasons["Insufficient nvidia.com/gpu"], 6);
}

TEST(SchedulerTest, TaintedNodesNeedTolerations) {
  SchedulerCache cache;
  cache.UpsertNode(WithTaint(Node("a"), "k", "v", "NoSchedule"));
  cache.UpsertNode(WithTaint(Node("b"), "k2", "", "NoExecute"));
  auto s = MakeScheduler(&cache);
  EXPECT_FALSE(s->Schedule(Pod("p")).ok());
  json pod = Pod("p");
  pod["spec"]["tolerations"] = {{{"key", "k2"}, {"operator", "Exists"}, {"effect", "NoExecute"}}};
  EXPECT_EQ(s->Schedule(pod).node, "b");
  pod["spec"]["tolerations"] = {{{"operator", "Exists"}}};
  EXPECT_TRUE(s->Schedule(pod).ok());
}

TEST(SchedulerTest, AntiAffinitySpreadsReplicasAndFourthIsUnschedulable) {
  SchedulerCache cache;
  for (const char* n : {"n1", "n2", "n3"}) cache.UpsertNode(Node(n));
  auto s = MakeScheduler(&cache);
  json labels = {{"app", "web"}};
  std::set<std::string> used;
  for (int i = 0; i < 4; ++i) {
    json pod = Pod("web-" + std::to_string(i), "100m", "", labels);
    pod["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] = {
        {{"labelSelector", {{"matchLabels", labels}}}, {"topologyKey", "kubernetes.io/hostname"}}};
    ScheduleResult r = s->ScheduleAndAssume(pod);
    if (i < 3) {
      ASSERT_TRUE(r.ok()) << r.message;
      used.insert(r.node);
    } else {
      EXPECT_FALSE(r.ok());
      // Each node fails the incoming pod's own anti-affinity first.
      EXPECT_EQ(r.message,
                "0/3 nodes are available: 3 node(s) didn't match pod anti-affinity rules. "
                "preemption: 0/3 nodes are available: 3 No preemption victims found for incoming "
                "pod.");
    }
  }
  EXPECT_EQ(used.size(), 3u);
}

TEST(SchedulerTest, ExistingAntiAffinityMessage) {
  SchedulerCache cache;
  for (const char* n : {"n1", "n2"}) cache.UpsertNode(Node(n));
  json labels = {{"app", "web"}};
  for (const char* n : {"n1", "n2"}) {
    json pod = Pod(std::string("guard-") + n);
    pod["spec"]["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] = {
        {{"labelSelector", {{"matchLabels", labels}}}, {"topologyKey", "kubernetes.io/hostname"}}};
    cache.UpsertPod(Bound(pod, n));
  }
  auto s = MakeScheduler(&cache);
  ScheduleResult r = s->Schedule(Pod("w", "", "", labels));
  EXPECT_EQ(r.reasons["node(s) didn't satisfy existing pods anti-affinity rules"], 2);
}

TEST(SchedulerTest, TopologySpreadOverZones) {
  SchedulerCache cache;
  for (const char* zone : {"a", "b", "c"}) {
    for (int i = 0; i < 2; ++i) {
      cache.UpsertNode(Node(std::string(zone) + std::to_string(i), "8", "16Gi",
                            {{"topology.kubernetes.io/zone", zone}}));
    }
  }
  auto s = MakeScheduler(&cache);
  json labels = {{"app", "api"}};
  std::map<char, int> per_zone;
  for (int i = 0; i < 9; ++i) {
    json pod = Pod("api-" + std::to_string(i), "100m", "", labels);
    pod["spec"]["topologySpreadConstraints"] = {{{"maxSkew", 1},
                                                 {"topologyKey", "topology.kubernetes.io/zone"},
                                                 {"whenUnsatisfiable", "DoNotSchedule"},
                                                 {"labelSelector", {{"matchLabels", labels}}}}};
    ScheduleResult r = s->ScheduleAndAssume(pod);
    ASSERT_TRUE(r.ok()) << r.message;
    ++per_zone[r.node[0]];
    // After every placement the zones differ by at most one.
    int mn = 100, mx = 0;
    for (char z : {'a', 'b', 'c'}) {
      mn = std::min(mn, per_zone[z]);
      mx = std::max(mx, per_zone[z]);
    }
    EXPECT_LE(mx - mn, 1);
  }
  EXPECT_EQ(per_zone['a'], 3);
  EXPECT_EQ(per_zone['b'], 3);
  EXPECT_EQ(per_zone['c'], 3);
}

TEST(SchedulerTest, AssumedPodsPreventOvercommitInABurst) {
  SchedulerCache cache;
  for (const char* n : {"n1", "n2", "n3"}) cache.UpsertNode(Node(n, "2", "8Gi"));
  auto s = MakeScheduler(&cache);
  std::map<std::string, int> per_node;
  int placed = 0;
  for (int i = 0; i < 10; ++i) {
    ScheduleResult r = s->ScheduleAndAssume(Pod("p" + std::to_string(i), "1"));
    if (r.ok()) {
      ASSERT_TRUE(r.assume_status.ok());
      ++placed;
      ++per_node[r.node];
    } else {
      EXPECT_EQ(r.message,
                "0/3 nodes are available: 3 Insufficient cpu. preemption: 0/3 nodes are "
                "available: 3 No preemption victims found for incoming pod.");
    }
  }
  EXPECT_EQ(placed, 6);
  for (const auto& [node, n] : per_node) EXPECT_EQ(n, 2) << node;
}

TEST(SchedulerTest, TieBreakIsDeterministicWithASeed) {
  SchedulerCache cache;
  for (int i = 0; i < 20; ++i) cache.UpsertNode(Node("n" + std::to_string(i)));
  auto pick = [&](uint64_t seed) {
    auto s = MakeScheduler(&cache, Profile::Default(), seed);
    std::vector<std::string> out;
    for (int i = 0; i < 10; ++i) out.push_back(s->Schedule(Pod("p" + std::to_string(i))).node);
    return out;
  };
  EXPECT_EQ(pick(7), pick(7));
  // All nodes tie: a different seed makes different picks (overwhelmingly likely with 20 nodes).
  EXPECT_NE(pick(7), pick(8));

  // The injected RNG picks among the tied nodes in the order examined: 0 is the first.
  SchedulerOptions opts;
  // It is asked once per cycle, with the number of nodes tied.
  std::vector<uint64_t> asked;
  opts.rand_below = [&asked](uint64_t n) {
    asked.push_back(n);
    return uint64_t{0};
  };
  auto s = Scheduler::Create(&cache, PluginRegistry::InTree(), Profile::Default(), opts);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ((*s)->Schedule(Pod("p")).node, "n0");
  EXPECT_EQ(asked, std::vector<uint64_t>{20});
}

TEST(SchedulerTest, HigherScoreWins) {
  SchedulerCache cache;
  cache.UpsertNode(Node("busy", "4", "8Gi"));
  cache.UpsertNode(Node("idle", "4", "8Gi"));
  cache.UpsertPod(Bound(Pod("x", "3", "6Gi"), "busy"));
  auto s = MakeScheduler(&cache);
  ScheduleResult r = s->Schedule(Pod("p", "500m", "512Mi"));
  EXPECT_EQ(r.node, "idle");
  EXPECT_GT(r.total_score, 0);
  EXPECT_EQ(r.all_scores.size(), 2u);
  EXPECT_EQ(r.plugin_scores.size(), Profile::Default().scorers.size());
}

// A test-only plugin injected through the registry: only nodes labelled "pick=me" pass, and
// nodes named "z*" score 100.
class PickMe final : public Plugin, public FilterPlugin, public ScorePlugin {
 public:
  std::string_view Name() const override { return "PickMe"; }
  FilterPlugin* AsFilter() override { return this; }
  ScorePlugin* AsScore() override { return this; }
  bool Filter(const CycleContext&, const NodeInfo& node, FailureReasons* reasons) override {
    const std::string* v = node.labels().Find("pick");
    if (v != nullptr && *v == "me") return true;
    reasons->emplace_back("node(s) were not picked");
    return false;
  }
  int64_t Score(const CycleContext&, const NodeInfo& node) override {
    return node.name()[0] == 'z' ? 100 : 0;
  }
};

TEST(PluginRegistryTest, InjectedFactoryExtendsTheProfile) {
  PluginRegistry reg = PluginRegistry::InTree();
  ASSERT_TRUE(reg.Register("PickMe", [](const json&) { return std::make_unique<PickMe>(); }).ok());
  EXPECT_EQ(reg.Register("PickMe", [](const json&) { return std::make_unique<PickMe>(); }).code(),
            Code::kAlreadyExists);
  Profile p = Profile::Default();
  p.filters.push_back("PickMe");
  p.scorers.push_back({"PickMe", 10});
  SchedulerCache cache;
  cache.UpsertNode(Node("a", "4", "8Gi", {{"pick", "me"}}));
  cache.UpsertNode(Node("zed", "4", "8Gi", {{"pick", "me"}}));
  cache.UpsertNode(Node("no"));
  auto s = Scheduler::Create(&cache, reg, p);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ((*s)->Schedule(Pod("x")).node, "zed");

  Profile bad;
  bad.filters = {"Nope"};
  EXPECT_EQ(Scheduler::Create(&cache, reg, bad).status().code(), Code::kNotFound);
  bad.filters = {kBalancedAllocation};
  EXPECT_EQ(Scheduler::Create(&cache, reg, bad).status().code(), Code::kInvalidArgument);
}

TEST(SchedulerTest, NumFeasibleNodesToFindIsAdaptive) {
  EXPECT_EQ(Scheduler::NumFeasibleNodesToFind(0, 50), 50u);
  EXPECT_EQ(Scheduler::NumFeasibleNodesToFind(0, 100), 100u);    // max(50% of 100, 100)
  EXPECT_EQ(Scheduler::NumFeasibleNodesToFind(0, 1000), 420u);   // 42%
  EXPECT_EQ(Scheduler::NumFeasibleNodesToFind(0, 5000), 500u);   // 10%
  EXPECT_EQ(Scheduler::NumFeasibleNodesToFind(0, 10000), 500u);  // 5% floor
  EXPECT_EQ(Scheduler::NumFeasibleNodesToFind(100, 5000), 5000u);
  EXPECT_EQ(Scheduler::NumFeasibleNodesToFind(1, 5000), 100u);
}

// Not a timed assertion: prints the per-pod cost with 5,000 nodes for the report/benchmarks.
TEST(SchedulerTimingTest, FiveThousandNodes) {
  SchedulerCache cache;
  const char* zones[] = {"a", "b", "c"};
  for (int i = 0; i < 5000; ++i) {
    cache.UpsertNode(Node("node-" + std::to_string(i), "32", "128Gi",
                          {{"topology.kubernetes.io/zone", zones[i % 3]}}));
  }
  SchedulerOptions opts;
  opts.seed = 3;
  auto s = Scheduler::Create(&cache, PluginRegistry::InTree(), Profile::Default(), opts);
  ASSERT_TRUE(s.ok());
  const int kPods = 3000;
  std::vector<json> pods;
  pods.reserve(kPods);
  for (int i = 0; i < kPods; ++i) pods.push_back(Pod("p" + std::to_string(i), "100m", "128Mi"));
  auto start = std::chrono::steady_clock::now();
  int placed = 0;
  for (const json& p : pods) placed += (*s)->ScheduleAndAssume(p).ok() ? 1 : 0;
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(placed, kPods);
  std::cout << "[timing] 5000 nodes, " << kPods << " plain pods: " << (secs * 1e6 / kPods)
            << " us/pod (" << (kPods / secs) << " pods/s), incl. JSON parse and assume\n";

  // Pods using topology spread pay for counting existing pods.
  start = std::chrono::steady_clock::now();
  const int kSpread = 300;
  for (int i = 0; i < kSpread; ++i) {
    json pod = Pod("s" + std::to_string(i), "100m", "", {{"app", "s"}});
    pod["spec"]["topologySpreadConstraints"] = {
        {{"maxSkew", 1},
         {"topologyKey", "topology.kubernetes.io/zone"},
         {"whenUnsatisfiable", "DoNotSchedule"},
         {"labelSelector", {{"matchLabels", {{"app", "s"}}}}}}};
    EXPECT_TRUE((*s)->ScheduleAndAssume(pod).ok());
  }
  secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "[timing] 5000 nodes, " << kSpread << " zone-spread pods (" << kPods
            << " pods in cluster): " << (secs * 1e6 / kSpread) << " us/pod\n";
}

}  // namespace
}  // namespace mk8s::scheduler::testing
