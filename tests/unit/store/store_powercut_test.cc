// Power cut: acknowledged writes survive losing every unsynced byte at a random moment.
#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "powercut_vfs.h"
#include "store/sqlite_executor.h"
#include "store_test_util.h"

namespace mk8s::store::testing {
namespace {

struct KeyHistory {
  std::string acked;      // last acknowledged value ("" = never acked)
  std::string in_flight;  // value of a write whose outcome is unknown
};

// The VFS itself: unsynced commits vanish at a cut, synced ones stay (so the storm test below
// cannot pass vacuously).
TEST(StorePowercutTest, VfsDropsOnlyUnsyncedWrites) {
  PowercutVfs& vfs = PowercutVfs::Instance();
  TempDir dir;
  for (bool synced : {true, false}) {
    SCOPED_TRACE(synced ? "synchronous=FULL" : "synchronous=OFF");
    const std::string path = dir.File(synced ? "synced.db" : "unsynced.db");
    vfs.Rearm();
    {
      SqliteExecutorOptions opts;
      opts.path = path;
      opts.vfs = PowercutVfs::kName;
      auto db = OpenSqliteExecutor(opts);
      ASSERT_TRUE(db.ok()) << db.status().ToString();
      if (!synced) {
        ASSERT_TRUE((*db)->Exec("PRAGMA synchronous=OFF").ok());
      }
      ASSERT_TRUE((*db)->Exec("CREATE TABLE t(x INTEGER)").ok());
      for (int i = 0; i < 10; ++i) {
        ASSERT_TRUE((*db)->Exec("INSERT INTO t VALUES (?)", {SqlParam::Int(i)}).ok());
      }
      vfs.Cut();
    }  // closing after the cut: every I/O fails, nothing reaches the disk
    vfs.Rearm();
    SqliteExecutorOptions opts;
    opts.path = path;
    auto db = OpenSqliteExecutor(opts);
    ASSERT_TRUE(db.ok()) << db.status().ToString();
    auto rows = (*db)->Query("SELECT COUNT(*) FROM t");
    if (synced) {
      ASSERT_TRUE(rows.ok()) << rows.status().ToString();
      EXPECT_EQ((*rows)[0][0].AsInt(), 10);
    } else {
      EXPECT_FALSE(rows.ok() && (*rows)[0][0].AsInt() > 0) << "unsynced rows survived the cut";
    }
  }
}

TEST(StorePowercutTest, AcknowledgedWritesSurviveCut) {
  PowercutVfs& vfs = PowercutVfs::Instance();
  std::mt19937 rng(12345);
  constexpr int kRounds = 10;
  constexpr int kThreads = 6;
  constexpr int kKeysPerThread = 8;
  for (int round = 0; round < kRounds; ++round) {
    SCOPED_TRACE("round " + std::to_string(round));
    TempDir dir;
    vfs.Rearm();
    StoreOptions options = TestOptions(dir.File("db"));
    options.sqlite_vfs = PowercutVfs::kName;
    auto store = MustOpen(options);
    ASSERT_NE(store, nullptr);

    const int cut_after = std::uniform_int_distribution<int>(20, 600)(rng);
    std::atomic<int> acks{0};
    std::mutex mu;
    std::map<std::string, KeyHistory> history;  // GUARDED_BY(mu)
    std::vector<std::thread> writers;
    for (int t = 0; t < kThreads; ++t) {
      writers.emplace_back([&, t] {
        std::map<std::string, int64_t> revs;
        for (int i = 0;; ++i) {
          std::string key = "/pc/" + std::to_string(t) + "/" + std::to_string(i % kKeysPerThread);
          std::string value = std::to_string(t) + ":" + std::to_string(i) + std::string(200, 'p');
          {
            std::lock_guard<std::mutex> lock(mu);
            history[key].in_flight = value;
          }
          auto it = revs.find(key);
          WriteOutcome o =
              it == revs.end() ? store->Create(key, value) : store->Update(key, value, it->second);
          if (!o.status.ok()) return;  // the cut happened: stop writing
          revs[key] = o.result.revision;
          {
            std::lock_guard<std::mutex> lock(mu);
            history[key].acked = value;
            history[key].in_flight.clear();
          }
          ++acks;
        }
      });
    }
    ASSERT_TRUE(WaitFor([&] { return acks.load() >= cut_after; }));
    vfs.Cut();
    for (auto& w : writers) w.join();
    store.reset();  // closing after the cut must be harmless: every I/O fails
    vfs.Rearm();

    auto reopened = MustOpen(TestOptions(dir.File("db")));
    ASSERT_NE(reopened, nullptr);
    int checked = 0;
    for (const auto& [key, h] : history) {
      if (h.acked.empty()) continue;
      auto got = reopened->Get(key);
      ASSERT_TRUE(got.ok()) << key << ": " << got.status().ToString();
      EXPECT_TRUE(got->value == h.acked || got->value == h.in_flight)
          << key << " lost its acknowledged value";
      ++checked;
    }
    EXPECT_GT(checked, 0);
    // The reopened store keeps working and continues revisions.
    EXPECT_TRUE(reopened->Create("/after-cut", "x").status.ok());
  }
}

}  // namespace
}  // namespace mk8s::store::testing
