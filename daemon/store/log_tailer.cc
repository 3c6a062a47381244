#include "store/log_tailer.h"

#include <pthread.h>

#include "store/reader_pool.h"
#include "store/schema.h"

namespace mk8s::store {
namespace {
constexpr int64_t kRowsPerRead = 512;
}  // namespace

LogTailer::LogTailer(std::unique_ptr<SqlExecutor> db, std::shared_ptr<WatchHub> hub,
                     std::chrono::milliseconds poll_interval,
                     std::function<void(int64_t, int64_t)> on_progress)
    : db_(std::move(db)),
      hub_(std::move(hub)),
      poll_interval_(poll_interval.count() <= 0 ? std::chrono::milliseconds(200) : poll_interval),
      on_progress_(std::move(on_progress)) {
  thread_ = std::thread([this] { Loop(); });
  pthread_setname_np(thread_.native_handle(), "store-tailer");
}

LogTailer::~LogTailer() { Stop(); }

void LogTailer::Wake() {
  std::lock_guard<std::mutex> lock(mu_);
  woken_ = true;
  cv_.notify_one();
}

void LogTailer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    cv_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
}

void LogTailer::Loop() {
  for (;;) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait_for(lock, poll_interval_, [&] { return stopping_ || woken_; });
      if (stopping_) return;
      woken_ = false;
    }
    CatchUp();
  }
}

bool LogTailer::CatchUp() {
  for (;;) {
    int64_t after = hub_->last_dispatched();
    std::vector<Event> events;
    MetaRevisions meta;
    {
      ReadTxn txn(*db_);
      if (!txn.status().ok()) return false;
      auto m = ReadMeta(*db_);
      if (!m.ok()) return false;
      meta = *m;
      auto rows = db_->Query(
          std::string("SELECT ") + kLogColumns + " FROM kv_log WHERE rev > ? ORDER BY rev LIMIT ?",
          {SqlParam::Int(std::max(after, meta.compact_rev)), SqlParam::Int(kRowsPerRead)});
      if (!rows.ok()) return false;
      events.reserve(rows->size());
      for (SqlRow& row : *rows) events.push_back(EventFromLogRow(row));
    }
    const bool full = static_cast<int64_t>(events.size()) == kRowsPerRead;
    hub_->Dispatch(meta.compact_rev, std::move(events));
    if (on_progress_) on_progress_(meta.revision, meta.compact_rev);
    if (!full) return true;
  }
}

}  // namespace mk8s::store
