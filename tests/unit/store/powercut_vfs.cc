#include "powercut_vfs.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

namespace mk8s::store::testing {

PowercutVfs& PowercutVfs::Instance() {
  static PowercutVfs* vfs = [] {
    auto* v = new PowercutVfs();
    Status st = v->Register(kName, "");
    if (!st.ok()) std::abort();
    return v;
  }();
  return *vfs;
}

void PowercutVfs::Cut() {
  std::lock_guard<std::mutex> lock(mu_);
  cut_ = true;
  for (auto& [path, state] : paths_) state->pending.clear();
}

void PowercutVfs::Rearm() {
  std::lock_guard<std::mutex> lock(mu_);
  cut_ = false;
  paths_.clear();
}

int PowercutVfs::OnOpen(const char* path, ShimFile* file, int /*flags*/) {
  if (path == nullptr) return SQLITE_OK;  // temp file: pass through
  std::lock_guard<std::mutex> lock(mu_);
  if (cut_) return SQLITE_IOERR;
  auto& state = paths_[path];
  if (state == nullptr) state = std::make_shared<PathState>();
  file->state = new std::shared_ptr<PathState>(state);
  return SQLITE_OK;
}

void PowercutVfs::OnClose(ShimFile* file) {
  delete static_cast<std::shared_ptr<PathState>*>(file->state);
  file->state = nullptr;
}

int PowercutVfs::LogicalSize(ShimFile* file, PathState* state, sqlite3_int64* size) {
  int rc = file->real->pMethods->xFileSize(file->real, size);
  if (rc != SQLITE_OK) return rc;
  for (const PendingOp& op : state->pending) {
    if (op.truncate) {
      *size = op.offset;
    } else {
      *size =
          std::max<sqlite3_int64>(*size, op.offset + static_cast<sqlite3_int64>(op.data.size()));
    }
  }
  return SQLITE_OK;
}

int PowercutVfs::Read(ShimFile* file, void* buf, int amount, sqlite3_int64 offset) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cut_) return SQLITE_IOERR_READ;
  if (file->state == nullptr) return VfsShim::Read(file, buf, amount, offset);
  PathState* state = static_cast<std::shared_ptr<PathState>*>(file->state)->get();
  auto* out = static_cast<char*>(buf);
  int rc = file->real->pMethods->xRead(file->real, buf, amount, offset);  // zero-fills short reads
  if (rc != SQLITE_OK && rc != SQLITE_IOERR_SHORT_READ) return rc;
  sqlite3_int64 size = 0;
  if (int s = file->real->pMethods->xFileSize(file->real, &size); s != SQLITE_OK) return s;
  const sqlite3_int64 end = offset + amount;
  for (const PendingOp& op : state->pending) {
    if (op.truncate) {
      size = op.offset;
      if (size < end) {
        sqlite3_int64 from = std::max(offset, size);
        std::memset(out + (from - offset), 0, static_cast<size_t>(end - from));
      }
      continue;
    }
    const sqlite3_int64 op_end = op.offset + static_cast<sqlite3_int64>(op.data.size());
    size = std::max(size, op_end);
    const sqlite3_int64 lo = std::max(offset, op.offset);
    const sqlite3_int64 hi = std::min(end, op_end);
    if (lo < hi) {
      std::memcpy(out + (lo - offset), op.data.data() + (lo - op.offset),
                  static_cast<size_t>(hi - lo));
    }
  }
  return end > size ? SQLITE_IOERR_SHORT_READ : SQLITE_OK;
}

int PowercutVfs::Write(ShimFile* file, const void* buf, int amount, sqlite3_int64 offset) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cut_) return SQLITE_IOERR_WRITE;
  if (file->state == nullptr) return VfsShim::Write(file, buf, amount, offset);
  PathState* state = static_cast<std::shared_ptr<PathState>*>(file->state)->get();
  state->pending.push_back(PendingOp{
      false, offset, std::string(static_cast<const char*>(buf), static_cast<size_t>(amount))});
  return SQLITE_OK;
}

int PowercutVfs::Truncate(ShimFile* file, sqlite3_int64 size) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cut_) return SQLITE_IOERR_TRUNCATE;
  if (file->state == nullptr) return VfsShim::Truncate(file, size);
  PathState* state = static_cast<std::shared_ptr<PathState>*>(file->state)->get();
  state->pending.push_back(PendingOp{true, size, {}});
  return SQLITE_OK;
}

int PowercutVfs::Sync(ShimFile* file, int flags) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cut_) return SQLITE_IOERR_FSYNC;
  if (file->state != nullptr) {
    // Make the buffered operations real, then sync them: this is the durability point.
    PathState* state = static_cast<std::shared_ptr<PathState>*>(file->state)->get();
    for (const PendingOp& op : state->pending) {
      int rc = op.truncate
                   ? file->real->pMethods->xTruncate(file->real, op.offset)
                   : file->real->pMethods->xWrite(file->real, op.data.data(),
                                                  static_cast<int>(op.data.size()), op.offset);
      if (rc != SQLITE_OK) return rc;
    }
    state->pending.clear();
  }
  return file->real->pMethods->xSync(file->real, flags);
}

int PowercutVfs::FileSize(ShimFile* file, sqlite3_int64* size) {
  std::lock_guard<std::mutex> lock(mu_);
  if (cut_) return SQLITE_IOERR_FSTAT;
  if (file->state == nullptr) return VfsShim::FileSize(file, size);
  return LogicalSize(file, static_cast<std::shared_ptr<PathState>*>(file->state)->get(), size);
}

int PowercutVfs::Fetch(ShimFile*, sqlite3_int64, int, void** out) {
  *out = nullptr;  // no memory-mapped reads: they would bypass the buffered writes
  return SQLITE_OK;
}

int PowercutVfs::Unfetch(ShimFile*, sqlite3_int64, void*) { return SQLITE_OK; }

int PowercutVfs::Delete(const char* path, int sync_dir) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (cut_) return SQLITE_IOERR_DELETE;
    auto it = paths_.find(path);
    if (it != paths_.end()) it->second->pending.clear();
  }
  return VfsShim::Delete(path, sync_dir);
}

}  // namespace mk8s::store::testing
