// Watches: ordering, backlog-to-live switch under concurrent writes, restart replay, endings.
#include <atomic>
#include <set>
#include <thread>

#include "store_test_util.h"

namespace mk8s::store::testing {
namespace {

class StoreWatchTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = MustOpen(TestOptions(dir_.File("db"))); }
  TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreWatchTest, LiveEventsInOrderWithPrefix) {
  auto watch = store_->StartWatch("/w/", store_->CurrentRevision());
  ASSERT_TRUE(watch.ok());
  ASSERT_TRUE(store_->Create("/w/a", "1").status.ok());     // 1
  ASSERT_TRUE(store_->Create("/other", "x").status.ok());   // 2
  ASSERT_TRUE(store_->Update("/w/a", "2", 1).status.ok());  // 3
  ASSERT_TRUE(store_->Delete("/w/a", 3).status.ok());       // 4
  auto events = Collect(**watch, 3);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0]->type, EventType::kPut);
  EXPECT_EQ(events[0]->kv.mod_rev, 1);
  EXPECT_EQ(events[0]->prev_rev, 0);
  EXPECT_EQ(events[1]->kv.value, "2");
  EXPECT_EQ(events[1]->prev_rev, 1);
  EXPECT_EQ(events[1]->kv.create_rev, 1);
  EXPECT_EQ(events[2]->type, EventType::kDelete);
  EXPECT_EQ(events[2]->kv.mod_rev, 4);
  EXPECT_EQ(events[2]->kv.value, "2");
  EXPECT_EQ(events[2]->prev_rev, 3);
}

// Live events come from the writer itself (not read back from the log); they must be exactly
// what a watch replaying the log reports for the same revisions, re-creates included.
TEST_F(StoreWatchTest, LiveEventsEqualTheLogsReplay) {
  const int64_t start = store_->CurrentRevision();
  auto live = store_->StartWatch("/r/", start);
  ASSERT_TRUE(live.ok());
  ASSERT_TRUE(store_->Create("/r/a", "1").status.ok());
  const int64_t created = store_->CurrentRevision();
  ASSERT_TRUE(store_->Delete("/r/a", created).status.ok());
  ASSERT_TRUE(store_->Create("/r/a", "2").status.ok());  // a re-create: no previous version
  ASSERT_TRUE(store_->Update("/r/a", "3", store_->CurrentRevision()).status.ok());
  ASSERT_FALSE(store_->Update("/r/a", "x", 1).status.ok());  // a failed CAS makes no event
  auto live_events = Collect(**live, 4);
  auto replay = store_->StartWatch("/r/", start);
  ASSERT_TRUE(replay.ok());
  auto replayed = Collect(**replay, 4);
  ASSERT_EQ(live_events.size(), 4u);
  ASSERT_EQ(replayed.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(live_events[i]->type, replayed[i]->type);
    EXPECT_EQ(live_events[i]->kv.key, replayed[i]->kv.key);
    EXPECT_EQ(live_events[i]->kv.value, replayed[i]->kv.value);
    EXPECT_EQ(live_events[i]->kv.create_rev, replayed[i]->kv.create_rev);
    EXPECT_EQ(live_events[i]->kv.mod_rev, replayed[i]->kv.mod_rev);
    EXPECT_EQ(live_events[i]->prev_rev, replayed[i]->prev_rev);
  }
  EXPECT_EQ(live_events[2]->prev_rev, 0);
  EXPECT_EQ(live_events[3]->prev_rev, live_events[2]->kv.mod_rev);
}

TEST_F(StoreWatchTest, BacklogThenLiveHasNoGapsOrDuplicates) {
  // Writers run throughout; watches start at various past revisions and must see every revision
  // after their start exactly once, in order.
  std::atomic<bool> stop{false};
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; !stop; ++i) {
        auto o = store_->Create("/s/" + std::to_string(t) + "/" + std::to_string(i), "v");
        if (!o.status.ok()) return;
      }
    });
  }
  ASSERT_TRUE(WaitFor([&] { return store_->CurrentRevision() >= 200; }));
  std::vector<std::pair<int64_t, std::unique_ptr<Watch>>> watches;
  for (int i = 0; i < 6; ++i) {
    int64_t from = store_->CurrentRevision() - 150 + i * 20;
    auto w = store_->StartWatch("/s/", from);
    ASSERT_TRUE(w.ok()) << w.status().ToString();
    watches.emplace_back(from, std::move(w).value());
  }
  ASSERT_TRUE(WaitFor([&] { return store_->CurrentRevision() >= watches.back().first + 300; }));
  stop = true;
  for (auto& t : writers) t.join();
  const int64_t end = store_->CurrentRevision();
  for (auto& [from, watch] : watches) {
    auto events = Collect(*watch, static_cast<size_t>(end - from));
    ASSERT_EQ(events.size(), static_cast<size_t>(end - from)) << "watch from " << from;
    for (size_t i = 0; i < events.size(); ++i) {
      ASSERT_EQ(events[i]->kv.mod_rev, from + 1 + static_cast<int64_t>(i));
    }
  }
}

