// PowercutVfs: a test VFS that simulates losing power.
//
// Every write and truncate is held in memory until the file is synced (reads see the buffered
// data, so SQLite behaves normally); Cut() throws away everything not yet synced and makes every
// later I/O fail with SQLITE_IOERR, as if the machine died. Shared memory (-shm) passes through.
// Buffers are per path, so several connections to one file share them.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "store/vfs_shim.h"

namespace mk8s::store::testing {

class PowercutVfs : public store::VfsShim {
 public:
  static constexpr const char* kName = "mk8s-powercut";
  // Registers the VFS once per process and returns it (never destroyed).
  static PowercutVfs& Instance();

  // Drops every unsynced write and fails all further I/O until Rearm().
  void Cut();
  // Forgets all buffered state and allows I/O again (call when no file is open).
  void Rearm();

  int OnOpen(const char* path, ShimFile* file, int flags) override;
  void OnClose(ShimFile* file) override;
  int Read(ShimFile* file, void* buf, int amount, sqlite3_int64 offset) override;
  int Write(ShimFile* file, const void* buf, int amount, sqlite3_int64 offset) override;
  int Truncate(ShimFile* file, sqlite3_int64 size) override;
  int Sync(ShimFile* file, int flags) override;
  int FileSize(ShimFile* file, sqlite3_int64* size) override;
  int Fetch(ShimFile* file, sqlite3_int64 offset, int amount, void** out) override;
  int Unfetch(ShimFile* file, sqlite3_int64 offset, void* ptr) override;
  int Delete(const char* path, int sync_dir) override;

 private:
  struct PendingOp {
    bool truncate = false;
    sqlite3_int64 offset = 0;  // write offset, or the new size for a truncate
    std::string data;
  };
  struct PathState {
    std::vector<PendingOp> pending;  // GUARDED_BY(mu_), in issue order
  };
  // Size after applying pending ops over the on-disk size. Requires mu_.
  int LogicalSize(ShimFile* file, PathState* state, sqlite3_int64* size);

  std::mutex mu_;
  bool cut_ = false;                                         // GUARDED_BY(mu_)
  std::map<std::string, std::shared_ptr<PathState>> paths_;  // GUARDED_BY(mu_)
};

}  // namespace mk8s::store::testing
