// WorkQueue semantics on a FakeClock: dedup, re-add while processing, backoff and Forget,
// AddAfter ordering, AddAt, shutdown.
#include "client/workqueue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

namespace mk8s::client {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(WorkQueueTest, AddDedupsWhileQueued) {
  FakeClock clock;
  WorkQueue queue(&clock);
  queue.Add("a");
  queue.Add("b");
  queue.Add("a");
  EXPECT_EQ(queue.Len(), 2u);
  EXPECT_EQ(queue.Get(), "a");
  EXPECT_EQ(queue.Get(), "b");
  EXPECT_EQ(queue.Len(), 0u);
}

TEST(WorkQueueTest, ReAddDuringProcessingIsQueuedAfterDone) {
  FakeClock clock;
  WorkQueue queue(&clock);
  queue.Add("a");
  ASSERT_EQ(queue.Get(), "a");
  queue.Add("a");  // being processed: not handed to another worker
  queue.Add("a");  // still one
  EXPECT_EQ(queue.Len(), 0u);
  queue.Done("a");
  EXPECT_EQ(queue.Len(), 1u);
  EXPECT_EQ(queue.Get(), "a");
  queue.Done("a");
  EXPECT_EQ(queue.Len(), 0u);
}

TEST(WorkQueueTest, BackoffGrowsAndForgetResets) {
  FakeClock clock;
  WorkQueue queue(&clock);
  EXPECT_EQ(queue.When("a"), milliseconds(5));
  EXPECT_EQ(queue.When("a"), milliseconds(10));
  EXPECT_EQ(queue.When("a"), milliseconds(20));
  EXPECT_EQ(queue.When("b"), milliseconds(5));  // per item
  EXPECT_EQ(queue.NumRequeues("a"), 3);
  queue.Forget("a");
  EXPECT_EQ(queue.NumRequeues("a"), 0);
  EXPECT_EQ(queue.When("a"), milliseconds(5));
  for (int i = 0; i < 40; ++i) (void)queue.When("c");
  clock.Advance(seconds(100));  // refill the bucket
  EXPECT_EQ(queue.When("c"), seconds(1000));  // capped
}

TEST(WorkQueueTest, TokenBucketLimitsOverallRate) {
  FakeClock clock;
  WorkQueue queue(&clock, RateLimiterOptions{milliseconds(5), seconds(1000), 10, 2});
  EXPECT_EQ(queue.When("a"), milliseconds(5));
  EXPECT_EQ(queue.When("b"), milliseconds(5));
  EXPECT_EQ(queue.When("c"), milliseconds(100));  // burst spent: 1/qps
  EXPECT_EQ(queue.When("d"), milliseconds(200));
}

TEST(WorkQueueTest, AddRateLimitedWaitsForTheBackoff) {
  FakeClock clock;
  WorkQueue queue(&clock);
  queue.AddRateLimited("a");  // 5 ms
  queue.AddRateLimited("a");  // 10 ms: the earlier 5 ms wins
  EXPECT_EQ(queue.Len(), 0u);
  clock.Advance(milliseconds(4));
  EXPECT_EQ(queue.Len(), 0u);
  clock.Advance(milliseconds(1));
  EXPECT_EQ(queue.Len(), 1u);
  EXPECT_EQ(queue.Get(), "a");
  queue.Done("a");
  clock.Advance(seconds(1));
  EXPECT_EQ(queue.Len(), 0u);  // not added twice
}

TEST(WorkQueueTest, AddAfterOrdersByDueTime) {
  FakeClock clock;
  WorkQueue queue(&clock);
  queue.AddAfter("late", milliseconds(300));
  queue.AddAfter("early", milliseconds(100));
  queue.AddAfter("middle", milliseconds(200));
  queue.AddAfter("now", milliseconds(0));
  EXPECT_EQ(queue.Len(), 1u);
  clock.Advance(milliseconds(150));
  EXPECT_EQ(queue.Len(), 2u);
  clock.Advance(seconds(1));
  EXPECT_EQ(queue.Get(), "now");
  EXPECT_EQ(queue.Get(), "early");
  EXPECT_EQ(queue.Get(), "middle");
  EXPECT_EQ(queue.Get(), "late");
}

TEST(WorkQueueTest, AddAtUsesTheQueueClocksTime) {
  FakeClock clock;
  WorkQueue queue(&clock);
  const Clock::TimePoint start = clock.Now();
  clock.Advance(milliseconds(500));
  queue.AddAt("past", start + milliseconds(100));  // already due: added at once
  queue.AddAt("future", start + milliseconds(700));
  queue.AddAt("future", start + milliseconds(900));  // the earlier time wins
  EXPECT_EQ(queue.Len(), 1u);
  clock.Advance(milliseconds(199));
  EXPECT_EQ(queue.Len(), 1u);
  clock.Advance(milliseconds(1));
  EXPECT_EQ(queue.Len(), 2u);
  clock.Advance(seconds(1));
  EXPECT_EQ(queue.Len(), 2u);  // not added twice
}

TEST(WorkQueueTest, ShutDownUnblocksGetAndDrains) {
  FakeClock clock;
  WorkQueue queue(&clock);
  std::atomic<bool> returned{false};
  std::thread worker([&] {
    EXPECT_EQ(queue.Get(), std::nullopt);
    returned = true;
  });
  queue.ShutDown();
  worker.join();
  EXPECT_TRUE(returned);
  EXPECT_TRUE(queue.ShuttingDown());
  queue.Add("x");  // ignored
  EXPECT_EQ(queue.Len(), 0u);

  WorkQueue drained(&clock);
  drained.Add("a");
  drained.AddAfter("later", seconds(5));
  drained.ShutDown();
  EXPECT_EQ(drained.Get(), "a");  // queued items are still handed out
  EXPECT_EQ(drained.Get(), std::nullopt);
  EXPECT_EQ(clock.PendingTimers(), 0u);  // delayed adds cancelled
}

TEST(WorkQueueTest, WorkersNeverShareAKey) {
  WorkQueue queue;  // real clock
  std::atomic<int> in_flight{0};
  std::atomic<int> max_in_flight{0};
  std::atomic<int> processed{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < 4; ++w) {
    workers.emplace_back([&] {
      while (auto item = queue.Get()) {
        const int now = ++in_flight;
        int seen = max_in_flight.load();
        while (now > seen && !max_in_flight.compare_exchange_weak(seen, now)) {
        }
        std::this_thread::yield();
        --in_flight;
        ++processed;
        queue.Done(*item);
      }
    });
  }
  for (int i = 0; i < 1000; ++i) queue.Add("same");
  const auto deadline = std::chrono::steady_clock::now() + seconds(10);
  while (queue.Len() > 0 && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  queue.ShutDown();
  for (auto& worker : workers) worker.join();
  EXPECT_EQ(max_in_flight.load(), 1);
  EXPECT_GE(processed.load(), 1);
}

}  // namespace
}  // namespace mk8s::client
