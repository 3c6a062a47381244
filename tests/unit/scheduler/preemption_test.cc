// Scheduler::Preempt (upstream's DefaultPreemption) and the nominated pods the cycle holds room
// for: who is evicted, which node is picked, and when preemption declines.
#include <gtest/gtest.h>

#include <set>

#include "fixtures.h"

namespace mk8s::scheduler::testing {
namespace {

json WithPriority(json pod, int64_t priority) {
  pod["spec"]["priority"] = priority;
  return pod;
}

std::set<std::string> Names(const PreemptionResult& r) {
  std::set<std::string> out;
  for (const auto& v : r.victims) out.insert(v->name);
  return out;
}

TEST(PreemptionTest, EvictsOnlyWhatTheHigherPriorityPodNeeds) {
  SchedulerCache cache;
  cache.UpsertNode(Node("n1", "4"));
  cache.UpsertPod(Bound(WithPriority(Pod("low-a", "1"), 10), "n1"));
  cache.UpsertPod(Bound(WithPriority(Pod("low-b", "1"), 10), "n1"));
  cache.UpsertPod(Bound(WithPriority(Pod("mid", "1"), 500), "n1"));
  cache.UpsertPod(Bound(WithPriority(Pod("same", "1"), 1000), "n1"));
  auto s = MakeScheduler(&cache);
  const json pod = WithPriority(Pod("important", "2"), 1000);
  ASSERT_FALSE(s->Schedule(pod).ok());
  PreemptionResult r = s->Preempt(pod);
  EXPECT_EQ(r.node, "n1");
  // Two CPUs are needed: the two least important pods go, `mid` is reprieved, equal priority is
  // never a victim.
  EXPECT_EQ(Names(r), (std::set<std::string>{"low-a", "low-b"}));
  EXPECT_EQ(cache.PodCount(), 4u);  // Preempt changes nothing
}

TEST(PreemptionTest, PicksTheNodeWithTheLeastImportantVictims) {
  SchedulerCache cache;
  cache.UpsertNode(Node("busy-mid", "2"));
  cache.UpsertNode(Node("busy-low", "2"));
  cache.UpsertNode(Node("busy-many", "2"));
  cache.UpsertPod(Bound(WithPriority(Pod("m", "2"), 100), "busy-mid"));
  cache.UpsertPod(Bound(WithPriority(Pod("l", "2"), 5), "busy-low"));
  cache.UpsertPod(Bound(WithPriority(Pod("x1", "1"), 5), "busy-many"));
  cache.UpsertPod(Bound(WithPriority(Pod("x2", "1"), 5), "busy-many"));
  auto s = MakeScheduler(&cache);
  PreemptionResult r = s->Preempt(WithPriority(Pod("p", "2"), 1000));
  // busy-low and busy-many tie on the highest victim priority (5); busy-low's sum is smaller.
  EXPECT_EQ(r.node, "busy-low");
  EXPECT_EQ(Names(r), (std::set<std::string>{"l"}));
}

TEST(PreemptionTest, AvoidsVictimsWhoseBudgetIsSpent) {
  SchedulerCache cache;
  cache.UpsertNode(Node("guarded", "2"));
  cache.UpsertNode(Node("free", "2"));
  cache.UpsertPod(Bound(WithPriority(Pod("db", "2", "", {{"app", "db"}}), 0), "guarded"));
  cache.UpsertPod(Bound(WithPriority(Pod("batch", "2", "", {{"app", "batch"}}), 100), "free"));
  auto s = MakeScheduler(&cache);
  const json pod = WithPriority(Pod("p", "2"), 1000);
  // Without budgets the least important victim wins: `db` (priority 0).
  EXPECT_EQ(s->Preempt(pod).node, "guarded");
  // `db`'s budget allows no disruption: the node whose victim violates nothing is preferred,
  // even though that victim is more important.
  std::vector<DisruptionBudget> budgets = {
      {"default", LabelSelector::Parse({{"matchLabels", {{"app", "db"}}}}), 0}};
  PreemptionResult r = s->Preempt(pod, budgets);
  EXPECT_EQ(r.node, "free");
  EXPECT_EQ(Names(r), (std::set<std::string>{"batch"}));
  EXPECT_EQ(r.budget_violations, 0);
  // With only budget-violating victims left, preemption still goes ahead (as upstream) and says so.
  budgets.push_back({"default", LabelSelector::Parse(json::object()), 0});  // the whole namespace
  r = s->Preempt(pod, budgets);
  EXPECT_FALSE(r.node.empty());
  EXPECT_EQ(r.budget_violations, 1);
}

TEST(PreemptionTest, DeclinesWhenEvictionCannotHelp) {
  SchedulerCache cache;
  cache.UpsertNode(WithTaint(Node("tainted", "4"), "dedicated", "gpu", "NoSchedule"));
  cache.UpsertNode(Node("small", "1"));
  cache.UpsertPod(Bound(WithPriority(Pod("low", "1"), 0), "tainted"));
  cache.UpsertPod(Bound(WithPriority(Pod("low2", "1"), 0), "small"));
  auto s = MakeScheduler(&cache);
  // Needs 2 CPUs: the untainted node is too small even empty, the tainted one is untolerated.
  PreemptionResult r = s->Preempt(WithPriority(Pod("p", "2"), 1000));
  EXPECT_TRUE(r.node.empty());
  EXPECT_EQ(r.message,
            "preemption: 0/2 nodes are available: 1 No preemption victims found for incoming "
            "pod, 1 Preemption is not helpful for scheduling.");
}

TEST(PreemptionTest, NeverPolicyAndEqualPriorityDoNotPreempt) {
  SchedulerCache cache;
  cache.UpsertNode(Node("n1", "1"));
  cache.UpsertPod(Bound(WithPriority(Pod("low", "1"), 0), "n1"));
  auto s = MakeScheduler(&cache);
  json never = WithPriority(Pod("never", "1"), 1000);
  never["spec"]["preemptionPolicy"] = "Never";
  ScheduleResult failed = s->Schedule(never);
  EXPECT_EQ(failed.message,
            "0/1 nodes are available: 1 Insufficient cpu. preemption: not eligible due to "
            "preemptionPolicy=Never.");
  PreemptionResult r = s->Preempt(never);
  EXPECT_TRUE(r.node.empty());
  EXPECT_EQ(r.message, "preemption: not eligible due to preemptionPolicy=Never.");
  EXPECT_TRUE(s->Preempt(WithPriority(Pod("peer", "1"), 0)).node.empty());
}

TEST(PreemptionTest, WaitsWhileItsVictimsTerminate) {
  SchedulerCache cache;
  cache.UpsertNode(Node("n1", "2"));
  json going = Bound(WithPriority(Pod("going", "1"), 0), "n1");
  going["metadata"]["deletionTimestamp"] = "2026-11-27T00:00:00Z";
  cache.UpsertPod(going);
  cache.UpsertPod(Bound(WithPriority(Pod("other", "1"), 0), "n1"));
  auto s = MakeScheduler(&cache);
  json pod = WithPriority(Pod("p", "2"), 1000);
  pod["status"]["nominatedNodeName"] = "n1";
  PreemptionResult r = s->Preempt(pod);
  EXPECT_TRUE(r.node.empty());
  EXPECT_EQ(r.message, "preemption: not eligible due to a terminating pod on the nominated node.");
  // Without the nomination, terminating pods are not victims again: only `other` is.
  pod["status"].erase("nominatedNodeName");
  EXPECT_TRUE(s->Preempt(pod).node.empty());  // 1 CPU left after `other`: `going` still counts
}

TEST(PreemptionTest, NominatedPodsKeepTheirRoomFromLowerPriorityPods) {
  SchedulerCache cache;
  cache.UpsertNode(Node("n1", "2"));
  auto s = MakeScheduler(&cache);
  const json preemptor = WithPriority(Pod("preemptor", "2"), 1000);
  cache.SetNominated(PodInfo::Parse(preemptor), "n1");
  // A lower-priority pod may not take the room held for the preemptor...
  ScheduleResult low = s->Schedule(WithPriority(Pod("low", "1"), 0));
  EXPECT_FALSE(low.ok());
  EXPECT_EQ(low.fit_message, "0/1 nodes are available: 1 Insufficient cpu.");
  // ...a more important one may, and the preemptor itself fits its own room.
  EXPECT_EQ(s->Schedule(WithPriority(Pod("vip", "1"), 2000)).node, "n1");
  EXPECT_EQ(s->ScheduleAndAssume(preemptor).node, "n1");
  // Once placed, the nomination is gone.
  EXPECT_FALSE(s->Schedule(WithPriority(Pod("low2", "1"), 0)).ok());  // n1 is full now
  ASSERT_TRUE(cache.ForgetPod(PodKey(preemptor)).ok());
  EXPECT_EQ(s->Schedule(WithPriority(Pod("low3", "1"), 0)).node, "n1");
}

TEST(PreemptionTest, APreemptorDisplacesLowerPriorityNominations) {
  SchedulerCache cache;
  cache.UpsertNode(Node("n1", "4"));
  cache.UpsertNode(Node("n2", "4"));
  const json low = WithPriority(Pod("low", "1"), 10);
  const json mid = WithPriority(Pod("mid", "1"), 500);
  const json elsewhere = WithPriority(Pod("elsewhere", "1"), 10);
  const json preemptor = WithPriority(Pod("preemptor", "2"), 1000);
  cache.SetNominated(PodInfo::Parse(low), "n1");
  cache.SetNominated(PodInfo::Parse(mid), "n1");
  cache.SetNominated(PodInfo::Parse(elsewhere), "n2");
  cache.SetNominated(PodInfo::Parse(preemptor), "n1");
  // Only the pods below the preemptor's priority and nominated to its node lose their room.
  auto taken = cache.TakeNominatedBelow("n1", 1000);
  std::set<std::string> names;
  for (const auto& p : taken) names.insert(p->name);
  EXPECT_EQ(names, (std::set<std::string>{"low", "mid"}));
  EXPECT_TRUE(cache.TakeNominatedBelow("n1", 1000).empty());  // taken once
  std::lock_guard lock(cache.mu());
  ASSERT_EQ(cache.NominatedLocked("n1").size(), 1u);
  EXPECT_EQ(cache.NominatedLocked("n1")[0]->name, "preemptor");
  EXPECT_EQ(cache.NominatedLocked("n2").size(), 1u);
}

TEST(PreemptionTest, EligibilityTellsWhetherANominationIsKept) {
  SchedulerCache cache;
  cache.UpsertNode(Node("n1", "2"));
  cache.UpsertPod(Bound(WithPriority(Pod("same", "2"), 1000), "n1"));
  auto s = MakeScheduler(&cache);
  // Eligible, but nothing of lower priority to evict: the caller clears any nomination.
  PreemptionResult none = s->Preempt(WithPriority(Pod("p", "1"), 1000));
  EXPECT_TRUE(none.node.empty());
  EXPECT_TRUE(none.eligible);
  // preemptionPolicy Never: not eligible, a nomination (if any) is left alone.
  json never = WithPriority(Pod("q", "1"), 1000);
  never["spec"]["preemptionPolicy"] = "Never";
  EXPECT_FALSE(s->Preempt(never).eligible);
}

}  // namespace
}  // namespace mk8s::scheduler::testing
