#include "store/counting_vfs.h"

#include <map>
#include <mutex>

#include "store/vfs_shim.h"

namespace mk8s::store {
namespace {

// Process-wide id -> counter table. Guarded by CounterMutex().
std::mutex& CounterMutex() {
  static std::mutex mu;
  return mu;
}
std::map<int64_t, std::weak_ptr<FsyncCounter>>& Counters() {
  static auto* counters = new std::map<int64_t, std::weak_ptr<FsyncCounter>>();
  return *counters;
}

class CountingShim : public VfsShim {
 public:
  // Resolves the counter named by the file's URI parameter; files without one are not counted.
  int OnOpen(const char* path, ShimFile* file, int /*flags*/) override {
    if (path == nullptr) return SQLITE_OK;
    int64_t id = sqlite3_uri_int64(path, kFsyncCounterUriParam, 0);
    if (id == 0) return SQLITE_OK;
    std::lock_guard<std::mutex> lock(CounterMutex());
    auto it = Counters().find(id);
    if (it == Counters().end()) return SQLITE_OK;
    if (auto counter = it->second.lock()) {
      file->state = new std::shared_ptr<FsyncCounter>(std::move(counter));
    }
    return SQLITE_OK;
  }
  void OnClose(ShimFile* file) override {
    delete static_cast<std::shared_ptr<FsyncCounter>*>(file->state);
    file->state = nullptr;
  }
  int Sync(ShimFile* file, int flags) override {
    int rc = VfsShim::Sync(file, flags);
    if (file->state != nullptr) {
      (*static_cast<std::shared_ptr<FsyncCounter>*>(file->state))->Increment();
    }
    return rc;
  }
};

}  // namespace

std::shared_ptr<FsyncCounter> FsyncCounter::Create() {
  static std::atomic<int64_t> next_id{1};
  std::shared_ptr<FsyncCounter> counter(new FsyncCounter(next_id.fetch_add(1)));
  std::lock_guard<std::mutex> lock(CounterMutex());
  Counters()[counter->id()] = counter;
  return counter;
}

FsyncCounter::~FsyncCounter() {
  std::lock_guard<std::mutex> lock(CounterMutex());
  Counters().erase(id_);
}

Result<std::string> CountingVfsOver(const std::string& base_vfs) {
  static std::mutex mu;
  // Shims are never unregistered (see vfs_shim.h), so they are intentionally leaked.
  static auto* shims = new std::map<std::string, CountingShim*>();
  std::lock_guard<std::mutex> lock(mu);
  auto it = shims->find(base_vfs);
  if (it != shims->end()) return it->second->name();
  auto* shim = new CountingShim();
  Status st = shim->Register("mk8s-count+" + (base_vfs.empty() ? "default" : base_vfs), base_vfs);
  if (!st.ok()) {
    delete shim;
    return st;
  }
  (*shims)[base_vfs] = shim;
  return shim->name();
}

}  // namespace mk8s::store
