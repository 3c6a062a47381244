#include "store/vfs_shim.h"

#include <cstddef>

namespace mk8s::store {
namespace {

constexpr size_t kShimFileSize = (sizeof(ShimFile) + 15) & ~size_t{15};

ShimFile* AsShim(sqlite3_file* f) { return reinterpret_cast<ShimFile*>(f); }
const sqlite3_io_methods* RealMethods(sqlite3_file* f) { return AsShim(f)->real->pMethods; }

}  // namespace

// C entry points SQLite calls; each forwards to the shim's virtual hook or to the base.
struct VfsShimTrampolines {
  static VfsShim* Shim(sqlite3_vfs* vfs) { return static_cast<VfsShim*>(vfs->pAppData); }

  // ---- io methods ----
  static int Close(sqlite3_file* f) {
    ShimFile* file = AsShim(f);
    file->shim->OnClose(file);
    return file->real->pMethods->xClose(file->real);
  }
  static int Read(sqlite3_file* f, void* buf, int amount, sqlite3_int64 offset) {
    return AsShim(f)->shim->Read(AsShim(f), buf, amount, offset);
  }
  static int Write(sqlite3_file* f, const void* buf, int amount, sqlite3_int64 offset) {
    return AsShim(f)->shim->Write(AsShim(f), buf, amount, offset);
  }
  static int Truncate(sqlite3_file* f, sqlite3_int64 size) {
    return AsShim(f)->shim->Truncate(AsShim(f), size);
  }
  static int Sync(sqlite3_file* f, int flags) { return AsShim(f)->shim->Sync(AsShim(f), flags); }
  static int FileSize(sqlite3_file* f, sqlite3_int64* size) {
    return AsShim(f)->shim->FileSize(AsShim(f), size);
  }
  static int Lock(sqlite3_file* f, int level) {
    return RealMethods(f)->xLock(AsShim(f)->real, level);
  }
  static int Unlock(sqlite3_file* f, int level) {
    return RealMethods(f)->xUnlock(AsShim(f)->real, level);
  }
  static int CheckReservedLock(sqlite3_file* f, int* out) {
    return RealMethods(f)->xCheckReservedLock(AsShim(f)->real, out);
  }
  static int FileControl(sqlite3_file* f, int op, void* arg) {
    return RealMethods(f)->xFileControl(AsShim(f)->real, op, arg);
  }
  static int SectorSize(sqlite3_file* f) { return RealMethods(f)->xSectorSize(AsShim(f)->real); }
  static int DeviceCharacteristics(sqlite3_file* f) {
    return RealMethods(f)->xDeviceCharacteristics(AsShim(f)->real);
  }
  static int ShmMap(sqlite3_file* f, int page, int page_size, int extend, void volatile** out) {
    if (RealMethods(f)->iVersion < 2) return SQLITE_IOERR;
    return RealMethods(f)->xShmMap(AsShim(f)->real, page, page_size, extend, out);
  }
  static int ShmLock(sqlite3_file* f, int offset, int n, int flags) {
    if (RealMethods(f)->iVersion < 2) return SQLITE_IOERR;
    return RealMethods(f)->xShmLock(AsShim(f)->real, offset, n, flags);
  }
  static void ShmBarrier(sqlite3_file* f) {
    if (RealMethods(f)->iVersion >= 2) RealMethods(f)->xShmBarrier(AsShim(f)->real);
  }
  static int ShmUnmap(sqlite3_file* f, int delete_flag) {
    if (RealMethods(f)->iVersion < 2) return SQLITE_OK;
    return RealMethods(f)->xShmUnmap(AsShim(f)->real, delete_flag);
  }
  static int Fetch(sqlite3_file* f, sqlite3_int64 offset, int amount, void** out) {
    return AsShim(f)->shim->Fetch(AsShim(f), offset, amount, out);
  }
  static int Unfetch(sqlite3_file* f, sqlite3_int64 offset, void* ptr) {
    return AsShim(f)->shim->Unfetch(AsShim(f), offset, ptr);
  }

