#include "store/sqlite_executor.h"

#include <sqlite3.h>

#include <unordered_map>

namespace mk8s::store {
namespace {

// Percent-escapes the characters that are special in a SQLite URI filename.
std::string UriEscape(const std::string& s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (c == '%' || c == '?' || c == '#' || c == '&' || c == '=' || c < 0x20 || c >= 0x7f) {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

Code CodeFor(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return Code::kUnavailable;
    case SQLITE_TOOBIG:
    case SQLITE_RANGE:
      return Code::kInvalidArgument;
    default:
      return Code::kInternal;
  }
}

class SqliteExecutor : public SqlExecutor {
 public:
  using SqlExecutor::Exec;
  using SqlExecutor::Query;

  SqliteExecutor(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  ~SqliteExecutor() override {
    for (auto& [sql, stmt] : cache_) sqlite3_finalize(stmt);
    // close_v2 releases the handle even if something is still pending; errors (e.g. an I/O error
    // during the final checkpoint) are ignored because the committed data is already durable.
    sqlite3_close_v2(db_);
  }

  Result<ExecResult> Exec(std::string_view sql, std::span<const SqlParam> params) override {
    sqlite3_stmt* stmt = nullptr;
    if (Status st = Prepare(sql, params, &stmt); !st.ok()) return st;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
    }
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE) return Error(rc, sql);
    ExecResult result;
    result.rows_affected = sqlite3_changes64(db_);
    result.last_insert_id = sqlite3_last_insert_rowid(db_);
    return result;
  }

  Result<std::vector<SqlRow>> Query(std::string_view sql,
                                    std::span<const SqlParam> params) override {
    sqlite3_stmt* stmt = nullptr;
    if (Status st = Prepare(sql, params, &stmt); !st.ok()) return st;
    std::vector<SqlRow> rows;
    int columns = sqlite3_column_count(stmt);
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      SqlRow& row = rows.emplace_back(static_cast<size_t>(columns));
      for (int c = 0; c < columns; ++c) ReadColumn(stmt, c, &row[static_cast<size_t>(c)]);
    }
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE) return Error(rc, sql);
    return rows;
  }

 private:
  static void ReadColumn(sqlite3_stmt* stmt, int c, SqlValue* out) {
    switch (sqlite3_column_type(stmt, c)) {
      case SQLITE_INTEGER:
        out->type = SqlType::kInt;
        out->i = sqlite3_column_int64(stmt, c);
        break;
      case SQLITE_FLOAT:
        out->type = SqlType::kDouble;
        out->d = sqlite3_column_double(stmt, c);
        break;
      case SQLITE_TEXT:
      case SQLITE_BLOB: {
        bool text = sqlite3_column_type(stmt, c) == SQLITE_TEXT;
        const void* data = text ? static_cast<const void*>(sqlite3_column_text(stmt, c))
                                : sqlite3_column_blob(stmt, c);
        int n = sqlite3_column_bytes(stmt, c);
        out->type = text ? SqlType::kText : SqlType::kBlob;
        if (n > 0) out->bytes.assign(static_cast<const char*>(data), static_cast<size_t>(n));
        break;
      }
      default:
        out->type = SqlType::kNull;
    }
  }

