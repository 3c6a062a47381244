// SqliteExecutor: the local SqlExecutor over one SQLite connection.
//
// Opens the database in WAL mode with synchronous=FULL (a COMMIT returns only after the WAL is
// fsync'd), a busy timeout, and a cache of prepared statements keyed by SQL text.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "store/sql_executor.h"

namespace mk8s::store {

struct SqliteExecutorOptions {
  std::string path;
  std::string vfs;         // empty = default VFS
  bool create = true;      // create the file if missing
  bool read_only = false;  // PRAGMA query_only (WAL readers still need write access to -shm)
  // "wal" for stores, "delete" for single-file snapshots, empty = leave as is (read-only opens).
  std::string journal_mode = "wal";
  int busy_timeout_ms = 10000;
  int wal_autocheckpoint_pages = 4000;
  std::map<std::string, std::string> uri_params;  // extra URI parameters (e.g. fsync counter id)
};

// Opens a connection. Errors carry the cause and the next step (e.g. "not a database").
Result<std::unique_ptr<SqlExecutor>> OpenSqliteExecutor(const SqliteExecutorOptions& options);

}  // namespace mk8s::store
