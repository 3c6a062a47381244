// TimerQueue: callbacks run in time order, cancelled ones never run, and cancelling an id that
// already ran (or never existed) is harmless.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <vector>

#include "apiserver/timer_queue.h"

namespace mk8s::apiserver {
namespace {

TEST(TimerQueueTest, RunsInTimeOrderAndSkipsCancelled) {
  TimerQueue timers;
  std::mutex mu;
  std::condition_variable cv;
  std::vector<int> ran;
  const auto base = TimerQueue::Clock::now() + std::chrono::milliseconds(50);
  std::vector<uint64_t> ids;
  // Scheduled out of order; every third one is cancelled.
  for (int i : {5, 1, 4, 0, 3, 2, 8, 7, 6}) {
    ids.push_back(timers.Schedule(base + std::chrono::milliseconds(i), [&, i] {
      std::lock_guard lock(mu);
      ran.push_back(i);
      cv.notify_all();
    }));
  }
  for (size_t k = 0; k < ids.size(); k += 3) timers.Cancel(ids[k]);  // 5, 0, 8
  timers.Cancel(987654);                                              // unknown: no effect
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return ran.size() == 6; }));
  EXPECT_EQ(ran, (std::vector<int>{1, 2, 3, 4, 6, 7}));
  lock.unlock();
  for (uint64_t id : ids) timers.Cancel(id);  // already ran or cancelled: harmless
}

}  // namespace
}  // namespace mk8s::apiserver
