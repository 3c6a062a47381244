// ReaderPool: a small pool of read-only connections for Get/List/Count/Backup and watch backlogs.
// WAL mode lets them read concurrently with the writer. Thread-safe.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "store/sql_executor.h"

namespace mk8s::store {

class ReaderPool {
 public:
  using Opener = std::function<Result<std::unique_ptr<SqlExecutor>>()>;
  ReaderPool(Opener opener, size_t max_connections);

  // A checked-out connection; returns itself to the pool when destroyed.
  class Lease {
   public:
    Lease(ReaderPool* pool, std::unique_ptr<SqlExecutor> db) : pool_(pool), db_(std::move(db)) {}
    Lease(Lease&&) = default;
    ~Lease();
    SqlExecutor& operator*() { return *db_; }
    SqlExecutor* operator->() { return db_.get(); }

   private:
    ReaderPool* pool_;
    std::unique_ptr<SqlExecutor> db_;
  };

  // Blocks while every connection is in use; opens a new one when below the cap.
  Result<Lease> Acquire();

 private:
  void Release(std::unique_ptr<SqlExecutor> db);

  const Opener opener_;
  const size_t max_connections_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<SqlExecutor>> idle_;  // GUARDED_BY(mu_)
  size_t open_ = 0;                                 // GUARDED_BY(mu_): idle + leased
};

// Holds a read transaction open for a scope: BEGIN now, ROLLBACK (end) on destruction.
class ReadTxn {
 public:
  explicit ReadTxn(SqlExecutor& db) : db_(db), status_(db.BeginRead()) {}
  ~ReadTxn() {
    if (status_.ok()) db_.Rollback();
  }
  const Status& status() const { return status_; }

 private:
  SqlExecutor& db_;
  Status status_;
};

}  // namespace mk8s::store
