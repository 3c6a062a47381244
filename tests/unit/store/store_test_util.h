// Helpers shared by the store tests: a fresh temp folder per test, store opening, and waiting on
// conditions with deadlines (never blind sleeps).
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "store/store.h"

namespace mk8s::store::testing {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "mk8s-store-XXXXXX").string();
    char* made = mkdtemp(tmpl.data());
    EXPECT_NE(made, nullptr);
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string File(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

inline StoreOptions TestOptions(const std::string& path) {
  StoreOptions options;
  options.path = path;
  options.poll_interval = std::chrono::milliseconds(50);
  return options;
}

inline std::unique_ptr<Store> MustOpen(const StoreOptions& options) {
  auto store = Store::Open(options);
  EXPECT_TRUE(store.ok()) << store.status().ToString();
  if (!store.ok()) return nullptr;
  return std::move(store).value();
}

// Polls `condition` until it holds or `timeout` passes; returns whether it held.
inline bool WaitFor(const std::function<bool()>& condition,
                    std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!condition()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

// Pulls events from `watch` until `count` arrived, the watch ends, or the deadline passes.
inline std::vector<std::shared_ptr<const Event>> Collect(
    Watch& watch, size_t count, Status* end = nullptr,
    std::chrono::milliseconds timeout = std::chrono::seconds(15)) {
  std::vector<std::shared_ptr<const Event>> events;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (events.size() < count && std::chrono::steady_clock::now() < deadline) {
    auto batch = watch.Next(std::chrono::milliseconds(100));
    if (!batch.ok()) {
      if (end != nullptr) *end = batch.status();
      break;
    }
    events.insert(events.end(), batch->begin(), batch->end());
  }
  return events;
}

// Pulls from `watch` until it ends (returns the ending status) or the deadline passes (OK).
inline Status WaitForEnd(Watch& watch,
                         std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    auto batch = watch.Next(std::chrono::milliseconds(100));
    if (!batch.ok()) return batch.status();
  }
  return Status::Ok();
}

}  // namespace mk8s::store::testing