TEST_F(StoreWatchTest, WatchFromOldRevisionAfterRestartReplays) {
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(store_->Create("/r/" + std::to_string(i), std::to_string(i)).status.ok());
  }
  store_.reset();
  store_ = MustOpen(TestOptions(dir_.File("db")));
  auto watch = store_->StartWatch("/r/", 3);
  ASSERT_TRUE(watch.ok());
  ASSERT_TRUE(store_->Create("/r/live", "x").status.ok());
  auto events = Collect(**watch, 8);
  ASSERT_EQ(events.size(), 8u);
  for (size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i]->kv.mod_rev, 4 + int64_t(i));
  EXPECT_EQ(events.back()->kv.key, "/r/live");
}

TEST_F(StoreWatchTest, FutureStartWaitsForRevision) {
  auto watch = store_->StartWatch("", 2);
  ASSERT_TRUE(watch.ok());
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(store_->Create("/f" + std::to_string(i), "").status.ok());
  auto events = Collect(**watch, 1);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0]->kv.mod_rev, 3);
}

TEST_F(StoreWatchTest, CancelAndCloseEndBlockedNext) {
  auto watch = store_->StartWatch("", 0);
  ASSERT_TRUE(watch.ok());
  std::atomic<int> code{-1};
  std::thread waiter([&] {
    auto r = (*watch)->Next(std::chrono::seconds(30));
    code = static_cast<int>(r.ok() ? Code::kOk : r.status().code());
  });
  (*watch)->Cancel();
  waiter.join();
  EXPECT_EQ(code.load(), static_cast<int>(Code::kUnavailable));

  auto second = store_->StartWatch("", 0);
  ASSERT_TRUE(second.ok());
  std::thread waiter2([&] {
    auto r = (*second)->Next(std::chrono::seconds(30));
    code = static_cast<int>(r.ok() ? Code::kOk : r.status().code());
  });
  store_.reset();  // the watch outlives the store
  waiter2.join();
  EXPECT_EQ(code.load(), static_cast<int>(Code::kUnavailable));
}

TEST_F(StoreWatchTest, SlowWatcherIsCutOff) {
  StoreOptions options = TestOptions(dir_.File("db2"));
  options.watch_queue_limit = 10;
  auto store = MustOpen(options);
  auto watch = store->StartWatch("", 0);
  ASSERT_TRUE(watch.ok());
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(store->Create("/k" + std::to_string(i), "").status.ok());
  EXPECT_EQ(WaitForEnd(**watch).code(), Code::kResourceExhausted);
  // A new watch from an old revision whose backlog exceeds the limit is also cut off.
  auto late = store->StartWatch("", 0);
  ASSERT_TRUE(late.ok());
  EXPECT_EQ(WaitForEnd(**late).code(), Code::kResourceExhausted);
}

TEST_F(StoreWatchTest, ManyWatchersShareEvents) {
  std::vector<std::unique_ptr<Watch>> watches;
  for (int i = 0; i < 20; ++i) watches.push_back(std::move(store_->StartWatch("/m", 0)).value());
  ASSERT_TRUE(store_->Create("/m1", "v").status.ok());
  const Event* first = nullptr;
  for (auto& w : watches) {
    auto events = Collect(*w, 1);
    ASSERT_EQ(events.size(), 1u);
    if (first == nullptr) first = events[0].get();
    EXPECT_EQ(events[0].get(), first);  // one parse, shared
  }
}

TEST_F(StoreWatchTest, TwoStoresOnOneDatabaseShareRevisionsAndWatches) {
  // Two daemons sharing one database: the second sees the first's writes by polling the log.
  auto other = MustOpen(TestOptions(dir_.File("db")));
  ASSERT_NE(other, nullptr);
  auto watch = other->StartWatch("/ha/", 0);
  ASSERT_TRUE(watch.ok());
  std::vector<std::thread> writers;
  for (Store* s : {store_.get(), other.get()}) {
    writers.emplace_back([s] {
      for (int i = 0; i < 50; ++i) {
        auto key =
            "/ha/" + std::to_string(reinterpret_cast<uintptr_t>(s)) + "/" + std::to_string(i);
        ASSERT_TRUE(s->Create(key, "v").status.ok());
      }
    });
  }
  for (auto& t : writers) t.join();
  auto events = Collect(**watch, 100);
  ASSERT_EQ(events.size(), 100u);
  for (size_t i = 0; i < events.size(); ++i) EXPECT_EQ(events[i]->kv.mod_rev, int64_t(i) + 1);
  EXPECT_EQ(*store_->Count("/ha/"), 100);
  EXPECT_TRUE(WaitFor([&] { return store_->CurrentRevision() == 100; }));
}

}  // namespace
}  // namespace mk8s::store::testing
