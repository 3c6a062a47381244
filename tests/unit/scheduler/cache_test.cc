// SchedulerCache: node/pod bookkeeping, assumed pods, confirmation, forget, TTL expiry.
#include <gtest/gtest.h>

#include "fixtures.h"

namespace mk8s::scheduler::testing {
namespace {

struct FakeNow {
  std::chrono::steady_clock::time_point t =
      std::chrono::steady_clock::time_point() + std::chrono::hours(1);
  SchedulerCache::NowFn Fn() {
    return [this] { return t; };
  }
};

int64_t RequestedCpu(SchedulerCache& cache, const std::string& node) {
  std::lock_guard<std::mutex> lock(cache.mu());
  const NodeInfo* n = cache.FindNodeLocked(node);
  return n == nullptr ? -1 : n->requested().milli_cpu;
}

TEST(SchedulerCacheTest, PodsAggregateOnTheirNode) {
  SchedulerCache cache;
  cache.UpsertNode(Node("n"));
  cache.UpsertPod(Bound(Pod("a", "500m"), "n"));
  cache.UpsertPod(Bound(Pod("b", "250m"), "n"));
  cache.UpsertPod(Pod("pending", "1"));  // not bound: not in the cache
  EXPECT_EQ(RequestedCpu(cache, "n"), 750);
  EXPECT_EQ(cache.PodCount(), 2u);
  // Update replaces, not adds.
  cache.UpsertPod(Bound(Pod("a", "100m"), "n"));
  EXPECT_EQ(RequestedCpu(cache, "n"), 350);
  // Terminal pods release their resources.
  json done = Bound(Pod("b", "250m"), "n");
  done["status"]["phase"] = "Succeeded";
  cache.UpsertPod(done);
  EXPECT_EQ(RequestedCpu(cache, "n"), 100);
  cache.RemovePod(Pod("a"));
  EXPECT_EQ(RequestedCpu(cache, "n"), 0);
}

TEST(SchedulerCacheTest, PodBeforeNodeAndNodeRemoval) {
  SchedulerCache cache;
  cache.UpsertPod(Bound(Pod("early", "1"), "late"));
  EXPECT_EQ(cache.NodeCount(), 0u);
  cache.UpsertNode(Node("late"));
  EXPECT_EQ(RequestedCpu(cache, "late"), 1000);
  cache.UpsertNode(Node("other"));
  cache.RemoveNode("late");
  EXPECT_EQ(cache.NodeCount(), 1u);
  EXPECT_EQ(RequestedCpu(cache, "late"), -1);
  EXPECT_EQ(cache.NodeOf("uid-early"), "late");  // kept until the pod goes
  cache.RemovePod(Pod("early"));
  EXPECT_EQ(cache.PodCount(), 0u);
}

TEST(SchedulerCacheTest, AssumeConfirmForget) {
  FakeNow now;
  SchedulerCache cache(now.Fn(), std::chrono::seconds(30));
  cache.UpsertNode(Node("n1"));
  cache.UpsertNode(Node("n2"));
  auto pod = PodInfo::Parse(Pod("p", "1"));
  ASSERT_TRUE(cache.AssumePod(pod, "n1").ok());
  EXPECT_TRUE(cache.IsAssumed("uid-p"));
  EXPECT_EQ(RequestedCpu(cache, "n1"), 1000);
  EXPECT_EQ(cache.AssumePod(pod, "n1").code(), Code::kAlreadyExists);
  EXPECT_EQ(cache.AssumePod(PodInfo::Parse(Pod("q")), "nope").code(), Code::kNotFound);

  // The informer reports it bound (to n2, say): confirmed and moved.
  cache.UpsertPod(Bound(Pod("p", "1"), "n2"));
  EXPECT_FALSE(cache.IsAssumed("uid-p"));
  EXPECT_EQ(RequestedCpu(cache, "n1"), 0);
  EXPECT_EQ(RequestedCpu(cache, "n2"), 1000);
  EXPECT_EQ(cache.ForgetPod("uid-p").code(), Code::kNotFound);
  // Confirmed pods never expire.
  now.t += std::chrono::hours(1);
  EXPECT_EQ(cache.CleanupExpired(), 0u);
  EXPECT_EQ(RequestedCpu(cache, "n2"), 1000);

  // A failed binding is forgotten.
  ASSERT_TRUE(cache.AssumePod(PodInfo::Parse(Pod("r", "2")), "n1").ok());
  EXPECT_EQ(RequestedCpu(cache, "n1"), 2000);
  ASSERT_TRUE(cache.ForgetPod("uid-r").ok());
  EXPECT_EQ(RequestedCpu(cache, "n1"), 0);
}

TEST(SchedulerCacheTest, AssumedPodsExpireAfterTtl) {
  FakeNow now;
  SchedulerCache cache(now.Fn(), std::chrono::seconds(30));
  cache.UpsertNode(Node("n"));
  ASSERT_TRUE(cache.AssumePod(PodInfo::Parse(Pod("a", "1")), "n").ok());
  now.t += std::chrono::seconds(20);
  ASSERT_TRUE(cache.AssumePod(PodInfo::Parse(Pod("b", "1")), "n").ok());
  ASSERT_TRUE(cache.FinishBinding("uid-a").ok());  // restarts a's TTL at t=20s
  now.t += std::chrono::seconds(15);               // t=35s
  EXPECT_EQ(cache.CleanupExpired(), 0u);
  now.t += std::chrono::seconds(16);  // t=51s: a (deadline 50s) and b (deadline 50s) expire
  EXPECT_EQ(cache.CleanupExpired(), 2u);
  EXPECT_EQ(RequestedCpu(cache, "n"), 0);
  EXPECT_EQ(cache.PodCount(), 0u);
}

TEST(SchedulerCacheTest, ExpiryFreesCapacityForTheScheduler) {
  FakeNow now;
  SchedulerCache cache(now.Fn(), std::chrono::seconds(30));
  cache.UpsertNode(Node("n", "1"));
  auto s = MakeScheduler(&cache);
  EXPECT_TRUE(s->ScheduleAndAssume(Pod("a", "1")).ok());
  EXPECT_FALSE(s->ScheduleAndAssume(Pod("b", "1")).ok());
  now.t += std::chrono::seconds(31);
  EXPECT_EQ(s->ScheduleAndAssume(Pod("b", "1")).node, "n");  // the cycle drops expired pods
}

TEST(SchedulerCacheTest, UnboundUpdateKeepsAnAssumedPod) {
  SchedulerCache cache;
  cache.UpsertNode(Node("n"));
  ASSERT_TRUE(cache.AssumePod(PodInfo::Parse(Pod("a", "1")), "n").ok());
  cache.UpsertPod(Pod("a", "1"));  // a status update that predates the binding
  EXPECT_TRUE(cache.IsAssumed("uid-a"));
  EXPECT_EQ(RequestedCpu(cache, "n"), 1000);
}

}  // namespace
}  // namespace mk8s::scheduler::testing
