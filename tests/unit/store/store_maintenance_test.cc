// Compaction (explicit and automatic) and backup/restore.
#include <map>
#include <optional>
#include <random>

#include "store_test_util.h"

namespace mk8s::store::testing {
namespace {

class StoreMaintenanceTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = MustOpen(TestOptions(dir_.File("db"))); }
  TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreMaintenanceTest, CompactKeepsVersionVisibleAtRevision) {
  ASSERT_TRUE(store_->Create("/a", "a1").status.ok());     // 1
  ASSERT_TRUE(store_->Create("/b", "b1").status.ok());     // 2
  ASSERT_TRUE(store_->Update("/a", "a2", 1).status.ok());  // 3
  ASSERT_TRUE(store_->Delete("/b", 2).status.ok());        // 4
  ASSERT_TRUE(store_->Create("/c", "c1").status.ok());     // 5
  ASSERT_TRUE(store_->Update("/a", "a3", 3).status.ok());  // 6
  auto old_watch = store_->StartWatch("", 1);
  ASSERT_TRUE(old_watch.ok());

  ASSERT_TRUE(store_->Compact(5).ok());
  EXPECT_EQ(store_->CompactedRevision(), 5);
  EXPECT_EQ(store_->Get("/a", 4).status().code(), Code::kCompacted);
  ListOptions at4;
  at4.at_revision = 4;
  EXPECT_EQ(store_->List("", at4).status().code(), Code::kCompacted);
  EXPECT_EQ(store_->StartWatch("", 4).status().code(), Code::kCompacted);

  // At the compaction revision everything visible there is still readable.
  ListOptions at5;
  at5.at_revision = 5;
  auto list = store_->List("", at5);
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->kvs.size(), 2u);
  EXPECT_EQ(list->kvs[0].value, "a2");
  EXPECT_EQ(list->kvs[1].value, "c1");
  EXPECT_EQ(store_->Get("/b", 5).status().code(), Code::kNotFound);
  EXPECT_EQ(store_->Get("/a")->value, "a3");
  // Compacting again at or below is a no-op.
  EXPECT_TRUE(store_->Compact(3).ok());
  // The watch that was already caught up keeps running.
  auto events = Collect(**old_watch, 5);
  EXPECT_EQ(events.size(), 5u);
  // A watch from the compaction point works.
  auto w = store_->StartWatch("", 5);
  ASSERT_TRUE(w.ok());
  auto replay = Collect(**w, 1);
  ASSERT_EQ(replay.size(), 1u);
  EXPECT_EQ(replay[0]->kv.mod_rev, 6);
}

TEST_F(StoreMaintenanceTest, CompactionSurvivesRestart) {
  ASSERT_TRUE(store_->Create("/k", "v").status.ok());
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(store_->Update("/k", std::to_string(i), 0).status.ok());
  ASSERT_TRUE(store_->Compact(15).ok());
  store_.reset();
  store_ = MustOpen(TestOptions(dir_.File("db")));
  EXPECT_EQ(store_->CompactedRevision(), 15);
  EXPECT_EQ(store_->Get("/k", 14).status().code(), Code::kCompacted);
  EXPECT_EQ(store_->Get("/k", 15)->value, "13");
  EXPECT_EQ(store_->Get("/k")->value, "19");
}

TEST_F(StoreMaintenanceTest, AutomaticCompactionKeepsBoundedHistory) {
  StoreOptions options = TestOptions(dir_.File("auto"));
  options.history_revisions = 50;
  options.compaction_interval = std::chrono::milliseconds(20);
  auto store = MustOpen(options);
  ASSERT_TRUE(store->Create("/k", "0").status.ok());
  for (int i = 1; i < 300; ++i) {
    ASSERT_TRUE(store->Update("/k", std::to_string(i), 0).status.ok());
  }
  ASSERT_TRUE(WaitFor([&] { return store->CompactedRevision() >= 250; }));
  EXPECT_EQ(store->Get("/k", 100).status().code(), Code::kCompacted);
  EXPECT_EQ(store->Get("/k", 260)->value, "259");
  EXPECT_EQ(store->Get("/k")->value, "299");
}

