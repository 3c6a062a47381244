// Compaction: explicit Compact(rev), and the maintenance thread (automatic compaction and
// background WAL checkpoints).
//
// Compact(R) first moves meta.compact_rev from C0 to R and drops kv entries of keys deleted at or
// below R, in one short write task (from then on reads below R answer kCompacted). Then it walks
// the log rows N in (C0, R] in chunks of kRowsPerChunk, each chunk its own writer task so client
// writes interleave with a long compaction: each N at or below R supersedes its predecessor
// (N.prev_rev), which is deleted, and tombstones at or below R are deleted. What remains at or
// below R is exactly each key's version visible at R. If the process stops mid-way, the rest of
// (C0, R] stays as harmless garbage (reads walk chains from the newest version and never see it).
#include <algorithm>

#include "store/schema.h"
#include "store/store_impl.h"

namespace mk8s::store {
namespace {

constexpr int64_t kRowsPerChunk = 5000;
constexpr std::chrono::seconds kTailerCatchUpWait{2};
constexpr std::chrono::milliseconds kCheckpointInterval{200};

}  // namespace

Status StoreImpl::Compact(int64_t revision) {
  if (revision < 0) return Status(Code::kInvalidArgument, "revision must not be negative");
  if (revision > current_rev_.load()) {
    return Status(Code::kFutureRevision, "cannot compact at revision " + std::to_string(revision) +
                                             ": current is " + std::to_string(current_rev_.load()));
  }
  if (revision <= compact_rev_.load()) return Status::Ok();  // already compacted that far
  // Let the tailer dispatch up to `revision` so caught-up watchers keep running.
  tailer_->Wake();
  hub_->WaitDispatched(revision, kTailerCatchUpWait);

  bool moved = false;
  int64_t previous_compact = 0;
  Status st = writer_->RunTask([&](SqlExecutor& db) -> Status {
    if (Status s = db.BeginWrite(); !s.ok()) return s;
    auto meta = ReadMeta(db);
    if (!meta.ok()) {
      db.Rollback();
      return meta.status();
    }
    if (revision > meta->revision) {
      db.Rollback();
      return Status(Code::kFutureRevision,
                    "revision " + std::to_string(revision) + " has not been issued yet");
    }
    if (revision <= meta->compact_rev) {
      db.Rollback();
      return Status::Ok();
    }
    previous_compact = meta->compact_rev;
    auto r =
        db.Exec("UPDATE meta SET value = ? WHERE name = 'compact_rev'", {SqlParam::Int(revision)});
    if (r.ok()) {
      r = db.Exec("DELETE FROM kv WHERE deleted = 1 AND rev <= ?", {SqlParam::Int(revision)});
    }
    if (!r.ok()) {
      db.Rollback();
      return r.status();
    }
    Status c = db.Commit();
    if (!c.ok()) {
      db.Rollback();
      return c;
    }
    moved = true;
    return Status::Ok();
  });
  if (!st.ok() || !moved) return st;
  NoteRevisions(0, revision);

  int64_t low = previous_compact;  // exclusive
  bool done = false;
  while (!done && st.ok()) {
    st = writer_->RunTask([&](SqlExecutor& db) -> Status {
      if (Status s = db.BeginWrite(); !s.ok()) return s;
      auto fail = [&](Status s) {
        db.Rollback();
        return s;
      };
      auto bound = db.Query(
          "SELECT rev FROM kv_log WHERE rev > ? AND rev <= ? ORDER BY rev LIMIT 1 OFFSET ?",
          {SqlParam::Int(low), SqlParam::Int(revision), SqlParam::Int(kRowsPerChunk - 1)});
      if (!bound.ok()) return fail(bound.status());
      const int64_t high = bound->empty() ? revision : (*bound)[0][0].AsInt();
      auto r = db.Exec(
          "DELETE FROM kv_log WHERE rev IN (SELECT prev_rev FROM kv_log"
          " WHERE rev > ? AND rev <= ? AND prev_rev != 0)",
          {SqlParam::Int(low), SqlParam::Int(high)});
      if (r.ok()) {
        r = db.Exec("DELETE FROM kv_log WHERE rev > ? AND rev <= ? AND deleted = 1",
                    {SqlParam::Int(low), SqlParam::Int(high)});
      }
      if (!r.ok()) return fail(r.status());
      if (Status c = db.Commit(); !c.ok()) return fail(c);
      low = high;
      done = high >= revision;
      return Status::Ok();
    });
  }
  return st;
}

void StoreImpl::MaintenanceLoop() {
  const bool auto_compact = options_.compaction_interval.count() > 0;
  auto next_compaction = std::chrono::steady_clock::now() + options_.compaction_interval;
  std::unique_lock<std::mutex> lock(maintenance_mu_);
  for (;;) {
    auto wake = std::chrono::steady_clock::now() + kCheckpointInterval;
    if (auto_compact) wake = std::min(wake, next_compaction);
    maintenance_cv_.wait_until(lock, wake, [&] { return maintenance_stop_; });
    if (maintenance_stop_) return;
    lock.unlock();
    // PASSIVE never blocks writers or readers; SQLite restarts the WAL once it is fully copied.
    // Errors are retried next time (the writer's backstop checkpoint bounds the WAL meanwhile).
    auto checkpoint = checkpoint_db_->Query("PRAGMA wal_checkpoint(PASSIVE)");
    (void)checkpoint;
    if (auto_compact && std::chrono::steady_clock::now() >= next_compaction) {
      next_compaction = std::chrono::steady_clock::now() + options_.compaction_interval;
      int64_t target = current_rev_.load() - options_.history_revisions;
      if (target > compact_rev_.load()) {
        Status st = Compact(target);  // failures are retried at the next interval
        (void)st;
      }
    }
    lock.lock();
  }
}

}  // namespace mk8s::store
