// Shared fixture of the watch cache tests (watch_cache_test, watch_dispatch_test): a real store in
// a temp folder of its own per test, an optional WatchCache over it, ConfigMap writers and a
// polling wait. Single-threaded use from the test body; callbacks of the cache may run on the
// cache's thread, so tests guard what they collect themselves.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>

#include "apiserver/registry/watch_cache.h"
#include "store/store.h"

namespace mk8s::apiserver {

class WatchCacheFixture : public ::testing::Test {
 protected:
  // A fresh store in <tmp>/mk8s-<suite>-<pid>-<test>; no cache yet (StartCache() makes one).
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("mk8s-" + std::string(info->test_suite_name()) + "-" + std::to_string(getpid()) + "-" +
            info->name());
    std::filesystem::create_directories(dir_);
    store::StoreOptions options;
    options.path = (dir_ / "store.db").string();
    store_ = std::move(store::Store::Open(options).value());
  }
  // The cache goes before the store it reads.
  void TearDown() override {
    cache_.reset();
    store_.reset();
    std::filesystem::remove_all(dir_);
  }

  // Starts cache_ over the whole /registry/ prefix (`fanout_threads` as in WatchCache::Start).
  void StartCache(WatchCache::HistoryBounds bounds = {}, size_t fanout_threads = 0) {
    cache_ = std::move(
        WatchCache::Start(store_.get(), "/registry/", bounds, fanout_threads).value());
  }

  static std::string ConfigMapKey(const std::string& name) {
    return "/registry/configmaps/default/" + name;
  }

  // Creates ConfigMap `name` (without data); the write must succeed. Returns its revision.
  int64_t Create(const std::string& name) {
    nlohmann::json object = {{"kind", "ConfigMap"}, {"metadata", {{"name", name}}}};
    auto outcome = store_->Create(ConfigMapKey(name), object.dump());
    EXPECT_TRUE(outcome.status.ok()) << outcome.status.ToString();
    return outcome.result.revision;
  }

  // Creates or updates ConfigMap `name` with data {v: value}. Returns its revision.
  int64_t Put(const std::string& name, const std::string& value) {
    const std::string key = ConfigMapKey(name);
    nlohmann::json object = {
        {"kind", "ConfigMap"}, {"metadata", {{"name", name}}}, {"data", {{"v", value}}}};
    auto existing = store_->Get(key);
    auto outcome = existing.ok() ? store_->Update(key, object.dump(), existing->mod_rev)
                                 : store_->Create(key, object.dump());
    EXPECT_TRUE(outcome.status.ok()) << outcome.status.ToString();
    return outcome.result.revision;
  }

  // Polls until `predicate` holds (true) or 10 s pass (false).
  template <typename Predicate>
  bool WaitFor(Predicate predicate) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      if (predicate()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return false;
  }

  std::filesystem::path dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<WatchCache> cache_;
};

}  // namespace mk8s::apiserver
