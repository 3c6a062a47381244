// VfsShim: a SQLite VFS that forwards to another VFS, with virtual hooks for the file operations a
// subclass wants to observe or change. The store's fsync-counting VFS and the tests' power-cut VFS
// are both shims; shims stack (a counting shim over a power-cut shim over the unix VFS).
//
// Lifetime: SQLite keeps raw pointers to a registered VFS and there is no safe moment to
// unregister it while connections may exist, so a registered shim must live until process exit
// (the helpers below keep them in function-local statics).
// Threads: hooks run on whatever threads use the connections, concurrently for different files.
#pragma once

#include <sqlite3.h>

#include <string>

#include "common/status.h"

namespace mk8s::store {

class VfsShim;

// One open file of a shim. SQLite allocates it (szOsFile); the base VFS's file lives right after
// it in the same block.
struct ShimFile {
  sqlite3_file handle;  // what SQLite sees; must stay first
  VfsShim* shim;
  sqlite3_file* real;  // the base VFS's file
  void* state;         // subclass-owned; set in OnOpen, released in OnClose
};

class VfsShim {
 public:
  VfsShim() = default;
  VfsShim(const VfsShim&) = delete;
  VfsShim& operator=(const VfsShim&) = delete;
  virtual ~VfsShim() = default;

  // Registers this shim under `name`, forwarding to `base_vfs` (empty = SQLite's default VFS).
  Status Register(const std::string& name, const std::string& base_vfs);
  const std::string& name() const { return name_; }
  sqlite3_vfs* base() const { return base_; }

  // File hooks. Defaults forward to the base file.
  // OnOpen runs after the base file opened successfully; a non-SQLITE_OK result fails the open.
  virtual int OnOpen(const char* path, ShimFile* file, int flags);
  virtual void OnClose(ShimFile* file);  // before the base file is closed
  virtual int Read(ShimFile* file, void* buf, int amount, sqlite3_int64 offset);
  virtual int Write(ShimFile* file, const void* buf, int amount, sqlite3_int64 offset);
  virtual int Truncate(ShimFile* file, sqlite3_int64 size);
  virtual int Sync(ShimFile* file, int flags);
  virtual int FileSize(ShimFile* file, sqlite3_int64* size);
  // Memory-mapped reads; a shim that buffers writes must return *out = nullptr here.
  virtual int Fetch(ShimFile* file, sqlite3_int64 offset, int amount, void** out);
  virtual int Unfetch(ShimFile* file, sqlite3_int64 offset, void* ptr);
  // VFS-level delete (journal and WAL files).
  virtual int Delete(const char* path, int sync_dir);

 private:
  friend struct VfsShimTrampolines;
  std::string name_;
  sqlite3_vfs* base_ = nullptr;
  sqlite3_vfs vfs_{};
  sqlite3_io_methods methods_{};
};

}  // namespace mk8s::store
