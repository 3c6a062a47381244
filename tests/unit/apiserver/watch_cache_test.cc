// The watch cache over a real store in a temp folder: initial state in revision order, resume
// from a resourceVersion, "too old" past its bounded history, and shared immutable objects.
#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <thread>

#include "watch_cache_fixture.h"

namespace mk8s::apiserver {
namespace {

using WatchCacheTest = WatchCacheFixture;

TEST_F(WatchCacheTest, InitialStateInRevisionOrderThenLiveEvents) {
  Put("b", "1");
  Put("a", "1");
  Put("b", "2");  // b is now newer than a
  StartCache();
  std::mutex mu;
  std::vector<std::pair<WatchEventType, std::string>> seen;
  auto registration = cache_->Watch("/registry/configmaps/", 0, /*initial_state=*/true,
                                    [&](const CacheEventPtr& event) {
                                      std::lock_guard lock(mu);
                                      seen.emplace_back(event->type,
                                                        event->object->object()["metadata"]["name"]);
                                    });
  ASSERT_TRUE(registration.ok());
  Put("c", "1");
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard lock(mu);
    return seen.size() == 3;
  }));
  std::lock_guard lock(mu);
  EXPECT_EQ(seen[0], std::make_pair(WatchEventType::kAdded, std::string("a")));
  EXPECT_EQ(seen[1], std::make_pair(WatchEventType::kAdded, std::string("b")));
  EXPECT_EQ(seen[2], std::make_pair(WatchEventType::kAdded, std::string("c")));
}

TEST_F(WatchCacheTest, ResumeFromRevisionAndTooOldPastHistory) {
  WatchCache::HistoryBounds bounds;
  bounds.capacity = 5;
  bounds.min_events = 5;
  StartCache(bounds);
  const int64_t first = Put("x", "0");
  int64_t last = first;
  for (int i = 1; i <= 9; ++i) last = Put("x", std::to_string(i));
  ASSERT_TRUE(cache_->WaitUntilFresh(last, std::chrono::seconds(10)).ok());
  // Within the history: exactly the events after the revision.
  std::vector<int64_t> revisions;
  std::mutex mu;
  auto resumed = cache_->Watch("/registry/", last - 2, false, [&](const CacheEventPtr& event) {
    std::lock_guard lock(mu);
    revisions.push_back(event->revision);
  });
  ASSERT_TRUE(resumed.ok());
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(revisions, (std::vector<int64_t>{last - 1, last}));
  }
  // Older than the history kept: the caller must re-list (a 410 for HTTP clients).
  auto too_old = cache_->Watch("/registry/", first, false, [](const CacheEventPtr&) {});
  ASSERT_FALSE(too_old.ok());
  EXPECT_EQ(too_old.status().code(), Code::kCompacted);
}

TEST_F(WatchCacheTest, HistoryOlderThanTheWindowIsDroppedDownToTheMinimum) {
  WatchCache::HistoryBounds bounds;
  bounds.capacity = 1000;
  bounds.min_events = 3;
  bounds.window = std::chrono::milliseconds(50);
  StartCache(bounds);
  const int64_t first = Put("w", "0");
  int64_t last = first;
  for (int i = 1; i < 10; ++i) last = Put("w", std::to_string(i));
  ASSERT_TRUE(cache_->WaitUntilFresh(last, std::chrono::seconds(10)).ok());
  // Once the window has passed, only the newest 3 events remain resumable.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  bool expired = false;
  while (!expired && std::chrono::steady_clock::now() < deadline) {
    expired = !cache_->Watch("/registry/", first, false, [](const CacheEventPtr&) {}).ok();
    if (!expired) std::this_thread::sleep_for(std::chrono::milliseconds(20));  // poll
  }
  ASSERT_TRUE(expired) << "history older than the window was never dropped";
  EXPECT_TRUE(cache_->Watch("/registry/", last - 3, false, [](const CacheEventPtr&) {}).ok());
  auto too_old = cache_->Watch("/registry/", last - 4, false, [](const CacheEventPtr&) {});
  ASSERT_FALSE(too_old.ok());
  EXPECT_EQ(too_old.status().code(), Code::kCompacted);
}

TEST_F(WatchCacheTest, ObjectsAreSharedAndSerializedOnce) {
  Put("shared", "v");
  StartCache();
  auto one = cache_->Get("/registry/configmaps/default/shared");
  auto two = cache_->List("/registry/configmaps/").items.at(0);
  ASSERT_NE(one, nullptr);
  EXPECT_EQ(one.get(), two.get());
  EXPECT_EQ(&one->Json(), &two->Json());
  EXPECT_EQ(one->object()["metadata"]["resourceVersion"], std::to_string(one->revision()));
}

}  // namespace
}  // namespace mk8s::apiserver
