// The store's tables, their creation, and small helpers shared by the store's files.
//
//   kv_log(rev PK, key, create_rev, prev_rev, deleted, value)  append-only revision log
//   kv(key PK, rev, create_rev, deleted) WITHOUT ROWID          newest version of each key
//   meta(name PK, value) WITHOUT ROWID                          'revision', 'compact_rev', 'schema'
//
// kv_log.prev_rev links each row to the key's previous row (0 for the first), across deletes, so
// the version of a key at revision R is found by walking back from kv.rev; kv keeps deleted keys
// (deleted = 1) until compaction passes their tombstone. There is deliberately no (key, rev)
// index: it dirtied one scattered index page per write and cost ~40% of write throughput.
//
// All SQL here is plain SQLite SQL (runs unchanged on dqlite).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "store/sql_executor.h"
#include "store/store.h"

namespace mk8s::store {

inline constexpr int64_t kSchemaVersion = 1;
inline constexpr size_t kMaxKeyBytes = 8 * 1024;
inline constexpr size_t kMaxValueBytes = 32 * 1024 * 1024;
inline constexpr int64_t kMaxListLimit = 1'000'000;

// Creates the tables if missing and checks the schema version. Runs its own write transaction.
Status InitSchema(SqlExecutor& db);

struct MetaRevisions {
  int64_t revision = 0;     // last issued revision
  int64_t compact_rev = 0;  // history at or below this is compacted
};
// Reads both counters (call inside a transaction for a consistent view).
Result<MetaRevisions> ReadMeta(SqlExecutor& db);

// Rejects empty, oversized or NUL-containing keys.
Status ValidateKey(std::string_view key);

// Key range [lo, hi) covering every key with `prefix`; hi is empty when unbounded.
struct KeyRange {
  std::string lo;
  std::string hi;
};
KeyRange PrefixRange(std::string_view prefix);
bool HasPrefix(std::string_view key, std::string_view prefix);

// Column order for kv_log row -> Event conversion: rev, key, create_rev, prev_rev, deleted, value.
inline constexpr const char* kLogColumns = "rev, key, create_rev, prev_rev, deleted, value";
Event EventFromLogRow(SqlRow& row);

// SQL for the version of each key matching `key_filter` (a WHERE clause over kv, e.g. "key = ?")
// as of revision R. Parameters: R first, then the filter's. Yields (key, r, at): join kv_log on
// rev = r and keep rows with rev <= at AND deleted = 0 (anything else means the key did not exist
// at R). Walks prev_rev back from kv.rev, one primary-key lookup per newer version.
std::string VersionsAtSql(const std::string& key_filter);

}  // namespace mk8s::store
