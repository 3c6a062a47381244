// A narrow SQL executor: the only way the store talks to its database.
//
// The store's SQL is plain SQLite SQL with no hooks or custom functions, so a replicated executor
// (dqlite over its wire protocol) can replace the local SQLite one without touching the store.
//
// Threads: an executor is one connection. It is NOT thread-safe; each user thread owns its own
// executor (the store keeps one for the writer, one for the log tailer and a pool for readers).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace mk8s::store {

enum class SqlType { kNull, kInt, kDouble, kText, kBlob };

// A bound parameter. Non-owning: text and blob views must stay valid for the call only.
struct SqlParam {
  SqlType type = SqlType::kNull;
  int64_t i = 0;
  double d = 0;
  std::string_view bytes;

  static SqlParam Null() { return {}; }
  static SqlParam Int(int64_t v) { return {SqlType::kInt, v, 0, {}}; }
  static SqlParam Double(double v) { return {SqlType::kDouble, 0, v, {}}; }
  static SqlParam Text(std::string_view v) { return {SqlType::kText, 0, 0, v}; }
  static SqlParam Blob(std::string_view v) { return {SqlType::kBlob, 0, 0, v}; }
};

// A result column value (owning).
struct SqlValue {
  SqlType type = SqlType::kNull;
  int64_t i = 0;
  double d = 0;
  std::string bytes;  // text or blob

  bool is_null() const { return type == SqlType::kNull; }
  // Integer value; 0 for NULL.
  int64_t AsInt() const { return type == SqlType::kDouble ? static_cast<int64_t>(d) : i; }
};

using SqlRow = std::vector<SqlValue>;

struct ExecResult {
  int64_t rows_affected = 0;
  int64_t last_insert_id = 0;
};

class SqlExecutor {
 public:
  virtual ~SqlExecutor() = default;

  // Runs one statement that returns no rows.
  virtual Result<ExecResult> Exec(std::string_view sql, std::span<const SqlParam> params) = 0;
  // Runs one statement and returns all its rows.
  virtual Result<std::vector<SqlRow>> Query(std::string_view sql,
                                            std::span<const SqlParam> params) = 0;

  // Convenience overloads: Exec("...", {SqlParam::Int(1), ...}).
  Result<ExecResult> Exec(std::string_view sql, std::initializer_list<SqlParam> params = {}) {
    return Exec(sql, std::span<const SqlParam>(params.begin(), params.size()));
  }
  Result<std::vector<SqlRow>> Query(std::string_view sql,
                                    std::initializer_list<SqlParam> params = {}) {
    return Query(sql, std::span<const SqlParam>(params.begin(), params.size()));
  }

  // Transactions, in plain SQL. BeginWrite takes the write lock up front (BEGIN IMMEDIATE), which
  // serialises writers across every daemon sharing the database.
  Status BeginRead() { return Exec("BEGIN").status(); }
  Status BeginWrite() { return Exec("BEGIN IMMEDIATE").status(); }
  Status Commit() { return Exec("COMMIT").status(); }
  // Best effort; safe to call when no transaction is open.
  void Rollback() {
    auto r = Exec("ROLLBACK");
    (void)r;
  }
};

}  // namespace mk8s::store
