// CRUD, CAS, reads at revisions, listing, reopen and hostile input.
#include <fstream>

#include "store/sqlite_executor.h"
#include "store_test_util.h"

namespace mk8s::store::testing {
namespace {

class StoreBasicTest : public ::testing::Test {
 protected:
  void SetUp() override { store_ = MustOpen(TestOptions(dir_.File("db"))); }
  TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreBasicTest, CreateGetUpdateDelete) {
  auto created = store_->Create("/a", "one");
  ASSERT_TRUE(created.status.ok()) << created.status.ToString();
  EXPECT_EQ(created.result.revision, 1);
  EXPECT_EQ(created.result.kv.create_rev, 1);
  EXPECT_EQ(store_->CurrentRevision(), 1);

  auto got = store_->Get("/a");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->value, "one");
  EXPECT_EQ(got->mod_rev, 1);

  auto updated = store_->Update("/a", "two", 1);
  ASSERT_TRUE(updated.status.ok());
  EXPECT_EQ(updated.result.revision, 2);
  EXPECT_EQ(updated.result.kv.create_rev, 1);
  EXPECT_EQ(store_->Get("/a")->value, "two");

  auto deleted = store_->Delete("/a", 2);
  ASSERT_TRUE(deleted.status.ok());
  EXPECT_EQ(deleted.result.revision, 3);
  EXPECT_EQ(deleted.result.kv.value, "two");
  EXPECT_EQ(store_->Get("/a").status().code(), Code::kNotFound);
  EXPECT_EQ(store_->CurrentRevision(), 3);
}

TEST_F(StoreBasicTest, CreateIfAbsentReportsCurrent) {
  ASSERT_TRUE(store_->Create("/k", "v1").status.ok());
  auto again = store_->Create("/k", "v2");
  EXPECT_EQ(again.status.code(), Code::kAlreadyExists);
  EXPECT_EQ(again.current.value, "v1");
  EXPECT_EQ(again.current.mod_rev, 1);
  EXPECT_EQ(store_->CurrentRevision(), 1);  // a failed write takes no revision
}

TEST_F(StoreBasicTest, CasConflictReportsCurrent) {
  ASSERT_TRUE(store_->Create("/k", "v1").status.ok());
  ASSERT_TRUE(store_->Update("/k", "v2", 0).status.ok());  // 0 = unconditional
  auto stale = store_->Update("/k", "v3", 1);
  EXPECT_EQ(stale.status.code(), Code::kConflict);
  EXPECT_EQ(stale.current.mod_rev, 2);
  EXPECT_EQ(stale.current.value, "v2");
  EXPECT_EQ(stale.current.create_rev, 1);
  auto missing = store_->Update("/nope", "x", 0);
  EXPECT_EQ(missing.status.code(), Code::kNotFound);
  EXPECT_EQ(missing.current.mod_rev, 0);
}

TEST_F(StoreBasicTest, DeleteIfRevision) {
  ASSERT_TRUE(store_->Create("/k", "v1").status.ok());
  auto stale = store_->Delete("/k", 5);
  EXPECT_EQ(stale.status.code(), Code::kConflict);
  EXPECT_EQ(stale.current.value, "v1");
  EXPECT_TRUE(store_->Delete("/k", 1).status.ok());
  EXPECT_EQ(store_->Delete("/k", 0).status.code(), Code::kNotFound);
  // Re-creating takes a new create_rev.
  auto re = store_->Create("/k", "v2");
  ASSERT_TRUE(re.status.ok());
  EXPECT_EQ(re.result.kv.create_rev, 3);
}

TEST_F(StoreBasicTest, GetAndListAtRevisions) {
  ASSERT_TRUE(store_->Create("/p/a", "a1").status.ok());     // 1
  ASSERT_TRUE(store_->Create("/p/b", "b1").status.ok());     // 2
  ASSERT_TRUE(store_->Update("/p/a", "a2", 1).status.ok());  // 3
  ASSERT_TRUE(store_->Delete("/p/b", 2).status.ok());        // 4
  EXPECT_EQ(store_->Get("/p/a", 1)->value, "a1");
  EXPECT_EQ(store_->Get("/p/a", 2)->value, "a1");
  EXPECT_EQ(store_->Get("/p/a", 3)->value, "a2");
  EXPECT_EQ(store_->Get("/p/b", 3)->value, "b1");
  EXPECT_EQ(store_->Get("/p/b", 4).status().code(), Code::kNotFound);
  EXPECT_EQ(store_->Get("/p/a", 5).status().code(), Code::kFutureRevision);

  ListOptions at2;
  at2.at_revision = 2;
  auto list = store_->List("/p/", at2);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->kvs.size(), 2u);
  EXPECT_EQ(list->revision, 2);
  EXPECT_EQ(list->kvs[0].value, "a1");
  EXPECT_EQ(list->kvs[1].value, "b1");

