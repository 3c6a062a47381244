#include "store/writer.h"

#include <pthread.h>

#include <exception>

namespace mk8s::store {
namespace {

void InvokeCallback(WriteCallback& done, WriteOutcome outcome) {
  if (!done) return;
  try {
    done(std::move(outcome));
  } catch (...) {
    // Callbacks must not throw; swallowing keeps the writer thread alive.
  }
}

}  // namespace

Writer::Writer(std::unique_ptr<SqlExecutor> db, int max_batch, Hooks hooks)
    : db_(std::move(db)),
      max_batch_(max_batch <= 0 ? 1 : static_cast<size_t>(max_batch)),
      hooks_(std::move(hooks)) {
  thread_ = std::thread([this] { Loop(); });
  pthread_setname_np(thread_.native_handle(), "store-writer");
}

Writer::~Writer() { Stop(); }

void Writer::Submit(WriteOp op) {
  {
    std::unique_lock<std::mutex> lock(mu_);
    if (!stopping_) {
      queue_.emplace_back(std::move(op));
      const bool wake = queue_.size() == 1;
      // Notified after the unlock: a writer woken while the submitter still holds mu_ would
      // block on it at once and need a second wakeup (one per write when they arrive alone).
      lock.unlock();
      if (wake) cv_.notify_one();
      return;
    }
  }
  WriteOutcome outcome;
  outcome.status = Status(Code::kUnavailable, "the store is closed");
  InvokeCallback(op.done, std::move(outcome));
}

Status Writer::RunTask(WriterTask task) {
  std::mutex done_mu;
  std::condition_variable done_cv;
  bool finished = false;
  Status result;
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return Status(Code::kUnavailable, "the store is closed");
    queue_.emplace_back(TaskItem{std::move(task), [&](Status st) {
                                   std::lock_guard<std::mutex> l(done_mu);
                                   result = std::move(st);
                                   finished = true;
                                   done_cv.notify_all();
                                 }});
    cv_.notify_one();
  }
  std::unique_lock<std::mutex> lock(done_mu);
  done_cv.wait(lock, [&] { return finished; });
  return result;
}

void Writer::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_) return;
    stopping_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
}

void Writer::Loop() {
  std::vector<WriteOp> batch;
  for (;;) {
    std::optional<TaskItem> task;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (stopping_) break;
      // Take consecutive writes up to max_batch, or a single task.
      if (auto* t = std::get_if<TaskItem>(&queue_.front())) {
        task = std::move(*t);
        queue_.pop_front();
      } else {
        while (!queue_.empty() && batch.size() < max_batch_ &&
               std::holds_alternative<WriteOp>(queue_.front())) {
          batch.push_back(std::get<WriteOp>(std::move(queue_.front())));
          queue_.pop_front();
        }
      }
    }
    if (task) {
      Status st;
      try {
        st = task->task(*db_);
      } catch (const std::exception& e) {
        db_->Rollback();
        st = Status(Code::kInternal, std::string("store task failed: ") + e.what());
      }
      task->finish(std::move(st));
    } else {
      RunBatch(batch);
      batch.clear();
    }
  }
  // Stopping: fail whatever is still queued.
  std::deque<Item> rest;
  {
    std::lock_guard<std::mutex> lock(mu_);
    rest.swap(queue_);
  }
  for (Item& item : rest) {
    Status closed(Code::kUnavailable, "the store is closed");
    if (auto* op = std::get_if<WriteOp>(&item)) {
      WriteOutcome outcome;
      outcome.status = closed;
      InvokeCallback(op->done, std::move(outcome));
    } else {
      std::get<TaskItem>(item).finish(closed);
    }
  }
}

void Writer::RunBatch(std::vector<WriteOp>& batch) {
  std::vector<WriteOutcome> outcomes(batch.size());
  std::vector<int64_t> prev_revs(batch.size(), 0);  // each applied op's previous log row
  int64_t start = 0;
  int64_t revision = 0;
  int64_t applied = 0;
  Status fatal = [&]() -> Status {
    if (Status st = db_->BeginWrite(); !st.ok()) return st;
    auto rows = db_->Query("SELECT value FROM meta WHERE name = 'revision'");
    if (!rows.ok()) return rows.status();
    if (rows->empty()) return Status(Code::kInternal, "store meta row 'revision' is missing");
    revision = (*rows)[0][0].AsInt();
    start = revision;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (Status st = Apply(batch[i], revision + 1, &outcomes[i], &prev_revs[i]); !st.ok()) {
        return st;
      }
      if (outcomes[i].status.ok()) {
        ++revision;
        ++applied;
      }
    }
    if (revision != start) {
      auto r =
          db_->Exec("UPDATE meta SET value = ? WHERE name = 'revision'", {SqlParam::Int(revision)});
      if (!r.ok()) return r.status();
    }
    return db_->Commit();
  }();

  if (!fatal.ok()) {
    db_->Rollback();
    Status failed(fatal.code() == Code::kUnavailable ? Code::kUnavailable : Code::kInternal,
                  "write batch failed and was rolled back: " + fatal.message());
    for (size_t i = 0; i < batch.size(); ++i) {
      WriteOutcome outcome;
      outcome.status = failed;
      InvokeCallback(batch[i].done, std::move(outcome));
    }
    return;
  }
  commits_.fetch_add(1, std::memory_order_relaxed);
  writes_.fetch_add(applied, std::memory_order_relaxed);
  if (hooks_.on_commit) hooks_.on_commit(applied > 0 ? revision : 0);
  if (hooks_.on_events && applied > 0) {
    std::vector<Event> events;
    events.reserve(static_cast<size_t>(applied));
    for (size_t i = 0; i < batch.size(); ++i) {
      if (outcomes[i].status.ok()) events.push_back(EventOf(batch[i].kind, outcomes[i], prev_revs[i]));
    }
    hooks_.on_events(start, std::move(events));
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    InvokeCallback(batch[i].done, std::move(outcomes[i]));
  }
}

