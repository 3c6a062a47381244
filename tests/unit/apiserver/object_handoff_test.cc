// The write path's parsed objects handed to the watch cache (object_handoff.h): the handed-over
// object equals what parsing the stored bytes gives, anything but the exact bytes falls back to
// parsing, failed writes withdraw, and the entries stay bounded.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <mutex>
#include <thread>

#include "apiserver/registry/cached_object.h"
#include "apiserver/registry/object_handoff.h"
#include "apiserver/registry/stored_bytes.h"
#include "apiserver/registry/watch_cache.h"
#include "store/store.h"

namespace mk8s::apiserver {
namespace {

using nlohmann::json;

std::shared_ptr<const std::string> Bytes(const json& object) {
  return std::make_shared<const std::string>(SerializeStored(object).bytes);
}

// A stored object with the value kinds a dump/parse round trip could change.
json Sample(const std::string& name) {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"namespace", "default"}, {"generation", 1},
                        {"labels", {{"a", "b"}}}, {"uid", "u-1"}}},
          {"data", {{"text", "quote \" backslash \\ tab \t é ✓"}, {"empty", ""}}},
          {"spec", {{"n", -3}, {"big", 18446744073709551615ull}, {"f", 0.25}, {"t", true},
                    {"nil", nullptr}, {"list", json::array({1, "x", json::object()})}}}};
}

TEST(ObjectHandoffTest, HandedOverObjectEqualsWhatParsingGives) {
  ObjectHandoff handoff;
  const json object = Sample("a");
  const auto bytes = Bytes(object);
  handoff.Offer("/registry/configmaps/default/a", bytes, object);
  const json taken = handoff.Take("/registry/configmaps/default/a", *bytes, 42);
  const json parsed = ParseStoredObject(*bytes, 42);
  ASSERT_TRUE(taken.is_object());
  EXPECT_EQ(taken, parsed);
  EXPECT_EQ(taken.dump(), parsed.dump());
  EXPECT_EQ(taken["metadata"]["resourceVersion"], "42");
  EXPECT_EQ(handoff.size(), 0u);
  // Taken once: a second event with the same bytes parses.
  EXPECT_TRUE(handoff.Take("/registry/configmaps/default/a", *bytes, 43).is_null());
}

TEST(ObjectHandoffTest, OtherBytesOrKeyFallBackAndWithdrawReturnsTheObject) {
  ObjectHandoff handoff;
  const json object = Sample("a");
  const uint64_t ticket = handoff.Offer("/k/a", Bytes(object), object);
  EXPECT_TRUE(handoff.Take("/k/a", *Bytes(Sample("other")), 5).is_null());
  EXPECT_TRUE(handoff.Take("/k/b", *Bytes(object), 5).is_null());
  EXPECT_EQ(handoff.size(), 1u);
  auto withdrawn = handoff.Withdraw("/k/a", ticket);
  ASSERT_TRUE(withdrawn.has_value());
  EXPECT_EQ(*withdrawn, object);
  EXPECT_EQ(handoff.size(), 0u);
  EXPECT_FALSE(handoff.Withdraw("/k/a", ticket).has_value());
}

TEST(ObjectHandoffTest, TwoWritesOfOneKeyEachTakeTheirOwn) {
  ObjectHandoff handoff;
  const json first = Sample("one"), second = Sample("two");
  handoff.Offer("/k", Bytes(first), first);
  handoff.Offer("/k", Bytes(second), second);
  EXPECT_EQ(handoff.Take("/k", *Bytes(second), 2)["metadata"]["name"], "two");
  EXPECT_EQ(handoff.Take("/k", *Bytes(first), 3)["metadata"]["name"], "one");
  EXPECT_EQ(handoff.size(), 0u);
}

TEST(ObjectHandoffTest, EntriesNobodyTakesAreEvictedOldestFirst) {
  ObjectHandoff handoff(/*capacity=*/3);
  std::vector<std::shared_ptr<const std::string>> bytes;
  for (int i = 0; i < 5; ++i) {
    const json object = Sample("n" + std::to_string(i));
    bytes.push_back(Bytes(object));
    handoff.Offer("/k/" + std::to_string(i), bytes.back(), object);
  }
  EXPECT_EQ(handoff.size(), 3u);
  EXPECT_TRUE(handoff.Take("/k/0", *bytes[0], 9).is_null());
  EXPECT_TRUE(handoff.Take("/k/1", *bytes[1], 9).is_null());
  EXPECT_FALSE(handoff.Take("/k/4", *bytes[4], 9).is_null());
}

class HandoffCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("mk8s-handoff-" + std::to_string(getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::create_directories(dir_);
    store::StoreOptions options;
    options.path = (dir_ / "store.db").string();
    store_ = std::move(store::Store::Open(options).value());
    cache_ = std::move(WatchCache::Start(store_.get(), "/registry/").value());
  }
  void TearDown() override {
    cache_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::filesystem::path dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<WatchCache> cache_;
};

// A signed integer survives only in the handed-over object (a parse gives an unsigned one), so
// it tells which path the cache took; the two compare equal either way.
TEST_F(HandoffCacheTest, CacheTakesTheOfferedObjectForTheBytesStored) {
  const std::string key = "/registry/configmaps/default/a";
  json object = Sample("a");
  object["data"]["n"] = json(int64_t{7});
  ASSERT_FALSE(object["data"]["n"].is_number_unsigned());
  const auto bytes = Bytes(object);
  cache_->handoff().Offer(key, bytes, object);
  const auto outcome = store_->Create(key, *bytes);
  ASSERT_TRUE(outcome.status.ok());
  ASSERT_TRUE(cache_->WaitUntilFresh(outcome.result.revision, std::chrono::seconds(10)).ok());
  const CachedObjectPtr cached = cache_->Get(key);
  ASSERT_TRUE(cached);
  EXPECT_FALSE(cached->object()["data"]["n"].is_number_unsigned()) << "parsed, not handed over";
  EXPECT_EQ(cached->object(), ParseStoredObject(*bytes, outcome.result.revision));
  EXPECT_EQ(cached->Json(), SerializeStored(object).WithResourceVersion(outcome.result.revision));
  EXPECT_EQ(cache_->handoff().size(), 0u);
}

// A write's StoredBytes offered with the object: the cache's text is spliced from them and is
// exactly the dump of the cached object (what a cache that serializes would serve).
TEST_F(HandoffCacheTest, CachedTextFromTheOfferedStoredBytesEqualsTheDump) {
  const std::string key = "/registry/configmaps/default/s";
  json object = Sample("s");
  object["data"]["n"] = json(int64_t{7});
  auto stored = std::make_shared<const StoredBytes>(SerializeStored(object));
  cache_->handoff().Offer(key, stored, object);
  const auto outcome = store_->Create(key, stored->bytes);
  ASSERT_TRUE(outcome.status.ok());
  ASSERT_TRUE(cache_->WaitUntilFresh(outcome.result.revision, std::chrono::seconds(10)).ok());
  const CachedObjectPtr cached = cache_->Get(key);
  ASSERT_TRUE(cached);
  EXPECT_FALSE(cached->object()["data"]["n"].is_number_unsigned()) << "parsed, not handed over";
  EXPECT_EQ(cached->Json(), cached->object().dump(-1, ' ', false, json::error_handler_t::replace));
  EXPECT_EQ(cached->Json(), stored->WithResourceVersion(outcome.result.revision));
  // Superseded, the version keeps that text as its compact form.
  EXPECT_EQ(CachedObject::Compact(*cached)->Json(), cached->Json());
}

TEST(CachedObjectTest, TextFromStoredBytesEqualsTheDump) {
  for (json object : {Sample("a"), json{{"kind", "X"}, {"metadata", json::object()}},
                      json{{"kind", "X"}, {"metadata", {{"uid", "z"}}}},
                      json{{"kind", "X"}, {"metadata", {{"annotations", {{"a", "b"}}}}}},
                      json{{"kind", "X"}}}) {
    auto stored = std::make_shared<const StoredBytes>(SerializeStored(object));
    if (object.contains("metadata")) object["metadata"]["resourceVersion"] = "12";
    CachedObject cached("/k", 12, object, stored);
    EXPECT_EQ(cached.Json(), object.dump(-1, ' ', false, json::error_handler_t::replace));
    // Released before any text was made: the text is dumped, the same.
    CachedObject released("/k", 12, object, stored);
    released.ReleaseStoredBytes();
    EXPECT_EQ(released.Json(), cached.Json());
  }
}

TEST_F(HandoffCacheTest, CacheParsesWhenTheStoredBytesDifferFromTheOffer) {
  const std::string key = "/registry/configmaps/default/b";
  json offered = Sample("b");
  offered["data"]["n"] = json(int64_t{7});
  cache_->handoff().Offer(key, Bytes(offered), offered);
  json stored = Sample("b");
  stored["data"]["n"] = 8;
  const auto outcome = store_->Create(key, *Bytes(stored));
  ASSERT_TRUE(outcome.status.ok());
  ASSERT_TRUE(cache_->WaitUntilFresh(outcome.result.revision, std::chrono::seconds(10)).ok());
  const CachedObjectPtr cached = cache_->Get(key);
  ASSERT_TRUE(cached);
  EXPECT_EQ(cached->object()["data"]["n"], 8);
  EXPECT_TRUE(cached->object()["data"]["n"].is_number_unsigned());
  EXPECT_EQ(cache_->handoff().size(), 1u);  // left for eviction (a real write withdraws it)
}

TEST_F(HandoffCacheTest, DeleteEventCarriesTheLastVersionAtTheDeleteRevision) {
  const std::string key = "/registry/configmaps/default/c";
  const json object = Sample("c");
  const auto created = store_->Create(key, *Bytes(object));
  ASSERT_TRUE(created.status.ok());
  std::mutex mu;
  CacheEventPtr deleted;
  auto registration = cache_->Watch("/registry/configmaps/", created.result.revision, false,
                                    [&](const CacheEventPtr& event) {
                                      std::lock_guard lock(mu);
                                      if (event->type == WatchEventType::kDeleted) deleted = event;
                                    });
  ASSERT_TRUE(registration.ok());
  const auto removed = store_->Delete(key, 0);
  ASSERT_TRUE(removed.status.ok());
  // Callbacks run after the cache is fresh (outside its lock): wait for the event itself.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  std::unique_lock lock(mu);
  while (!deleted && std::chrono::steady_clock::now() < deadline) {
    lock.unlock();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));  // poll
    lock.lock();
  }
  ASSERT_TRUE(deleted);
  EXPECT_EQ(deleted->object->object(), ParseStoredObject(*Bytes(object), removed.result.revision));
  EXPECT_EQ(deleted->object->revision(), removed.result.revision);
}

}  // namespace
}  // namespace mk8s::apiserver