  // ---- vfs methods ----
  static int Open(sqlite3_vfs* vfs, const char* name, sqlite3_file* f, int flags, int* out_flags) {
    VfsShim* shim = Shim(vfs);
    ShimFile* file = AsShim(f);
    file->handle.pMethods = nullptr;
    file->shim = shim;
    file->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(f) + kShimFileSize);
    file->real->pMethods = nullptr;
    file->state = nullptr;
    int rc = shim->base_->xOpen(shim->base_, name, file->real, flags, out_flags);
    if (rc != SQLITE_OK) {
      if (file->real->pMethods != nullptr) file->real->pMethods->xClose(file->real);
      return rc;
    }
    rc = shim->OnOpen(name, file, flags);
    if (rc != SQLITE_OK) {
      file->real->pMethods->xClose(file->real);
      return rc;
    }
    file->handle.pMethods = &shim->methods_;
    return SQLITE_OK;
  }
  static int Delete(sqlite3_vfs* vfs, const char* name, int sync_dir) {
    return Shim(vfs)->Delete(name, sync_dir);
  }
  static int Access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
    sqlite3_vfs* b = Shim(vfs)->base_;
    return b->xAccess(b, name, flags, out);
  }
  static int FullPathname(sqlite3_vfs* vfs, const char* name, int n, char* out) {
    sqlite3_vfs* b = Shim(vfs)->base_;
    return b->xFullPathname(b, name, n, out);
  }
  static void* DlOpen(sqlite3_vfs* vfs, const char* name) {
    sqlite3_vfs* b = Shim(vfs)->base_;
    return b->xDlOpen(b, name);
  }
  static void DlError(sqlite3_vfs* vfs, int n, char* out) {
    sqlite3_vfs* b = Shim(vfs)->base_;
    b->xDlError(b, n, out);
  }
  static void (*DlSym(sqlite3_vfs* vfs, void* handle, const char* sym))(void) {
    sqlite3_vfs* b = Shim(vfs)->base_;
    return b->xDlSym(b, handle, sym);
  }
  static void DlClose(sqlite3_vfs* vfs, void* handle) {
    sqlite3_vfs* b = Shim(vfs)->base_;
    b->xDlClose(b, handle);
  }
  static int Randomness(sqlite3_vfs* vfs, int n, char* out) {
    sqlite3_vfs* b = Shim(vfs)->base_;
    return b->xRandomness(b, n, out);
  }
  static int Sleep(sqlite3_vfs* vfs, int micros) {
    sqlite3_vfs* b = Shim(vfs)->base_;
    return b->xSleep(b, micros);
  }
  static int CurrentTime(sqlite3_vfs* vfs, double* out) {
    sqlite3_vfs* b = Shim(vfs)->base_;
    return b->xCurrentTime(b, out);
  }
  static int GetLastError(sqlite3_vfs* vfs, int n, char* out) {
    sqlite3_vfs* b = Shim(vfs)->base_;
    return b->xGetLastError ? b->xGetLastError(b, n, out) : 0;
  }
  static int CurrentTimeInt64(sqlite3_vfs* vfs, sqlite3_int64* out) {
    sqlite3_vfs* b = Shim(vfs)->base_;
    if (b->iVersion >= 2 && b->xCurrentTimeInt64) return b->xCurrentTimeInt64(b, out);
    double now = 0;
    int rc = b->xCurrentTime(b, &now);
    *out = static_cast<sqlite3_int64>(now * 86400000.0);
    return rc;
  }
};

