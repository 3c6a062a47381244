#include "store/schema.h"

namespace mk8s::store {

Status InitSchema(SqlExecutor& db) {
  static const char* kDdl[] = {
      "CREATE TABLE IF NOT EXISTS kv_log ("
      " rev INTEGER PRIMARY KEY, key TEXT NOT NULL, create_rev INTEGER NOT NULL,"
      " prev_rev INTEGER NOT NULL, deleted INTEGER NOT NULL, value BLOB NOT NULL)",
      "CREATE TABLE IF NOT EXISTS kv ("
      " key TEXT PRIMARY KEY, rev INTEGER NOT NULL, create_rev INTEGER NOT NULL,"
      " deleted INTEGER NOT NULL) WITHOUT ROWID",
      "CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)"
      " WITHOUT ROWID",
      "INSERT OR IGNORE INTO meta(name, value) VALUES ('revision', 0), ('compact_rev', 0),"
      " ('schema', 1)",
  };
  if (Status st = db.BeginWrite(); !st.ok()) return st;
  for (const char* sql : kDdl) {
    auto r = db.Exec(sql);
    if (!r.ok()) {
      db.Rollback();
      return r.status();
    }
  }
  auto rows = db.Query("SELECT value FROM meta WHERE name = 'schema'");
  if (!rows.ok()) {
    db.Rollback();
    return rows.status();
  }
  int64_t version = rows->empty() ? 0 : rows->front()[0].AsInt();
  if (version != kSchemaVersion) {
    db.Rollback();
    return Status(Code::kInternal, "store database has schema version " + std::to_string(version) +
                                       ", this mk8s understands " + std::to_string(kSchemaVersion) +
                                       "; upgrade mk8s or restore a backup made by this version");
  }
  return db.Commit();
}

Result<MetaRevisions> ReadMeta(SqlExecutor& db) {
  auto rows = db.Query(
      "SELECT (SELECT value FROM meta WHERE name = 'revision'),"
      " (SELECT value FROM meta WHERE name = 'compact_rev')");
  if (!rows.ok()) return rows.status();
  if (rows->empty()) return Status(Code::kInternal, "store meta table is empty");
  MetaRevisions meta;
  meta.revision = (*rows)[0][0].AsInt();
  meta.compact_rev = (*rows)[0][1].AsInt();
  return meta;
}

Status ValidateKey(std::string_view key) {
  if (key.empty()) return Status(Code::kInvalidArgument, "key is empty");
  if (key.size() > kMaxKeyBytes) {
    return Status(Code::kInvalidArgument, "key is " + std::to_string(key.size()) +
                                              " bytes; the limit is " +
                                              std::to_string(kMaxKeyBytes));
  }
  if (key.find('\0') != std::string_view::npos) {
    return Status(Code::kInvalidArgument, "key contains a NUL byte");
  }
  return Status::Ok();
}

KeyRange PrefixRange(std::string_view prefix) {
  KeyRange range{std::string(prefix), std::string(prefix)};
  // hi = prefix with its last non-0xff byte incremented and the rest dropped.
  while (!range.hi.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(range.hi.back());
    if (last != 0xff) {
      ++last;
      return range;
    }
    range.hi.pop_back();
  }
  return range;  // empty prefix or all 0xff: unbounded above
}

bool HasPrefix(std::string_view key, std::string_view prefix) {
  return key.substr(0, prefix.size()) == prefix;
}

Event EventFromLogRow(SqlRow& row) {
  Event event;
  event.kv.mod_rev = row[0].AsInt();
  event.kv.key = std::move(row[1].bytes);
  event.kv.create_rev = row[2].AsInt();
  // prev_rev chains every version of a key, across deletes; a create reports no previous version.
  event.prev_rev = event.kv.create_rev == event.kv.mod_rev ? 0 : row[3].AsInt();
  event.type = row[4].AsInt() != 0 ? EventType::kDelete : EventType::kPut;
  event.kv.value = std::move(row[5].bytes);
  return event;
}

std::string VersionsAtSql(const std::string& key_filter) {
  // chain(key, rev, at): `at` is the revision bound carried along; the walk stops at the first
  // row at or below it (or at the start of the chain). MIN(rev) per key is where it stopped.
  return "WITH RECURSIVE chain(key, rev, at) AS ("
         " SELECT key, rev, ? FROM kv WHERE " +
         key_filter +
         " UNION ALL SELECT c.key, l.prev_rev, c.at FROM chain AS c JOIN kv_log AS l"
         " ON l.rev = c.rev WHERE l.rev > c.at AND l.prev_rev != 0)"
         " SELECT key, MIN(rev) AS r, at FROM chain GROUP BY key";
}

}  // namespace mk8s::store
