// LogTailer: the thread that reads new kv_log rows in revision order and feeds the WatchHub.
//
// A local commit's events normally reach the hub straight from the writer (WatchHub::
// DispatchIfNext); the tailer is woken (Wake) when they could not be, because other daemons'
// writes through a shared (replicated) database came first, and otherwise polls every
// poll_interval, which picks those writes up. Each cycle reads
// meta.compact_rev and the next rows in one read transaction.
//
// Threads: Wake/Stop from any thread; the tailer connection is used by the tailer thread only.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "store/sql_executor.h"
#include "store/watch_hub.h"

namespace mk8s::store {

class LogTailer {
 public:
  // `on_progress(revision, compact_rev)` runs on the tailer thread after each read.
  LogTailer(std::unique_ptr<SqlExecutor> db, std::shared_ptr<WatchHub> hub,
            std::chrono::milliseconds poll_interval,
            std::function<void(int64_t, int64_t)> on_progress);
  ~LogTailer();  // Stop()s

  void Wake();
  void Stop();

 private:
  void Loop();
  // Reads and dispatches everything new; returns false on a read error.
  bool CatchUp();

  std::unique_ptr<SqlExecutor> db_;  // tailer thread only
  std::shared_ptr<WatchHub> hub_;
  const std::chrono::milliseconds poll_interval_;
  const std::function<void(int64_t, int64_t)> on_progress_;

  std::mutex mu_;
  std::condition_variable cv_;
  bool woken_ = false;     // GUARDED_BY(mu_)
  bool stopping_ = false;  // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace mk8s::store
