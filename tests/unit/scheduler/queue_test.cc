// SchedulingQueue: priority order, backoff growth, unschedulable pods parked until a cluster
// change or the timeout, moves during an attempt, deletes, all on a fake clock.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>

#include <nlohmann/json.hpp>

#include "scheduler/service/scheduling_queue.h"

namespace mk8s::scheduler {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
using TimePoint = std::chrono::steady_clock::time_point;

std::shared_ptr<const json> Pod(const std::string& uid, int64_t priority = 0,
                                const std::string& image = "app") {
  return std::make_shared<const json>(
      json{{"metadata", {{"name", uid}, {"namespace", "default"}, {"uid", uid}}},
           {"spec", {{"priority", priority}, {"containers", {{{"image", image}}}}}}});
}

class SchedulingQueueTest : public ::testing::Test {
 protected:
  SchedulingQueueTest() {
    options_.now = [this] { return TimePoint() + milliseconds(now_ms_.load()); };
    options_.poll = milliseconds(5);
    queue_ = std::make_unique<SchedulingQueue>(options_);
  }
  void Advance(milliseconds d) { now_ms_ += d.count(); }
  // Pops without blocking for long: nullopt when nothing is active by the fake clock.
  std::optional<QueuedPod> PopNow() {
    return queue_->Pop(std::chrono::steady_clock::now() + milliseconds(20));
  }
  std::string PopUid() {
    auto pod = PopNow();
    return pod ? pod->uid : "";
  }

