// The fsync-counting VFS: a VfsShim that counts xSync calls per store.
//
// A store creates an FsyncCounter and opens its database with the URI parameter
// `kFsyncCounterUriParam=<counter id>` through CountingVfsOver(base). SQLite passes URI parameters
// to the WAL and journal files too, so every sync of the store's files lands in its counter.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "common/status.h"

namespace mk8s::store {

inline constexpr const char* kFsyncCounterUriParam = "mk8s_fsync_counter";

// Thread-safe. Registered in a process-wide table by id while alive.
class FsyncCounter {
 public:
  static std::shared_ptr<FsyncCounter> Create();
  ~FsyncCounter();
  int64_t id() const { return id_; }
  int64_t count() const { return count_.load(std::memory_order_relaxed); }
  void Increment() { count_.fetch_add(1, std::memory_order_relaxed); }

 private:
  explicit FsyncCounter(int64_t id) : id_(id) {}
  const int64_t id_;
  std::atomic<int64_t> count_{0};
};

// Registers (once per base) a counting shim over `base_vfs` (empty = default VFS) and returns the
// name to open databases with. Thread-safe.
Result<std::string> CountingVfsOver(const std::string& base_vfs);

}  // namespace mk8s::store
