// StoreImpl: the SQLite-backed Store. Wires together the writer (group commit), the reader pool,
// the log tailer and watch hub, and the maintenance thread.
//
// Threads owned: writer (Writer), tailer (LogTailer), maintenance (WAL checkpoints off the commit
// path, and automatic compaction). Destruction order: maintenance, writer, tailer, then every
// watch ends with kUnavailable.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>

#include "store/counting_vfs.h"
#include "store/log_tailer.h"
#include "store/reader_pool.h"
#include "store/store.h"
#include "store/watch_hub.h"
#include "store/writer.h"

namespace mk8s::store {

class StoreImpl : public Store {
 public:
  static Result<std::unique_ptr<Store>> OpenImpl(const StoreOptions& options);
  ~StoreImpl() override;

  int64_t CurrentRevision() override { return current_rev_.load(); }
  int64_t CompactedRevision() override { return compact_rev_.load(); }
  Result<KeyValue> Get(std::string_view key, int64_t at_revision) override;
  Result<ListResult> List(std::string_view prefix, const ListOptions& options) override;
  Result<int64_t> Count(std::string_view prefix) override;
  void CreateAsync(std::string key, std::string value, WriteCallback done) override;
  void UpdateAsync(std::string key, std::string value, int64_t expected_mod_rev,
                   WriteCallback done) override;
  void DeleteAsync(std::string key, int64_t expected_mod_rev, WriteCallback done) override;
  Result<std::unique_ptr<Watch>> StartWatch(std::string prefix, int64_t after_revision) override;
  Status Compact(int64_t revision) override;
  Status Backup(const std::string& path) override;
  Status Restore(const std::string& path) override;
  Stats GetStats() override;

 private:
  explicit StoreImpl(const StoreOptions& options) : options_(options) {}

  // wal_autocheckpoint_pages: 0 = never checkpoint from this connection.
  Result<std::unique_ptr<SqlExecutor>> OpenConnection(bool read_only,
                                                      int wal_autocheckpoint_pages = 0);
  void Submit(WriteOp op);
  // Raises the cached revisions (never lowers them).
  void NoteRevisions(int64_t revision, int64_t compact_rev);
  // Reads backlog events in (from, to] matching `prefix` into `watch`; kCompacted if too old.
  Status ReadBacklog(WatchState& watch, int64_t from, int64_t to);
  void MaintenanceLoop();

  const StoreOptions options_;
  std::string vfs_name_;  // counting shim over options_.sqlite_vfs
  std::shared_ptr<FsyncCounter> fsyncs_;
  std::atomic<int64_t> current_rev_{0};  // highest revision known committed
  std::atomic<int64_t> compact_rev_{0};
  std::unique_ptr<ReaderPool> readers_;
  std::shared_ptr<WatchHub> hub_;
  std::unique_ptr<LogTailer> tailer_;
  std::unique_ptr<Writer> writer_;

  // Checkpoints the WAL in the background so commits do not pay for it. Maintenance thread only.
  std::unique_ptr<SqlExecutor> checkpoint_db_;
  std::mutex maintenance_mu_;
  std::condition_variable maintenance_cv_;
  bool maintenance_stop_ = false;  // GUARDED_BY(maintenance_mu_)
  std::thread maintenance_;
};

}  // namespace mk8s::store
