// The revisioned key-value store: the API server's backing store (the role etcd plays upstream).
//
// Model
//  - One global revision counter. Every successful write (create, update, delete) takes the next
//    revision; the revision never goes backwards, not even across a restore.
//  - Each live key carries create_rev (the revision that created it) and mod_rev (its last write).
//  - Every write appends a row to a revision log; watches tail that log, so a watch sees writes
//    made by any daemon that shares the executor (HA). Old log rows are compacted away.
//  - A write is acknowledged only after it is durable (fsync'd). Concurrent writes are batched
//    into group commits so many writers share one fsync.
//
// Threads: every method is thread-safe. Write callbacks run on the store's writer thread and must
// not block; watch events are queued per watcher and pulled by its owner.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace mk8s::store {

class SqlExecutor;

struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_rev = 0;
  int64_t mod_rev = 0;
};

// Outcome of a successful write.
struct WriteResult {
  int64_t revision = 0;  // the revision this write took
  KeyValue kv;           // the key as written (for delete: the value that was deleted)
};

// On kConflict / kAlreadyExists the store also reports the key's current state so callers can
// retry without another read. `current.mod_rev == 0` means the key does not exist.
struct WriteOutcome {
  Status status;
  WriteResult result;   // valid when status.ok()
  KeyValue current;     // valid when status is kConflict or kAlreadyExists
};

using WriteCallback = std::function<void(WriteOutcome)>;

struct ListOptions {
  int64_t limit = 0;          // 0 = no limit
  std::string start_after;    // continue token: list keys strictly greater than this key
  int64_t at_revision = 0;    // 0 = current; otherwise a consistent read at this revision
};

struct ListResult {
  std::vector<KeyValue> kvs;  // in key order
  int64_t revision = 0;       // the revision the list was read at
  bool more = false;          // true when `limit` cut the result; continue from kvs.back().key
};

enum class EventType { kPut, kDelete };

struct Event {
  EventType type = EventType::kPut;
  KeyValue kv;        // for kDelete: key, mod_rev = the delete's revision, value = last value
  int64_t prev_rev = 0;  // mod_rev of the previous version of this key, 0 if created
};

// A watch: events with revision > after_revision on keys with the prefix, in revision order,
// with no gaps and no duplicates. Owned by the caller; destroying it cancels it.
class Watch {
 public:
  virtual ~Watch() = default;
  // Blocks until at least one event is available, the watch ends, or `timeout` elapses.
  // Returns the events (possibly empty on timeout). A non-OK status ends the watch: kCompacted if
  // the watcher fell behind compaction, kResourceExhausted if it was too slow to drain its queue,
  // kUnavailable when the store closes.
  virtual Result<std::vector<std::shared_ptr<const Event>>> Next(
      std::chrono::milliseconds timeout) = 0;
  // Thread-safe; makes a blocked Next() return kUnavailable.
  virtual void Cancel() = 0;
};

struct StoreOptions {
  std::string path;                 // SQLite database file (WAL); created if missing
  // Keep at least this many past revisions before the automatic compaction removes them.
  int64_t history_revisions = 100000;
  std::chrono::milliseconds compaction_interval{std::chrono::minutes(5)};
  int max_batch = 1024;             // most writes per group commit
  size_t watch_queue_limit = 100000;  // a watcher more than this many events behind is cut off
  // How often the log tailer polls for writes made by other daemons (HA); local writes wake it.
  std::chrono::milliseconds poll_interval{std::chrono::milliseconds(200)};
  // Test seam: open SQLite through this VFS name (e.g. the power-cut VFS). Empty = default.
  std::string sqlite_vfs;
};

class Store {
 public:
  static Result<std::unique_ptr<Store>> Open(const StoreOptions& options);
  virtual ~Store() = default;

  virtual int64_t CurrentRevision() = 0;
  virtual int64_t CompactedRevision() = 0;

  // at_revision 0 = current. kNotFound if absent at that revision, kCompacted if too old,
  // kFutureRevision if not issued yet.
  virtual Result<KeyValue> Get(std::string_view key, int64_t at_revision = 0) = 0;
  // Keys starting with `prefix` (all keys if empty).
  virtual Result<ListResult> List(std::string_view prefix, const ListOptions& options) = 0;
  virtual Result<int64_t> Count(std::string_view prefix) = 0;

  // Asynchronous writes; `done` runs on the writer thread after the batch is durable.
  // Create fails with kAlreadyExists. Update/Delete fail with kConflict when the key's mod_rev is
  // not `expected_mod_rev` (0 = any), kNotFound when absent.
  virtual void CreateAsync(std::string key, std::string value, WriteCallback done) = 0;
  virtual void UpdateAsync(std::string key, std::string value, int64_t expected_mod_rev,
                           WriteCallback done) = 0;
  virtual void DeleteAsync(std::string key, int64_t expected_mod_rev, WriteCallback done) = 0;

  // Blocking forms of the above.
  WriteOutcome Create(std::string key, std::string value);
  WriteOutcome Update(std::string key, std::string value, int64_t expected_mod_rev);
  WriteOutcome Delete(std::string key, int64_t expected_mod_rev);

  virtual Result<std::unique_ptr<Watch>> StartWatch(std::string prefix, int64_t after_revision) = 0;

  // Drops history at or below `revision` (keeping each key's version visible at it).
  virtual Status Compact(int64_t revision) = 0;

  // Writes a consistent snapshot of every live key to a new file at `path`.
  virtual Status Backup(const std::string& path) = 0;
  // Replaces every key with the snapshot's. The restored keys take fresh revisions above every
  // revision this store has issued, and history before them is compacted, so watches and
  // resourceVersions never go backwards (open watches end with kCompacted).
  virtual Status Restore(const std::string& path) = 0;

  struct Stats {
    int64_t writes = 0;     // acknowledged writes
    int64_t commits = 0;    // group commits (each is one durable transaction)
    int64_t fsyncs = 0;     // fsync calls observed by the store's VFS shim (0 if unknown)
  };
  virtual Stats GetStats() = 0;
};

}  // namespace mk8s::store