  auto now = store_->List("/p/", {});
  ASSERT_TRUE(now.ok());
  ASSERT_EQ(now->kvs.size(), 1u);
  EXPECT_EQ(now->kvs[0].value, "a2");
  EXPECT_EQ(now->kvs[0].mod_rev, 3);
  EXPECT_EQ(now->revision, 4);
  ListOptions future;
  future.at_revision = 9;
  EXPECT_EQ(store_->List("/p/", future).status().code(), Code::kFutureRevision);
}

TEST_F(StoreBasicTest, ListPrefixLimitContinue) {
  for (const char* k : {"/a/1", "/a/2", "/a/3", "/a/4", "/a/5", "/b/1", "/a", "/a0"}) {
    ASSERT_TRUE(store_->Create(k, k).status.ok());
  }
  std::vector<std::string> keys;
  ListOptions opts;
  opts.limit = 2;
  int pages = 0;
  for (;;) {
    auto page = store_->List("/a/", opts);
    ASSERT_TRUE(page.ok());
    ++pages;
    for (auto& kv : page->kvs) keys.push_back(kv.key);
    if (!page->more) break;
    opts.start_after = page->kvs.back().key;
  }
  EXPECT_EQ(keys, (std::vector<std::string>{"/a/1", "/a/2", "/a/3", "/a/4", "/a/5"}));
  EXPECT_EQ(pages, 3);
  EXPECT_EQ(*store_->Count("/a/"), 5);
  EXPECT_EQ(*store_->Count(""), 8);
  EXPECT_EQ(store_->List("", {})->kvs.size(), 8u);
  EXPECT_EQ(store_->List("/zzz", {})->kvs.size(), 0u);
}

TEST_F(StoreBasicTest, PrefixWithHighBytes) {
  std::string high = "/x\xff";
  ASSERT_TRUE(store_->Create(high + "a", "1").status.ok());
  ASSERT_TRUE(store_->Create(high + "\xff", "2").status.ok());
  ASSERT_TRUE(store_->Create("/y", "3").status.ok());
  EXPECT_EQ(*store_->Count(high), 2);
  EXPECT_EQ(*store_->Count("/x"), 2);
}

TEST_F(StoreBasicTest, EmptyValueRoundTrips) {
  ASSERT_TRUE(store_->Create("/empty", "").status.ok());
  auto got = store_->Get("/empty");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->value, "");
  std::string binary("a\0b\xff", 4);
  ASSERT_TRUE(store_->Create("/bin", binary).status.ok());
  EXPECT_EQ(store_->Get("/bin")->value, binary);
}