  // Finds or prepares the statement and binds `params`. The statement stays owned by the cache.
  Status Prepare(std::string_view sql, std::span<const SqlParam> params, sqlite3_stmt** out) {
    auto it = cache_.find(sql);
    sqlite3_stmt* stmt;
    if (it != cache_.end()) {
      stmt = it->second;
    } else {
      int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                  SQLITE_PREPARE_PERSISTENT, &stmt, nullptr);
      if (rc != SQLITE_OK) return Error(rc, sql);
      if (stmt == nullptr) return Status(Code::kInvalidArgument, "empty SQL statement");
      cache_.emplace(std::string(sql), stmt);
    }
    sqlite3_clear_bindings(stmt);
    if (static_cast<int>(params.size()) != sqlite3_bind_parameter_count(stmt)) {
      return Status(Code::kInvalidArgument,
                    "wrong number of SQL parameters for: " + std::string(sql));
    }
    for (size_t i = 0; i < params.size(); ++i) {
      const SqlParam& p = params[i];
      int idx = static_cast<int>(i) + 1;
      int rc = SQLITE_OK;
      switch (p.type) {
        case SqlType::kNull:
          rc = sqlite3_bind_null(stmt, idx);
          break;
        case SqlType::kInt:
          rc = sqlite3_bind_int64(stmt, idx, p.i);
          break;
        case SqlType::kDouble:
          rc = sqlite3_bind_double(stmt, idx, p.d);
          break;
        case SqlType::kText:
          rc = sqlite3_bind_text64(stmt, idx, p.bytes.data(), p.bytes.size(), SQLITE_STATIC,
                                   SQLITE_UTF8);
          break;
        case SqlType::kBlob:
          // A zero-length blob must still be a blob, not NULL: bind a non-null pointer.
          rc = sqlite3_bind_blob64(stmt, idx, p.bytes.empty() ? "" : p.bytes.data(), p.bytes.size(),
                                   SQLITE_STATIC);
          break;
      }
      if (rc != SQLITE_OK) return Error(rc, sql);
    }
    *out = stmt;
    return Status::Ok();
  }

  Status Error(int rc, std::string_view sql) const {
    std::string msg = "sqlite error on " + path_ + ": " + sqlite3_errmsg(db_) + " (" +
                      sqlite3_errstr(rc) + ") in: " + std::string(sql.substr(0, 120));
    return Status(CodeFor(rc), std::move(msg));
  }

  sqlite3* const db_;
  const std::string path_;
  // Transparent hashing so lookups by string_view do not allocate.
  struct SqlHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>()(s); }
  };
  // SQL text -> prepared statement (finalized in the destructor).
  std::unordered_map<std::string, sqlite3_stmt*, SqlHash, std::equal_to<>> cache_;
};

}  // namespace

Result<std::unique_ptr<SqlExecutor>> OpenSqliteExecutor(const SqliteExecutorOptions& options) {
  if (options.path.empty()) return Status(Code::kInvalidArgument, "database path is empty");
  std::string uri = "file:" + UriEscape(options.path);
  char sep = '?';
  for (const auto& [k, v] : options.uri_params) {
    uri += sep + UriEscape(k) + "=" + UriEscape(v);
    sep = '&';
  }
  int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX;
  if (options.create) flags |= SQLITE_OPEN_CREATE;
  sqlite3* db = nullptr;
  int rc =
      sqlite3_open_v2(uri.c_str(), &db, flags, options.vfs.empty() ? nullptr : options.vfs.c_str());
  if (rc != SQLITE_OK) {
    std::string msg = "cannot open database " + options.path + ": " +
                      (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)) +
                      "; check that the folder exists and is writable by this user";
    sqlite3_close_v2(db);
    return Status(Code::kUnavailable, std::move(msg));
  }
  sqlite3_extended_result_codes(db, 1);
  auto executor = std::make_unique<SqliteExecutor>(db, options.path);
  // Reading the journal mode (or the schema version) reads the header, so "file is not a
  // database" shows up here.
  auto mode =
      executor->Query(options.journal_mode.empty() ? std::string("PRAGMA schema_version")
                                                   : "PRAGMA journal_mode=" + options.journal_mode);
  if (!mode.ok()) {
    return Status(Code::kInternal,
                  "cannot use " + options.path +
                      " as a store database: " + mode.status().message() +
                      ". The file is not a valid SQLite database or is damaged: move it aside "
                      "and restore from a backup (mk8s store restore)");
  }
  if (!options.journal_mode.empty() &&
      (mode->empty() || mode->front().front().bytes != options.journal_mode)) {
    return Status(Code::kInternal, "cannot enable " + options.journal_mode + " journal mode on " +
                                       options.path +
                                       " (is it on a file system without shared memory?)");
  }
  const std::string pragmas[] = {
      "PRAGMA synchronous=FULL",
      "PRAGMA busy_timeout=" + std::to_string(options.busy_timeout_ms),
      "PRAGMA wal_autocheckpoint=" + std::to_string(options.wal_autocheckpoint_pages),
      std::string("PRAGMA query_only=") + (options.read_only ? "1" : "0"),
  };
  for (const auto& pragma : pragmas) {
    auto r = executor->Query(pragma);
    if (!r.ok()) return r.status();
  }
  return std::unique_ptr<SqlExecutor>(std::move(executor));
}

}  // namespace mk8s::store