Event Writer::EventOf(WriteOp::Kind kind, const WriteOutcome& outcome, int64_t prev_rev) {
  Event event;
  event.type = kind == WriteOp::Kind::kDelete ? EventType::kDelete : EventType::kPut;
  event.kv = outcome.result.kv;
  // As the log reports it: a create has no previous version, even after a delete of the key.
  event.prev_rev = event.kv.create_rev == event.kv.mod_rev ? 0 : prev_rev;
  return event;
}

Status Writer::Apply(WriteOp& op, int64_t next_rev, WriteOutcome* out, int64_t* prev_rev) {
  auto rows =
      db_->Query("SELECT rev, create_rev, deleted FROM kv WHERE key = ?", {SqlParam::Text(op.key)});
  if (!rows.ok()) return rows.status();
  // `newest_rev` is the key's newest log row (a tombstone when deleted): the chain's next link.
  const bool has_row = !rows->empty();
  const int64_t newest_rev = has_row ? (*rows)[0][0].AsInt() : 0;
  const bool exists = has_row && (*rows)[0][2].AsInt() == 0;
  const int64_t cur_rev = exists ? newest_rev : 0;
  const int64_t cur_create = exists ? (*rows)[0][1].AsInt() : 0;

  // Reads the current value (only needed for conflicts and deletes).
  auto current_value = [&](std::string* value) -> Status {
    auto v = db_->Query("SELECT value FROM kv_log WHERE rev = ?", {SqlParam::Int(cur_rev)});
    if (!v.ok()) return v.status();
    if (v->empty()) {
      return Status(Code::kInternal, "kv points at missing log revision " +
                                         std::to_string(cur_rev) + " for key " + op.key);
    }
    *value = std::move((*v)[0][0].bytes);
    return Status::Ok();
  };
  auto fail = [&](Code code, std::string message) -> Status {
    out->status = Status(code, std::move(message));
    if (exists) {
      out->current = KeyValue{op.key, {}, cur_create, cur_rev};
      return current_value(&out->current.value);
    }
    out->current = KeyValue{op.key, {}, 0, 0};
    return Status::Ok();
  };

  using Kind = WriteOp::Kind;
  if (op.kind == Kind::kCreate) {
    if (exists) return fail(Code::kAlreadyExists, "key " + op.key + " already exists");
  } else {
    if (!exists) return fail(Code::kNotFound, "key " + op.key + " does not exist");
    if (op.expected_mod_rev != 0 && op.expected_mod_rev != cur_rev) {
      return fail(Code::kConflict, "key " + op.key + " is at revision " + std::to_string(cur_rev) +
                                       ", not " + std::to_string(op.expected_mod_rev));
    }
  }

  const bool is_delete = op.kind == Kind::kDelete;
  const int64_t create_rev = op.kind == Kind::kCreate ? next_rev : cur_create;
  if (is_delete) {
    if (Status st = current_value(&op.value); !st.ok()) return st;
  }
  auto log = db_->Exec(
      "INSERT INTO kv_log(rev, key, create_rev, prev_rev, deleted, value)"
      " VALUES (?, ?, ?, ?, ?, ?)",
      {SqlParam::Int(next_rev), SqlParam::Text(op.key), SqlParam::Int(create_rev),
       SqlParam::Int(newest_rev), SqlParam::Int(is_delete ? 1 : 0), SqlParam::Blob(op.value)});
  if (!log.ok()) return log.status();
  auto pointer =
      has_row
          ? db_->Exec("UPDATE kv SET rev = ?, create_rev = ?, deleted = ? WHERE key = ?",
                      {SqlParam::Int(next_rev), SqlParam::Int(create_rev),
                       SqlParam::Int(is_delete ? 1 : 0), SqlParam::Text(op.key)})
          : db_->Exec("INSERT INTO kv(key, rev, create_rev, deleted) VALUES (?, ?, ?, 0)",
                      {SqlParam::Text(op.key), SqlParam::Int(next_rev), SqlParam::Int(create_rev)});
  if (!pointer.ok()) return pointer.status();

  *prev_rev = newest_rev;
  out->status = Status::Ok();
  out->result.revision = next_rev;
  out->result.kv = KeyValue{op.key, std::move(op.value), create_rev, next_rev};
  return Status::Ok();
}

}  // namespace mk8s::store