TEST_F(StoreBasicTest, HostileInput) {
  EXPECT_EQ(store_->Create("", "v").status.code(), Code::kInvalidArgument);
  EXPECT_EQ(store_->Create(std::string("a\0b", 3), "v").status.code(), Code::kInvalidArgument);
  EXPECT_EQ(store_->Create(std::string(100000, 'k'), "v").status.code(), Code::kInvalidArgument);
  EXPECT_EQ(store_->Update("/k", "v", -1).status.code(), Code::kInvalidArgument);
  EXPECT_EQ(store_->Get("").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(store_->Get("/k", -5).status().code(), Code::kInvalidArgument);
  ListOptions absurd;
  absurd.limit = -1;
  EXPECT_EQ(store_->List("", absurd).status().code(), Code::kInvalidArgument);
  absurd.limit = int64_t{1} << 60;
  EXPECT_EQ(store_->List("", absurd).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(store_->StartWatch("", -1).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(store_->Compact(-1).code(), Code::kInvalidArgument);
  EXPECT_EQ(store_->Compact(100).code(), Code::kFutureRevision);
  // SQL metacharacters are just bytes.
  ASSERT_TRUE(store_->Create("/'; DROP TABLE kv; --", "x").status.ok());
  EXPECT_EQ(*store_->Count(""), 1);
  EXPECT_EQ(store_->CurrentRevision(), 1);
}

TEST_F(StoreBasicTest, CallbackExceptionsDoNotEscape) {
  std::atomic<bool> ran{false};
  store_->CreateAsync("/k", "v", [&](WriteOutcome) {
    ran = true;
    throw std::runtime_error("boom");
  });
  ASSERT_TRUE(WaitFor([&] { return ran.load(); }));
  EXPECT_TRUE(store_->Create("/k2", "v").status.ok());
}

TEST_F(StoreBasicTest, ReopenContinuesRevisions) {
  ASSERT_TRUE(store_->Create("/k", "v").status.ok());
  ASSERT_TRUE(store_->Update("/k", "w", 0).status.ok());
  store_.reset();
  store_ = MustOpen(TestOptions(dir_.File("db")));
  ASSERT_NE(store_, nullptr);
  EXPECT_EQ(store_->CurrentRevision(), 2);
  auto next = store_->Create("/k2", "x");
  ASSERT_TRUE(next.status.ok());
  EXPECT_EQ(next.result.revision, 3);
  EXPECT_EQ(store_->Get("/k")->value, "w");
}

TEST_F(StoreBasicTest, WritesAfterCloseFailCleanly) {
  // The store's destructor fails queued work; afterwards a new store works on the same file.
  std::atomic<int> done{0};
  for (int i = 0; i < 50; ++i) {
    store_->CreateAsync("/k" + std::to_string(i), "v", [&](WriteOutcome o) {
      EXPECT_TRUE(o.status.ok() || o.status.code() == Code::kUnavailable);
      ++done;
    });
  }
  store_.reset();
  EXPECT_EQ(done.load(), 50);
}

TEST(StoreOpenTest, CorruptFileGivesClearStatus) {
  TempDir dir;
  std::string path = dir.File("db");
  {
    std::ofstream out(path, std::ios::binary);
    out << std::string(8192, 'x');
  }
  auto store = Store::Open(TestOptions(path));
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("restore"), std::string::npos)
      << store.status().ToString();
}

TEST(StoreOpenTest, UnopenablePathGivesClearStatus) {
  TempDir dir;
  auto store = Store::Open(TestOptions(dir.File("missing/dir/db")));
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("cannot open"), std::string::npos)
      << store.status().ToString();
  StoreOptions bad = TestOptions(dir.File("db"));
  bad.max_batch = 0;
  EXPECT_EQ(Store::Open(bad).status().code(), Code::kInvalidArgument);
  bad = TestOptions(dir.File("db"));
  bad.sqlite_vfs = "no-such-vfs";
  EXPECT_FALSE(Store::Open(bad).ok());
}

TEST(StoreOpenTest, NewerSchemaIsRefused) {
  TempDir dir;
  std::string path = dir.File("db");
  {
    auto store = MustOpen(TestOptions(path));
    ASSERT_TRUE(store->Create("/k", "v").status.ok());
  }
  {
    SqliteExecutorOptions opts;
    opts.path = path;
    auto db = OpenSqliteExecutor(opts);
    ASSERT_TRUE(db.ok());
    ASSERT_TRUE((*db)->Exec("UPDATE meta SET value = 99 WHERE name = 'schema'").ok());
  }
  auto store = Store::Open(TestOptions(path));
  ASSERT_FALSE(store.ok());
  EXPECT_NE(store.status().message().find("schema version 99"), std::string::npos)
      << store.status().ToString();
}

}  // namespace
}  // namespace mk8s::store::testing
