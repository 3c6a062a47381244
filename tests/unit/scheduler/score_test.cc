// One test per score plugin, run alone over every node with its normalization.
#include <gtest/gtest.h>

#include "fixtures.h"

namespace mk8s::scheduler::testing {
namespace {

TEST(LeastAllocatedScoreTest, PrefersEmptierNodes) {
  SchedulerCache cache;
  cache.UpsertNode(Node("empty", "4", "8Gi"));
  cache.UpsertNode(Node("half", "4", "8Gi"));
  cache.UpsertPod(Bound(Pod("x", "2", "4Gi"), "half"));
  auto s = RunScore(&cache, kNodeResourcesFit, Pod("p", "1", "2Gi"));
  // empty: (3/4 + 6/8)/2 = 75; half: (1/4 + 2/8)/2 = 25.
  EXPECT_EQ(s["empty"], 75);
  EXPECT_EQ(s["half"], 25);
}

TEST(BalancedAllocationScoreTest, PrefersBalancedUse) {
  SchedulerCache cache;
  cache.UpsertNode(Node("cpu-heavy", "4", "8Gi"));
  cache.UpsertNode(Node("balanced", "4", "8Gi"));
  cache.UpsertPod(Bound(Pod("x", "3", "1Gi"), "cpu-heavy"));
  cache.UpsertPod(Bound(Pod("y", "1", "2Gi"), "balanced"));
  auto s = RunScore(&cache, kBalancedAllocation, Pod("p", "1", "2Gi"));
  EXPECT_EQ(s["balanced"], 100);  // 2/4 cpu, 4/8 memory
  EXPECT_EQ(s["cpu-heavy"], 68);  // 4/4 vs 3/8: 1 - 0.3125
}

TEST(NodeAffinityScoreTest, PreferredTermsWeighted) {
  SchedulerCache cache;
  cache.UpsertNode(Node("ssd", "4", "8Gi", {{"disk", "ssd"}}));
  cache.UpsertNode(Node("ssd-fast", "4", "8Gi", {{"disk", "ssd"}, {"net", "fast"}}));
  cache.UpsertNode(Node("plain"));
  json pod = Pod("p");
  pod["spec"]["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] = {
      {{"weight", 30},
       {"preference",
        {{"matchExpressions", {{{"key", "disk"}, {"operator", "In"}, {"values", {"ssd"}}}}}}}},
      {{"weight", 10},
       {"preference", {{"matchExpressions", {{{"key", "net"}, {"operator", "Exists"}}}}}}}};
  auto s = RunScore(&cache, kNodeAffinity, pod);
  EXPECT_EQ(s["ssd-fast"], 100);
  EXPECT_EQ(s["ssd"], 75);
  EXPECT_EQ(s["plain"], 0);
}

TEST(TaintTolerationScoreTest, FewerPreferNoScheduleTaintsWin) {
  SchedulerCache cache;
  cache.UpsertNode(Node("clean"));
  cache.UpsertNode(WithTaint(Node("one"), "a", "1", "PreferNoSchedule"));
  cache.UpsertNode(
      WithTaint(WithTaint(Node("two"), "a", "1", "PreferNoSchedule"), "b", "", "PreferNoSchedule"));
  auto s = RunScore(&cache, kTaintToleration, Pod("p"));
  EXPECT_EQ(s["clean"], 100);
  EXPECT_EQ(s["one"], 50);
  EXPECT_EQ(s["two"], 0);
  json pod = Pod("p");
  pod["spec"]["tolerations"] = {
      {{"key", "a"}, {"operator", "Exists"}, {"effect", "PreferNoSchedule"}}};
  s = RunScore(&cache, kTaintToleration, pod);
  EXPECT_EQ(s["clean"], 100);
  EXPECT_EQ(s["one"], 100);
  EXPECT_EQ(s["two"], 0);
}

TEST(ImageLocalityScoreTest, NodesWithTheImageScoreHigher) {
  SchedulerCache cache;
  json with = Node("with");
  with["status"]["images"] = {{{"names", {"docker.io/library/nginx:latest", "nginx:latest"}},
                               {"sizeBytes", 500 * 1024 * 1024}}};
  cache.UpsertNode(with);
  cache.UpsertNode(Node("without"));
  auto s = RunScore(&cache, kImageLocality, Pod("p"));  // image "nginx"
  EXPECT_GT(s["with"], 0);
  EXPECT_EQ(s["without"], 0);
}

TEST(InterPodAffinityScoreTest, PreferredAffinityAndAntiAffinity) {
  SchedulerCache cache;
  cache.UpsertNode(Node("a", "4", "8Gi", {{"zone", "z1"}}));
  cache.UpsertNode(Node("b", "4", "8Gi", {{"zone", "z2"}}));
  cache.UpsertNode(Node("c", "4", "8Gi", {{"zone", "z3"}}));
  cache.UpsertPod(Bound(Pod("db", "", "", {{"app", "db"}}), "a"));
  cache.UpsertPod(Bound(Pod("noisy", "", "", {{"app", "noisy"}}), "b"));
  json pod = Pod("p");
  auto& aff = pod["spec"]["affinity"];
  aff["podAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] = {
      {{"weight", 50},
       {"podAffinityTerm",
        {{"labelSelector", {{"matchLabels", {{"app", "db"}}}}}, {"topologyKey", "zone"}}}}};
  aff["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"] = {
      {{"weight", 50},
       {"podAffinityTerm",
        {{"labelSelector", {{"matchLabels", {{"app", "noisy"}}}}}, {"topologyKey", "zone"}}}}};
  auto s = RunScore(&cache, kInterPodAffinity, pod);
  EXPECT_EQ(s["a"], 100);
  EXPECT_EQ(s["c"], 50);
  EXPECT_EQ(s["b"], 0);
}

TEST(PodTopologySpreadScoreTest, EmptierDomainsScoreHigher) {
  SchedulerCache cache;
  cache.UpsertNode(Node("a1", "4", "8Gi", {{"zone", "a"}}));
  cache.UpsertNode(Node("b1", "4", "8Gi", {{"zone", "b"}}));
  cache.UpsertNode(Node("c1", "4", "8Gi", {{"zone", "c"}}));
  json labels = {{"app", "web"}};
  cache.UpsertPod(Bound(Pod("w1", "", "", labels), "a1"));
  cache.UpsertPod(Bound(Pod("w2", "", "", labels), "a1"));
  cache.UpsertPod(Bound(Pod("w3", "", "", labels), "b1"));
  json pod = Pod("w4", "", "", labels);
  pod["spec"]["topologySpreadConstraints"] = {{{"maxSkew", 1},
                                               {"topologyKey", "zone"},
                                               {"whenUnsatisfiable", "ScheduleAnyway"},
                                               {"labelSelector", {{"matchLabels", labels}}}}};
  auto s = RunScore(&cache, kPodTopologySpread, pod);
  EXPECT_EQ(s["c1"], 100);
  EXPECT_GT(s["b1"], s["a1"]);
  EXPECT_LT(s["a1"], 100);
}

}  // namespace
}  // namespace mk8s::scheduler::testing
