// The watch cache over a real store in a temp folder: initial state in revision order, resume
// from a resourceVersion, "too old" past its bounded history, and shared immutable objects.
#include <gtest/gtest.h>

#include <chrono>
#include <mutex>
#include <thread>

#include "watch_cache_fixture.h"

namespace mk8s::apiserver {
namespace {

using nlohmann::json;
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
  // Once the window has passed, only the newest 3 events remain resumable. (The writes may span
  // more than the window on a busy machine, so the first events can go before the last ones are
  // old: wait for the one just past the minimum.)
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  Status too_old;
  while (too_old.ok() && std::chrono::steady_clock::now() < deadline) {
    auto watch = cache_->Watch("/registry/", last - 4, false, [](const CacheEventPtr&) {});
    too_old = watch.status();
    if (too_old.ok()) std::this_thread::sleep_for(std::chrono::milliseconds(20));  // poll
  }
  ASSERT_FALSE(too_old.ok()) << "history older than the window was never dropped";
  EXPECT_EQ(too_old.code(), Code::kCompacted);
  EXPECT_FALSE(cache_->Watch("/registry/", first, false, [](const CacheEventPtr&) {}).ok());
  EXPECT_TRUE(cache_->Watch("/registry/", last - 3, false, [](const CacheEventPtr&) {}).ok());
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

TEST(CachedObjectTest, CompactKeepsTheTextAndParsesItBackIdentically) {
  json object = {{"kind", "ConfigMap"},
                 {"metadata", {{"name", "c"}, {"resourceVersion", "7"}}},
                 {"data", {{"k", "v\u00e9"}}}};
  auto parsed = std::make_shared<const CachedObject>("/registry/configmaps/default/c", 7, object);
  CachedObjectPtr compact = CachedObject::Compact(*parsed);
  EXPECT_FALSE(parsed->compact());
  EXPECT_TRUE(compact->compact());
  EXPECT_EQ(compact->key(), parsed->key());
  EXPECT_EQ(compact->revision(), 7);
  EXPECT_EQ(&compact->Json(), &parsed->Json());  // the text is shared, not copied
  CachedObjectPtr copy = CachedObject::Reparsed(compact);
  EXPECT_NE(copy.get(), compact.get());
  EXPECT_EQ(copy->object(), object);
  EXPECT_EQ(copy->Json(), object.dump());
  EXPECT_EQ(compact->object(), object);  // a compact object still answers object()
  EXPECT_EQ(CachedObject::Reparsed(parsed).get(), parsed.get());
}

// Memory (issue 4): the history keeps superseded versions as text only, and a watch resumed
// from it sees the same events, objects and bytes the live watchers saw.
TEST_F(WatchCacheTest, ReplayOfCompactedHistoryMatchesTheLiveEvents) {
  cache_ = std::move(WatchCache::Start(store_.get(), "/registry/").value());
  struct Seen {
    WatchEventType type;
    int64_t revision;
    json object;
    std::string text;
    json previous;
  };
  std::mutex mu;
  std::vector<Seen> live;
  auto record = [](std::vector<Seen>* into, const CacheEventPtr& event) {
    into->push_back(Seen{event->type, event->revision, event->object->object(),
                         event->object->Json(),
                         event->previous ? event->previous->object() : json()});
  };
  const int64_t start = cache_->revision();
  auto live_watch = cache_->Watch("/registry/configmaps/", start, false,
                                  [&](const CacheEventPtr& event) {
                                    std::lock_guard lock(mu);
                                    record(&live, event);
                                  });
  ASSERT_TRUE(live_watch.ok());
  Put("p", "0");
  Put("q", "0");
  Put("p", "1");
  Put("p", "2");
  ASSERT_TRUE(store_->Delete("/registry/configmaps/default/q", 0).status.ok());
  const int64_t last = Put("p", "3");
  ASSERT_TRUE(WaitFor([&] {
    std::lock_guard lock(mu);
    return !live.empty() && live.back().revision == last;
  }));
  std::vector<Seen> replayed;
  auto resumed = cache_->Watch("/registry/configmaps/", start, false,
                               [&](const CacheEventPtr& event) {
                                 EXPECT_NE(event->object, nullptr);
                                 record(&replayed, event);
                               });
  ASSERT_TRUE(resumed.ok());
  std::lock_guard lock(mu);
  ASSERT_EQ(replayed.size(), live.size());
  ASSERT_EQ(live.size(), 6u);
  for (size_t i = 0; i < live.size(); ++i) {
    EXPECT_EQ(replayed[i].type, live[i].type) << i;
    EXPECT_EQ(replayed[i].revision, live[i].revision) << i;
    EXPECT_EQ(replayed[i].object, live[i].object) << i;
    EXPECT_EQ(replayed[i].text, live[i].text) << i;
    EXPECT_EQ(replayed[i].previous, live[i].previous) << i;
  }
  EXPECT_EQ(live[4].type, WatchEventType::kDeleted);
  EXPECT_EQ(live[3].previous["data"]["v"], "1");
  // The current version is still the one object shared by gets and the history.
  auto current = cache_->Get("/registry/configmaps/default/p");
  ASSERT_NE(current, nullptr);
  EXPECT_FALSE(current->compact());
  EXPECT_EQ(current->object()["data"]["v"], "3");
}

}  // namespace
}  // namespace mk8s::apiserver
