// Concurrent CAS writers, group commit, and a (disabled by default) throughput probe.
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <mutex>
#include <set>
#include <thread>

#include "store_test_util.h"

namespace mk8s::store::testing {
namespace {

// Increments `key` once with a CAS loop; returns the revision the successful write took.
int64_t CasIncrement(Store& store, const std::string& key) {
  for (;;) {
    auto current = store.Get(key);
    if (!current.ok()) return -1;
    std::string next = std::to_string(std::stoll(current->value) + 1);
    auto outcome = store.Update(key, next, current->mod_rev);
    if (outcome.status.ok()) return outcome.result.revision;
    if (outcome.status.code() != Code::kConflict) return -1;
  }
}

TEST(StoreConcurrencyTest, CasIncrementsAreExactAndRevisionsGapFree) {
  TempDir dir;
  auto store = MustOpen(TestOptions(dir.File("db")));
  constexpr int kThreads = 16;
  constexpr int kIncrements = 500;
  constexpr int kCounters = 4;
  for (int c = 0; c < kCounters; ++c) {
    ASSERT_TRUE(store->Create("/counter/" + std::to_string(c), "0").status.ok());
  }
  const int64_t start = store->CurrentRevision();
  std::mutex mu;
  std::vector<int64_t> revisions;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::vector<int64_t> mine;
      for (int i = 0; i < kIncrements; ++i) {
        int64_t rev = CasIncrement(*store, "/counter/" + std::to_string((t + i) % kCounters));
        if (rev < 0) ++failures;
        mine.push_back(rev);
      }
      std::lock_guard<std::mutex> lock(mu);
      revisions.insert(revisions.end(), mine.begin(), mine.end());
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  int64_t total = 0;
  for (int c = 0; c < kCounters; ++c)
    total += std::stoll(store->Get("/counter/" + std::to_string(c))->value);
  EXPECT_EQ(total, kThreads * kIncrements);
  std::sort(revisions.begin(), revisions.end());
  ASSERT_EQ(revisions.size(), static_cast<size_t>(kThreads * kIncrements));
  for (size_t i = 0; i < revisions.size(); ++i) {
    ASSERT_EQ(revisions[i], start + 1 + static_cast<int64_t>(i)) << "gap or duplicate";
  }
  EXPECT_EQ(store->CurrentRevision(), start + kThreads * kIncrements);
  auto stats = store->GetStats();
  EXPECT_EQ(stats.writes, kCounters + kThreads * kIncrements);
  EXPECT_GT(stats.fsyncs, 0);
  EXPECT_LE(stats.commits, stats.writes);
}

TEST(StoreConcurrencyTest, AsyncWritesShareCommits) {
  TempDir dir;
  auto store = MustOpen(TestOptions(dir.File("db")));
  constexpr int kWrites = 2000;
  std::atomic<int> done{0};
  std::atomic<int> failed{0};
  for (int i = 0; i < kWrites; ++i) {
    store->CreateAsync("/async/" + std::to_string(i), std::string(1024, 'v'), [&](WriteOutcome o) {
      if (!o.status.ok()) ++failed;
      ++done;
    });
  }
  ASSERT_TRUE(WaitFor([&] { return done.load() == kWrites; }));
  EXPECT_EQ(failed.load(), 0);
  auto stats = store->GetStats();
  EXPECT_EQ(stats.writes, kWrites);
  EXPECT_LT(stats.commits, kWrites / 4) << "group commit should batch queued writes";
  EXPECT_GT(stats.fsyncs, 0);
  EXPECT_LT(stats.fsyncs, kWrites / 4) << "writes in one group commit share an fsync";
  EXPECT_EQ(*store->Count("/async/"), kWrites);
}

}  // namespace
}  // namespace mk8s::store::testing
