// FanoutPool: every item of a batch runs exactly once, Run returns only after all of them,
// helpers really take items while the caller is busy, small batches stay on the caller, and a
// pool of one thread is the plain loop.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "apiserver/registry/fanout_pool.h"

namespace mk8s::apiserver {
namespace {

TEST(FanoutPoolTest, EveryItemRunsExactlyOnceAndRunWaitsForAll) {
  FanoutPool pool(4, /*min_parallel=*/2);
  EXPECT_EQ(pool.threads(), 4u);
  for (size_t batch = 0; batch < 300; ++batch) {
    const size_t count = 1 + batch % 97;
    auto runs = std::make_unique<std::atomic<int>[]>(count);
    std::atomic<size_t> done{0};
    pool.Run(count, [&](size_t i) {
      runs[i].fetch_add(1);
      if (i % 7 == 0) std::this_thread::yield();  // let another thread take the next items
      done.fetch_add(1);
    });
    ASSERT_EQ(done.load(), count) << "Run returned before every item was done";
    for (size_t i = 0; i < count; ++i) ASSERT_EQ(runs[i].load(), 1) << "item " << i;
  }
}

TEST(FanoutPoolTest, HelpersTakeItemsWhileTheCallerIsBusy) {
  FanoutPool pool(2, /*min_parallel=*/2);
  // Whichever thread takes item 0 waits until some other thread has run another item: with the
  // caller busy (or idle) the batch must still progress on the second thread.
  std::atomic<std::thread::id> first_holder{};
  std::atomic<int> by_others{0};
  std::atomic<bool> other_seen{false};
  std::mutex mu;
  std::set<std::thread::id> threads;
  pool.Run(64, [&](size_t i) {
    {
      std::lock_guard lock(mu);
      threads.insert(std::this_thread::get_id());
    }
    if (i == 0) {
      first_holder = std::this_thread::get_id();
      const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
      while (by_others.load() == 0 && std::chrono::steady_clock::now() < until) {
        std::this_thread::yield();  // bounded wait for the other thread
      }
      other_seen = by_others.load() > 0;
      return;
    }
    // Items after 0 are taken only after item 0 was, so first_holder is set by then.
    if (std::this_thread::get_id() != first_holder.load()) ++by_others;
  });
  EXPECT_TRUE(other_seen.load());
  EXPECT_EQ(threads.size(), 2u);
}

TEST(FanoutPoolTest, SmallBatchesAndOneThreadRunOnTheCaller) {
  const auto caller = std::this_thread::get_id();
  FanoutPool pool(4, /*min_parallel=*/16);
  int count = 0;
  pool.Run(15, [&](size_t) {
    EXPECT_EQ(std::this_thread::get_id(), caller);
    ++count;  // no other thread: no race
  });
  EXPECT_EQ(count, 15);
  FanoutPool single(1);
  EXPECT_EQ(single.threads(), 1u);
  std::vector<size_t> order;
  single.Run(100, [&](size_t i) {
    EXPECT_EQ(std::this_thread::get_id(), caller);
    order.push_back(i);
  });
  ASSERT_EQ(order.size(), 100u);
  for (size_t i = 0; i < order.size(); ++i) EXPECT_EQ(order[i], i);
  pool.Run(0, [](size_t) { ADD_FAILURE() << "no items"; });
}

TEST(FanoutPoolTest, AutoSizeIsBetweenOneAndTheCap) {
  FanoutPool pool(0);
  EXPECT_GE(pool.threads(), 1u);
  EXPECT_LE(pool.threads(), FanoutPool::kMaxAutoThreads);
}

}  // namespace
}  // namespace mk8s::apiserver