  std::atomic<int64_t> now_ms_{1000000};
  SchedulingQueueOptions options_;
  std::unique_ptr<SchedulingQueue> queue_;
};

TEST_F(SchedulingQueueTest, HigherPriorityFirstThenOldestFirst) {
  queue_->AddOrUpdate(Pod("low-1"));
  Advance(milliseconds(1));
  queue_->AddOrUpdate(Pod("high", 100));
  Advance(milliseconds(1));
  queue_->AddOrUpdate(Pod("low-2"));
  EXPECT_EQ(PopUid(), "high");
  EXPECT_EQ(PopUid(), "low-1");
  EXPECT_EQ(PopUid(), "low-2");
  EXPECT_EQ(PopUid(), "");
}

TEST_F(SchedulingQueueTest, AnUpdateDoesNotQueueAPodTwice) {
  queue_->AddOrUpdate(Pod("a"));
  queue_->AddOrUpdate(Pod("a", 0, "other-image"));
  auto popped = PopNow();
  ASSERT_TRUE(popped);
  EXPECT_EQ((*popped->pod)["spec"]["containers"][0]["image"], "other-image");  // the latest
  EXPECT_EQ(PopUid(), "");
}

TEST_F(SchedulingQueueTest, BackoffDoublesUpToTheCap) {
  queue_->AddOrUpdate(Pod("a"));
  for (int attempt = 1; attempt <= 6; ++attempt) {
    auto pod = PopNow();
    ASSERT_TRUE(pod) << "attempt " << attempt;
    queue_->AddBackoff(*pod);
    const milliseconds expected = std::min(milliseconds(1000 << (attempt - 1)), milliseconds(10000));
    Advance(expected - milliseconds(1));
    EXPECT_EQ(PopUid(), "") << "still backing off after attempt " << attempt;
    Advance(milliseconds(1));
    EXPECT_EQ(queue_->counts().backoff, 1u);
  }
  EXPECT_EQ(PopUid(), "a");
}

TEST_F(SchedulingQueueTest, UnschedulablePodsWaitForAClusterChange) {
  queue_->AddOrUpdate(Pod("a"));
  auto pod = PopNow();
  ASSERT_TRUE(pod);
  queue_->AddUnschedulable(*pod);
  Advance(seconds(60));
  EXPECT_EQ(PopUid(), "") << "parked: nothing changed";
  EXPECT_EQ(queue_->counts().unschedulable, 1u);
  queue_->MoveAllToActive();  // e.g. a node was added; the 1 s backoff already passed
  EXPECT_EQ(PopUid(), "a");
}

TEST_F(SchedulingQueueTest, AConditionalMoveRetriesOnlyThePodsItMayHelp) {
  for (const char* uid : {"a-needs-peer", "b-plain", "c-in-flight-peer"}) queue_->AddOrUpdate(Pod(uid));
  for (int i = 0; i < 2; ++i) {
    auto pod = PopNow();
    ASSERT_TRUE(pod);
    queue_->AddUnschedulable(*pod);
  }
  auto in_flight = PopNow();  // the third pod (uid order), still being scheduled
  ASSERT_TRUE(in_flight);
  Advance(seconds(60));
  const auto may_help = [](const json& pod) {
    return pod["metadata"]["name"].get<std::string>().find("peer") != std::string::npos;
  };
  queue_->MoveToActiveIf(may_help);
  EXPECT_EQ(PopUid(), "a-needs-peer");
  EXPECT_EQ(PopUid(), "") << "the plain pod stays parked";
  EXPECT_EQ(queue_->counts().unschedulable, 1u);
  // The in-flight pod the move may help fails: it is retried after its backoff, not parked.
  queue_->AddUnschedulable(*in_flight);
  EXPECT_EQ(queue_->counts().unschedulable, 1u);
  Advance(seconds(2));
  EXPECT_EQ(PopUid(), "c-in-flight-peer");
}

// A hint given while a pod is in flight is judged at its verdict: one that cannot help the pod
// leaves it parked; one given before the pod was popped does not count.
TEST_F(SchedulingQueueTest, AnInFlightPodIsJudgedByTheHintsGivenDuringItsAttempt) {
  const auto helps_peers = [](const json& pod) {
    return pod["metadata"]["name"].get<std::string>().find("peer") != std::string::npos;
  };
  queue_->MoveToActiveIf(helps_peers);  // before any pop: no effect on later attempts
  queue_->AddOrUpdate(Pod("a-peer"));
  queue_->AddOrUpdate(Pod("b-plain"));
  auto peer = PopNow();
  auto plain = PopNow();
  ASSERT_TRUE(peer && plain);
  queue_->AddUnschedulable(*peer);
  EXPECT_EQ(queue_->counts().unschedulable, 1u) << "the earlier hint does not move it";
  queue_->MoveToActiveIf(helps_peers);  // moves the parked peer; the plain pod is in flight
  queue_->AddUnschedulable(*plain);
  EXPECT_EQ(queue_->counts().unschedulable, 1u) << "the plain pod is parked, the peer is not";
  Advance(seconds(60));
  EXPECT_EQ(PopUid(), "a-peer");
  EXPECT_EQ(PopUid(), "");
}

TEST_F(SchedulingQueueTest, UnschedulablePodsAreRetriedAfterTheTimeout) {
  queue_->AddOrUpdate(Pod("a"));
  auto pod = PopNow();
  queue_->AddUnschedulable(*pod);
  Advance(milliseconds(5 * 60 * 1000 - 1));
  EXPECT_EQ(PopUid(), "");
  Advance(milliseconds(1));
  EXPECT_EQ(PopUid(), "a");
}

TEST_F(SchedulingQueueTest, AStatusOnlyUpdateKeepsAPodParkedButASpecChangeRetriesIt) {
  queue_->AddOrUpdate(Pod("a"));
  auto pod = PopNow();
  queue_->AddUnschedulable(*pod);
  json with_status = *Pod("a");
  with_status["status"] = {{"conditions", {{{"type", "PodScheduled"}, {"status", "False"}}}}};
  queue_->AddOrUpdate(std::make_shared<const json>(with_status));
  Advance(seconds(5));
  EXPECT_EQ(PopUid(), "");
  queue_->AddOrUpdate(Pod("a", 0, "new-image"));
  EXPECT_EQ(PopUid(), "a");
}

TEST_F(SchedulingQueueTest, AClusterChangeDuringTheAttemptIsNotMissed) {
  queue_->AddOrUpdate(Pod("a"));
  auto pod = PopNow();
  queue_->MoveAllToActive();  // a node appeared while "a" was being scheduled
  queue_->AddUnschedulable(*pod);
  EXPECT_EQ(queue_->counts().unschedulable, 0u);
  Advance(seconds(1));
  EXPECT_EQ(PopUid(), "a");
}

TEST_F(SchedulingQueueTest, DeletedPodsLeaveEveryState) {
  queue_->AddOrUpdate(Pod("active"));
  queue_->AddOrUpdate(Pod("flight"));
  queue_->Delete("active");
  auto pod = PopNow();
  ASSERT_TRUE(pod);
  EXPECT_EQ(pod->uid, "flight");
  queue_->Delete("flight");      // deleted while in flight
  queue_->AddUnschedulable(*pod);  // the verdict then drops it
  SchedulingQueue::Counts counts = queue_->counts();
  EXPECT_EQ(counts.active + counts.backoff + counts.unschedulable + counts.in_flight, 0u);
}

TEST_F(SchedulingQueueTest, PopBlocksUntilAPodArrivesAndCloseWakesIt) {
  std::thread producer([this] {
    std::this_thread::sleep_for(milliseconds(20));  // let Pop block first
    queue_->AddOrUpdate(Pod("late"));
  });
  auto pod = queue_->Pop(std::chrono::steady_clock::now() + seconds(10));
  producer.join();
  ASSERT_TRUE(pod);
  EXPECT_EQ(pod->uid, "late");
  std::thread closer([this] { queue_->Close(); });
  EXPECT_FALSE(queue_->Pop());  // no deadline: only Close() ends it
  closer.join();
}

}  // namespace
}  // namespace mk8s::scheduler
