// Writer: the store's single writer thread and its group commit.
//
// Callers queue writes; the writer thread takes up to max_batch of them, runs them in one
// BEGIN IMMEDIATE transaction (revisions are assigned there from meta.revision, so commit order is
// revision order even across daemons sharing a replicated database), COMMITs (fsync), and only
// then runs the callbacks. A failed CAS takes no revision and does not abort the batch; an SQL or
// I/O error rolls the batch back and fails every write in it with kInternal.
// Exclusive tasks (compaction steps, restore) run alone between batches, in queue order.
//
// Threads: Submit/RunTask from any thread; everything else on the writer thread, which alone
// uses the writer connection.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <variant>
#include <vector>

#include "store/sql_executor.h"
#include "store/store.h"

namespace mk8s::store {

struct WriteOp {
  enum class Kind { kCreate, kUpdate, kDelete };
  Kind kind = Kind::kCreate;
  std::string key;
  std::string value;
  int64_t expected_mod_rev = 0;
  WriteCallback done;
};

// Runs on the writer thread with the writer connection; manages its own transaction.
using WriterTask = std::function<Status(SqlExecutor& db)>;

class Writer {
 public:
  struct Hooks {
    // After each successful commit, before callbacks: the new last revision (0 if unchanged).
    std::function<void(int64_t revision)> on_commit;
    // Then, if the commit applied writes: the revision before the batch and the batch's events
    // in revision order (what the log holds for those revisions), so they can be published
    // without reading them back from the log.
    std::function<void(int64_t previous_revision, std::vector<Event> events)> on_events;
  };
  Writer(std::unique_ptr<SqlExecutor> db, int max_batch, Hooks hooks);
  ~Writer();  // Stop()s

  // Queues a write. After Stop() the callback runs at once (caller's thread) with kUnavailable.
  void Submit(WriteOp op);
  // Queues an exclusive task and blocks until it ran; kUnavailable after Stop().
  Status RunTask(WriterTask task);
  // Fails queued work with kUnavailable and joins the thread. Idempotent.
  void Stop();

  int64_t acknowledged_writes() const { return writes_.load(std::memory_order_relaxed); }
  int64_t commits() const { return commits_.load(std::memory_order_relaxed); }

 private:
  struct TaskItem {
    WriterTask task;
    std::function<void(Status)> finish;
  };
  using Item = std::variant<WriteOp, TaskItem>;

  void Loop();
  void RunBatch(std::vector<WriteOp>& batch);
  // Applies one op inside the open transaction; `next_rev` is the revision it takes on success.
  // Returns an SQL error status (batch-fatal) or OK; the op's own outcome goes to `out`.
  // `prev_rev` gets the key's previous log row (0 if none).
  Status Apply(WriteOp& op, int64_t next_rev, WriteOutcome* out, int64_t* prev_rev);
  // The log event of an applied op (its outcome), as LogTailer would read it back.
  static Event EventOf(WriteOp::Kind kind, const WriteOutcome& outcome, int64_t prev_rev);

  std::unique_ptr<SqlExecutor> db_;  // writer thread only
  const size_t max_batch_;
  const Hooks hooks_;
  std::atomic<int64_t> writes_{0};
  std::atomic<int64_t> commits_{0};

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Item> queue_;  // GUARDED_BY(mu_)
  bool stopping_ = false;   // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace mk8s::store