TEST_F(StoreMaintenanceTest, BackupRestoreMovesRevisionsForward) {
  ASSERT_TRUE(store_->Create("/a", "a1").status.ok());
  ASSERT_TRUE(store_->Create("/b", "b1").status.ok());
  const std::string backup = dir_.File("backup.db");
  ASSERT_TRUE(store_->Backup(backup).ok());
  // Diverge after the backup.
  ASSERT_TRUE(store_->Update("/a", "a2", 0).status.ok());
  ASSERT_TRUE(store_->Delete("/b", 0).status.ok());
  ASSERT_TRUE(store_->Create("/c", "c1").status.ok());
  const int64_t before = store_->CurrentRevision();
  auto watch = store_->StartWatch("", before);
  ASSERT_TRUE(watch.ok());

  ASSERT_TRUE(store_->Restore(backup).ok());
  EXPECT_EQ(WaitForEnd(**watch).code(), Code::kCompacted);
  EXPECT_GT(store_->CompactedRevision(), before);
  EXPECT_GT(store_->CurrentRevision(), store_->CompactedRevision());
  auto list = store_->List("", {});
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->kvs.size(), 2u);
  EXPECT_EQ(list->kvs[0].key, "/a");
  EXPECT_EQ(list->kvs[0].value, "a1");
  EXPECT_EQ(list->kvs[1].value, "b1");
  for (auto& kv : list->kvs) EXPECT_GT(kv.mod_rev, before);
  EXPECT_EQ(store_->StartWatch("", before).status().code(), Code::kCompacted);

  // New writes and watches continue above the restored revisions, also after a restart.
  auto w = store_->StartWatch("", store_->CurrentRevision());
  ASSERT_TRUE(w.ok());
  auto next = store_->Create("/d", "d1");
  ASSERT_TRUE(next.status.ok());
  EXPECT_EQ(next.result.revision, list->revision + 1);
  EXPECT_EQ(Collect(**w, 1).size(), 1u);
  store_.reset();
  store_ = MustOpen(TestOptions(dir_.File("db")));
  EXPECT_EQ(store_->CurrentRevision(), next.result.revision);
  EXPECT_EQ(*store_->Count(""), 3);
}

TEST_F(StoreMaintenanceTest, RestoreIntoAnotherStoreAndBadBackups) {
  for (int i = 0; i < 2500; ++i) {  // more than one page of rows
    ASSERT_TRUE(store_->Create("/k/" + std::to_string(i), std::to_string(i)).status.ok());
  }
  const std::string backup = dir_.File("backup.db");
  ASSERT_TRUE(store_->Backup(backup).ok());
  ASSERT_TRUE(store_->Backup(backup).ok());  // overwrites atomically
  auto other = MustOpen(TestOptions(dir_.File("other")));
  ASSERT_TRUE(other->Create("/x", "x").status.ok());
  ASSERT_TRUE(other->Restore(backup).ok());
  EXPECT_EQ(*other->Count(""), 2500);
  EXPECT_EQ(other->Get("/k/1234")->value, "1234");
  EXPECT_GT(other->CurrentRevision(), 2500);

  EXPECT_FALSE(other->Restore(dir_.File("missing.db")).ok());
  EXPECT_FALSE(other->Restore(dir_.File("db")).ok());  // a store file, not a backup
  EXPECT_EQ(*other->Count(""), 2500);                  // unchanged after failed restores
  EXPECT_FALSE(store_->Backup(dir_.File("no/such/dir/b.db")).ok());
}

// Random creates/updates/deletes/re-creates on a few keys, compactions in between; every read at
// every readable revision must match a simple in-memory model of the history.
TEST_F(StoreMaintenanceTest, ReadsAtRevisionsMatchModelAcrossCompactions) {
  std::mt19937 rng(7);
  // model[rev] = the full key->value map after revision rev.
  std::vector<std::map<std::string, std::string>> model(1);
  std::map<std::string, int64_t> mod_revs;
  for (int step = 0; step < 400; ++step) {
    std::string key = "/m/" + std::to_string(rng() % 6);
    std::map<std::string, std::string> next = model.back();
    WriteOutcome o;
    if (!next.count(key)) {
      o = store_->Create(key, "v" + std::to_string(step));
      if (o.status.ok()) next[key] = "v" + std::to_string(step);
    } else if (rng() % 3 == 0) {
      o = store_->Delete(key, mod_revs[key]);
      if (o.status.ok()) next.erase(key);
    } else {
      o = store_->Update(key, "v" + std::to_string(step), mod_revs[key]);
      if (o.status.ok()) next[key] = "v" + std::to_string(step);
    }
    ASSERT_TRUE(o.status.ok()) << o.status.ToString();
    mod_revs[key] = o.result.revision;
    ASSERT_EQ(o.result.revision, static_cast<int64_t>(model.size()));
    model.push_back(std::move(next));
    if (step % 97 == 96) {
      ASSERT_TRUE(store_->Compact(store_->CurrentRevision() - 30).ok());
    }
  }
  const int64_t current = store_->CurrentRevision();
  for (int64_t rev = store_->CompactedRevision(); rev <= current; ++rev) {
    ListOptions at;
    at.at_revision = rev;
    auto list = store_->List("/m/", at);
    ASSERT_TRUE(list.ok()) << list.status().ToString();
    std::map<std::string, std::string> got;
    for (auto& kv : list->kvs) got[kv.key] = kv.value;
    ASSERT_EQ(got, model[static_cast<size_t>(rev)]) << "at revision " << rev;
    for (int k = 0; k < 6; ++k) {
      std::string key = "/m/" + std::to_string(k);
      auto one = store_->Get(key, rev);
      auto it = model[static_cast<size_t>(rev)].find(key);
      if (it == model[static_cast<size_t>(rev)].end()) {
        ASSERT_EQ(one.status().code(), Code::kNotFound) << key << " at " << rev;
      } else {
        ASSERT_TRUE(one.ok()) << key << " at " << rev << ": " << one.status().ToString();
        ASSERT_EQ(one->value, it->second);
      }
    }
  }
  EXPECT_EQ(store_->Get("/m/0", store_->CompactedRevision() - 1).status().code(), Code::kCompacted);
}

}  // namespace
}  // namespace mk8s::store::testing
