// Backup and Restore: logical snapshots of every live key in a small SQLite file of our own.
//
// Snapshot file schema (plain SQL, written through SqlExecutor, so any executor can be backed up):
//   snapshot_meta(name TEXT PRIMARY KEY, value INTEGER)   'format' = 1, 'revision' = read revision
//   snapshot_kv(key TEXT PRIMARY KEY, value BLOB, create_rev INTEGER, mod_rev INTEGER)
#include <cstdio>
#include <filesystem>
#include <system_error>

#include "store/schema.h"
#include "store/sqlite_executor.h"
#include "store/store_impl.h"

namespace mk8s::store {
namespace {

constexpr int64_t kSnapshotFormat = 1;
constexpr int64_t kRowsPerPage = 1000;

Result<std::unique_ptr<SqlExecutor>> OpenSnapshot(const std::string& path, bool create) {
  SqliteExecutorOptions opts;
  opts.path = path;
  opts.create = create;
  opts.read_only = !create;
  // A new snapshot is a single self-contained file; an existing one is only read.
  opts.journal_mode = create ? "delete" : "";
  return OpenSqliteExecutor(opts);
}

Status WriteSnapshot(SqlExecutor& src, SqlExecutor& dst, int64_t revision) {
  static const char* kDdl[] = {
      "CREATE TABLE snapshot_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
      "CREATE TABLE snapshot_kv (key TEXT PRIMARY KEY, value BLOB NOT NULL,"
      " create_rev INTEGER NOT NULL, mod_rev INTEGER NOT NULL)",
  };
  if (Status st = dst.BeginWrite(); !st.ok()) return st;
  for (const char* sql : kDdl) {
    if (auto r = dst.Exec(sql); !r.ok()) return r.status();
  }
  auto r = dst.Exec("INSERT INTO snapshot_meta(name, value) VALUES ('format', ?), ('revision', ?)",
                    {SqlParam::Int(kSnapshotFormat), SqlParam::Int(revision)});
  if (!r.ok()) return r.status();
  std::string after;  // keys are never empty, so "" starts at the first key
  for (;;) {
    auto rows = src.Query(
        "SELECT kv.key, kv.create_rev, kv.rev, l.value FROM kv JOIN kv_log AS l ON l.rev = kv.rev"
        " WHERE kv.key > ? AND kv.deleted = 0 ORDER BY kv.key LIMIT ?",
        {SqlParam::Text(after), SqlParam::Int(kRowsPerPage)});
    if (!rows.ok()) return rows.status();
    for (const SqlRow& row : *rows) {
      auto ins =
          dst.Exec("INSERT INTO snapshot_kv(key, value, create_rev, mod_rev) VALUES (?, ?, ?, ?)",
                   {SqlParam::Text(row[0].bytes), SqlParam::Blob(row[3].bytes),
                    SqlParam::Int(row[1].AsInt()), SqlParam::Int(row[2].AsInt())});
      if (!ins.ok()) return ins.status();
    }
    if (static_cast<int64_t>(rows->size()) < kRowsPerPage) break;
    after = rows->back()[0].bytes;
  }
  return dst.Commit();
}

}  // namespace

Status StoreImpl::Backup(const std::string& path) {
  if (path.empty()) return Status(Code::kInvalidArgument, "backup path is empty");
  const std::string tmp = path + ".tmp";
  std::error_code ec;
  std::filesystem::remove(tmp, ec);
  auto db = readers_->Acquire();
  if (!db.ok()) return db.status();
  Status st;
  {
    ReadTxn txn(**db);
    if (!txn.status().ok()) return txn.status();
    auto meta = ReadMeta(**db);
    if (!meta.ok()) return meta.status();
    auto dst = OpenSnapshot(tmp, /*create=*/true);
    if (!dst.ok()) return dst.status();
    st = WriteSnapshot(**db, **dst, meta->revision);
    if (!st.ok()) (*dst)->Rollback();
  }  // snapshot connection closed here, before the rename
  if (st.ok()) {
    std::filesystem::rename(tmp, path, ec);
    if (ec)
      st =
          Status(Code::kInternal, "cannot move backup into place at " + path + ": " + ec.message());
  }
  if (!st.ok()) {
    std::filesystem::remove(tmp, ec);
    return Status(st.code(), "backup to " + path + " failed: " + st.message());
  }
  return Status::Ok();
}

Status StoreImpl::Restore(const std::string& path) {
  auto snap = OpenSnapshot(path, /*create=*/false);
  if (!snap.ok())
    return Status(snap.status().code(), "cannot open backup: " + snap.status().message());
  auto header = (*snap)->Query(
      "SELECT (SELECT value FROM snapshot_meta WHERE name = 'format'),"
      " (SELECT value FROM snapshot_meta WHERE name = 'revision')");
  if (!header.ok() || header->empty() || (*header)[0][0].AsInt() != kSnapshotFormat) {
    return Status(Code::kInvalidArgument,
                  path + " is not an mk8s store backup (or was made by a newer version)");
  }
  const int64_t snapshot_rev = (*header)[0][1].AsInt();
  int64_t new_revision = 0;
  int64_t new_compact = 0;
  SqlExecutor& src = **snap;
  // One write transaction: either every key is replaced or nothing changes.
  Status st = writer_->RunTask([&](SqlExecutor& db) -> Status {
    auto fail = [&](Status s) {
      db.Rollback();
      return s;
    };
    if (Status s = db.BeginWrite(); !s.ok()) return s;
    auto meta = ReadMeta(db);
    if (!meta.ok()) return fail(meta.status());
    // Everything restored lands above every revision ever issued here; the compaction point sits
    // just below, so every open watch ends with kCompacted and clients re-list.
    const int64_t base = std::max(meta->revision, snapshot_rev) + 1;
    int64_t rev = base;
    for (const char* sql : {"DELETE FROM kv", "DELETE FROM kv_log"}) {
      if (auto r = db.Exec(sql); !r.ok()) return fail(r.status());
    }
    std::string after;
    for (;;) {
      auto rows = src.Query("SELECT key, value FROM snapshot_kv WHERE key > ? ORDER BY key LIMIT ?",
                            {SqlParam::Text(after), SqlParam::Int(kRowsPerPage)});
      if (!rows.ok()) return fail(rows.status());
      for (const SqlRow& row : *rows) {
        if (!ValidateKey(row[0].bytes).ok()) continue;  // never import keys we would reject
        ++rev;
        auto log = db.Exec(
            "INSERT INTO kv_log(rev, key, create_rev, prev_rev, deleted, value)"
            " VALUES (?, ?, ?, 0, 0, ?)",
            {SqlParam::Int(rev), SqlParam::Text(row[0].bytes), SqlParam::Int(rev),
             SqlParam::Blob(row[1].bytes)});
        if (!log.ok()) return fail(log.status());
        auto kv = db.Exec("INSERT INTO kv(key, rev, create_rev, deleted) VALUES (?, ?, ?, 0)",
                          {SqlParam::Text(row[0].bytes), SqlParam::Int(rev), SqlParam::Int(rev)});
        if (!kv.ok()) return fail(kv.status());
      }
      if (static_cast<int64_t>(rows->size()) < kRowsPerPage) break;
      after = rows->back()[0].bytes;
    }
    auto m = db.Exec(
        "UPDATE meta SET value = CASE name WHEN 'revision' THEN ? ELSE ? END"
        " WHERE name IN ('revision', 'compact_rev')",
        {SqlParam::Int(rev), SqlParam::Int(base)});
    if (!m.ok()) return fail(m.status());
    if (Status c = db.Commit(); !c.ok()) return fail(c);
    new_revision = rev;
    new_compact = base;
    return Status::Ok();
  });
  if (!st.ok()) return Status(st.code(), "restore from " + path + " failed: " + st.message());
  NoteRevisions(new_revision, new_compact);
  tailer_->Wake();
  return Status::Ok();
}

}  // namespace mk8s::store