Status VfsShim::Register(const std::string& name, const std::string& base_vfs) {
  base_ = sqlite3_vfs_find(base_vfs.empty() ? nullptr : base_vfs.c_str());
  if (base_ == nullptr) {
    return Status(Code::kInvalidArgument, "SQLite VFS '" + base_vfs + "' is not registered");
  }
  name_ = name;
  using T = VfsShimTrampolines;
  methods_.iVersion = 3;
  methods_.xClose = T::Close;
  methods_.xRead = T::Read;
  methods_.xWrite = T::Write;
  methods_.xTruncate = T::Truncate;
  methods_.xSync = T::Sync;
  methods_.xFileSize = T::FileSize;
  methods_.xLock = T::Lock;
  methods_.xUnlock = T::Unlock;
  methods_.xCheckReservedLock = T::CheckReservedLock;
  methods_.xFileControl = T::FileControl;
  methods_.xSectorSize = T::SectorSize;
  methods_.xDeviceCharacteristics = T::DeviceCharacteristics;
  methods_.xShmMap = T::ShmMap;
  methods_.xShmLock = T::ShmLock;
  methods_.xShmBarrier = T::ShmBarrier;
  methods_.xShmUnmap = T::ShmUnmap;
  methods_.xFetch = T::Fetch;
  methods_.xUnfetch = T::Unfetch;

  vfs_.iVersion = 2;
  vfs_.szOsFile = static_cast<int>(kShimFileSize) + base_->szOsFile;
  vfs_.mxPathname = base_->mxPathname;
  vfs_.zName = name_.c_str();
  vfs_.pAppData = this;
  vfs_.xOpen = T::Open;
  vfs_.xDelete = T::Delete;
  vfs_.xAccess = T::Access;
  vfs_.xFullPathname = T::FullPathname;
  vfs_.xDlOpen = T::DlOpen;
  vfs_.xDlError = T::DlError;
  vfs_.xDlSym = T::DlSym;
  vfs_.xDlClose = T::DlClose;
  vfs_.xRandomness = T::Randomness;
  vfs_.xSleep = T::Sleep;
  vfs_.xCurrentTime = T::CurrentTime;
  vfs_.xGetLastError = T::GetLastError;
  vfs_.xCurrentTimeInt64 = T::CurrentTimeInt64;
  int rc = sqlite3_vfs_register(&vfs_, /*makeDflt=*/0);
  if (rc != SQLITE_OK) {
    return Status(Code::kInternal,
                  "cannot register SQLite VFS '" + name + "': " + sqlite3_errstr(rc));
  }
  return Status::Ok();
}

int VfsShim::OnOpen(const char*, ShimFile*, int) { return SQLITE_OK; }
void VfsShim::OnClose(ShimFile*) {}
int VfsShim::Read(ShimFile* f, void* buf, int amount, sqlite3_int64 offset) {
  return f->real->pMethods->xRead(f->real, buf, amount, offset);
}
int VfsShim::Write(ShimFile* f, const void* buf, int amount, sqlite3_int64 offset) {
  return f->real->pMethods->xWrite(f->real, buf, amount, offset);
}
int VfsShim::Truncate(ShimFile* f, sqlite3_int64 size) {
  return f->real->pMethods->xTruncate(f->real, size);
}
int VfsShim::Sync(ShimFile* f, int flags) { return f->real->pMethods->xSync(f->real, flags); }
int VfsShim::FileSize(ShimFile* f, sqlite3_int64* size) {
  return f->real->pMethods->xFileSize(f->real, size);
}
int VfsShim::Fetch(ShimFile* f, sqlite3_int64 offset, int amount, void** out) {
  if (f->real->pMethods->iVersion < 3) {
    *out = nullptr;
    return SQLITE_OK;
  }
  return f->real->pMethods->xFetch(f->real, offset, amount, out);
}
int VfsShim::Unfetch(ShimFile* f, sqlite3_int64 offset, void* ptr) {
  if (f->real->pMethods->iVersion < 3) return SQLITE_OK;
  return f->real->pMethods->xUnfetch(f->real, offset, ptr);
}
int VfsShim::Delete(const char* path, int sync_dir) {
  return base_->xDelete(base_, path, sync_dir);
}

}  // namespace mk8s::store
