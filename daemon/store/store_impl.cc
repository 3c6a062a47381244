#include "store/store_impl.h"

#include <pthread.h>

#include <exception>

#include "store/schema.h"
#include "store/sqlite_executor.h"

namespace mk8s::store {
namespace {

constexpr size_t kReaderConnections = 4;
constexpr int kLockFreeRegisterAttempts = 8;
constexpr int64_t kBacklogRowsPerRead = 1000;
// The maintenance thread checkpoints the WAL; the writer only checkpoints as a backstop when the
// WAL grows past this many pages (64 MiB), e.g. if checkpoints keep failing.
constexpr int kWriterCheckpointBackstopPages = 16384;

// Appends "key >= ?" / "key > ?" and "AND key < ?" for a range read; returns the params.
// `column` is the key column's name in the query.
void AppendKeyRange(std::string* sql, std::vector<std::string>* texts, const std::string& column,
                    std::string_view prefix, std::string_view start_after) {
  KeyRange range = PrefixRange(prefix);
  if (!start_after.empty() && std::string_view(start_after) >= std::string_view(range.lo)) {
    *sql += column + " > ?";
    texts->emplace_back(start_after);
  } else {
    *sql += column + " >= ?";
    texts->push_back(range.lo);
  }
  if (!range.hi.empty()) {
    *sql += " AND " + column + " < ?";
    texts->push_back(range.hi);
  }
}

KeyValue KeyValueFromRow(SqlRow& row) {
  // Columns: key, create_rev, mod_rev, value.
  return KeyValue{std::move(row[0].bytes), std::move(row[3].bytes), row[1].AsInt(), row[2].AsInt()};
}

Status CheckReadRevision(int64_t at, const MetaRevisions& meta) {
  if (at > meta.revision) {
    return Status(Code::kFutureRevision, "revision " + std::to_string(at) +
                                             " has not been issued yet (current is " +
                                             std::to_string(meta.revision) + ")");
  }
  if (at < meta.compact_rev) {
    return Status(Code::kCompacted, "revision " + std::to_string(at) +
                                        " was compacted (oldest readable is " +
                                        std::to_string(meta.compact_rev) + ")");
  }
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<Store>> Store::Open(const StoreOptions& options) {
  try {
    return StoreImpl::OpenImpl(options);
  } catch (const std::exception& e) {
    return Status(Code::kInternal, std::string("cannot open store: ") + e.what());
  }
}

Result<std::unique_ptr<Store>> StoreImpl::OpenImpl(const StoreOptions& options) {
  if (options.path.empty()) return Status(Code::kInvalidArgument, "store path is empty");
  if (options.max_batch <= 0 || options.watch_queue_limit == 0 || options.history_revisions < 0) {
    return Status(Code::kInvalidArgument,
                  "store options: max_batch and watch_queue_limit must be positive, "
                  "history_revisions must not be negative");
  }
  std::unique_ptr<StoreImpl> store(new StoreImpl(options));
  auto vfs = CountingVfsOver(options.sqlite_vfs);
  if (!vfs.ok()) return vfs.status();
  store->vfs_name_ = *vfs;
  store->fsyncs_ = FsyncCounter::Create();

  auto writer_db = store->OpenConnection(/*read_only=*/false, kWriterCheckpointBackstopPages);
  if (!writer_db.ok()) return writer_db.status();
  if (Status st = InitSchema(**writer_db); !st.ok()) {
    return Status(st.code(), "cannot use " + options.path +
                                 " as a store database: " + st.message() +
                                 ". If the file is damaged or not a store, move it aside and "
                                 "restore from a backup");
  }
  auto meta = ReadMeta(**writer_db);
  if (!meta.ok()) return meta.status();
  store->NoteRevisions(meta->revision, meta->compact_rev);

  StoreImpl* self = store.get();
  store->readers_ = std::make_unique<ReaderPool>(
      [self] { return self->OpenConnection(/*read_only=*/true); }, kReaderConnections);
  store->hub_ = std::make_shared<WatchHub>(meta->revision);
  auto tailer_db = store->OpenConnection(/*read_only=*/true);
  if (!tailer_db.ok()) return tailer_db.status();
  store->tailer_ = std::make_unique<LogTailer>(
      std::move(tailer_db).value(), store->hub_, options.poll_interval,
      [self](int64_t rev, int64_t compact) { self->NoteRevisions(rev, compact); });
  Writer::Hooks hooks;
  hooks.on_commit = [self](int64_t revision) { self->NoteRevisions(revision, 0); };
  // A local commit's events go to the watchers from the writer thread; the tailer reads them
  // back from the log only when other daemons' writes came first (a shared database).
  hooks.on_events = [self](int64_t previous_revision, std::vector<Event> events) {
    if (!self->hub_->DispatchIfNext(previous_revision, std::move(events))) self->tailer_->Wake();
  };
  store->writer_ =
      std::make_unique<Writer>(std::move(writer_db).value(), options.max_batch, std::move(hooks));
  auto checkpoint_db = store->OpenConnection(/*read_only=*/false);
  if (!checkpoint_db.ok()) return checkpoint_db.status();
  store->checkpoint_db_ = std::move(checkpoint_db).value();
  store->maintenance_ = std::thread([self] { self->MaintenanceLoop(); });
  pthread_setname_np(store->maintenance_.native_handle(), "store-maint");
  return std::unique_ptr<Store>(std::move(store));
}

StoreImpl::~StoreImpl() {
  {
    std::lock_guard<std::mutex> lock(maintenance_mu_);
    maintenance_stop_ = true;
    maintenance_cv_.notify_all();
  }
  if (maintenance_.joinable()) maintenance_.join();
  if (writer_) writer_->Stop();
  if (tailer_) tailer_->Stop();
  if (hub_) hub_->Close(Status(Code::kUnavailable, "the store is closed"));
}

Result<std::unique_ptr<SqlExecutor>> StoreImpl::OpenConnection(bool read_only,
                                                               int wal_autocheckpoint_pages) {
  SqliteExecutorOptions opts;
  opts.wal_autocheckpoint_pages = wal_autocheckpoint_pages;
  opts.path = options_.path;
  opts.vfs = vfs_name_;
  opts.read_only = read_only;
  opts.uri_params[kFsyncCounterUriParam] = std::to_string(fsyncs_->id());
  return OpenSqliteExecutor(opts);
}

void StoreImpl::NoteRevisions(int64_t revision, int64_t compact_rev) {
  int64_t cur = current_rev_.load();
  while (revision > cur && !current_rev_.compare_exchange_weak(cur, revision)) {
  }
  cur = compact_rev_.load();
  while (compact_rev > cur && !compact_rev_.compare_exchange_weak(cur, compact_rev)) {
  }
}

Result<KeyValue> StoreImpl::Get(std::string_view key, int64_t at_revision) {
  if (Status st = ValidateKey(key); !st.ok()) return st;
  if (at_revision < 0) return Status(Code::kInvalidArgument, "revision must not be negative");
  auto db = readers_->Acquire();
  if (!db.ok()) return db.status();
  ReadTxn txn(**db);
  if (!txn.status().ok()) return txn.status();
  Result<std::vector<SqlRow>> rows = Status(Code::kInternal, "unset");
  if (at_revision == 0) {
    rows = (*db)->Query(
        "SELECT kv.key, kv.create_rev, kv.rev, l.value FROM kv JOIN kv_log AS l ON l.rev = kv.rev"
        " WHERE kv.key = ? AND kv.deleted = 0",
        {SqlParam::Text(key)});
  } else {
    auto meta = ReadMeta(**db);
    if (!meta.ok()) return meta.status();
    if (Status st = CheckReadRevision(at_revision, *meta); !st.ok()) return st;
    rows = (*db)->Query("SELECT l.key, l.create_rev, l.rev, l.value FROM (" +
                            VersionsAtSql("key = ?") +
                            ") AS m JOIN kv_log AS l ON l.rev = m.r"
                            " WHERE l.rev <= m.at AND l.deleted = 0",
                        {SqlParam::Int(at_revision), SqlParam::Text(key)});
  }
  if (!rows.ok()) return rows.status();
  if (rows->empty()) {
    return Status(Code::kNotFound, "key " + std::string(key) + " not found");
  }
  return KeyValueFromRow(rows->front());
}

Result<ListResult> StoreImpl::List(std::string_view prefix, const ListOptions& options) {
  if (options.limit < 0 || options.limit > kMaxListLimit) {
    return Status(Code::kInvalidArgument,
                  "list limit must be between 0 and " + std::to_string(kMaxListLimit));
  }
  if (options.at_revision < 0) {
    return Status(Code::kInvalidArgument, "revision must not be negative");
  }
  if (prefix.size() > kMaxKeyBytes || options.start_after.size() > kMaxKeyBytes) {
    return Status(Code::kInvalidArgument, "list prefix or continue key is too long");
  }
  auto db = readers_->Acquire();
  if (!db.ok()) return db.status();
  ReadTxn txn(**db);
  if (!txn.status().ok()) return txn.status();
  auto meta = ReadMeta(**db);
  if (!meta.ok()) return meta.status();
  ListResult result;
  result.revision = meta->revision;
  std::string sql;
  std::vector<std::string> texts;
  if (options.at_revision == 0) {
    sql =
        "SELECT kv.key, kv.create_rev, kv.rev, l.value FROM kv JOIN kv_log AS l"
        " ON l.rev = kv.rev WHERE kv.deleted = 0 AND ";
    AppendKeyRange(&sql, &texts, "kv.key", prefix, options.start_after);
    sql += " ORDER BY kv.key LIMIT ?";
  } else {
    if (Status st = CheckReadRevision(options.at_revision, *meta); !st.ok()) return st;
    result.revision = options.at_revision;
    std::string filter;
    AppendKeyRange(&filter, &texts, "key", prefix, options.start_after);
    sql = "SELECT l.key, l.create_rev, l.rev, l.value FROM (" + VersionsAtSql(filter) +
          ") AS m JOIN kv_log AS l ON l.rev = m.r WHERE l.rev <= m.at AND l.deleted = 0"
          " ORDER BY l.key LIMIT ?";
  }
  std::vector<SqlParam> params;
  if (options.at_revision != 0) params.push_back(SqlParam::Int(options.at_revision));
  for (const auto& t : texts) params.push_back(SqlParam::Text(t));
  // Ask for one more row than the limit to learn whether there is more.
  params.push_back(SqlParam::Int(options.limit == 0 ? -1 : options.limit + 1));
  auto rows = (*db)->Query(sql, params);
  if (!rows.ok()) return rows.status();
  if (options.limit != 0 && static_cast<int64_t>(rows->size()) > options.limit) {
    result.more = true;
    rows->resize(static_cast<size_t>(options.limit));
  }
  result.kvs.reserve(rows->size());
  for (SqlRow& row : *rows) result.kvs.push_back(KeyValueFromRow(row));
  return result;
}

Result<int64_t> StoreImpl::Count(std::string_view prefix) {
  if (prefix.size() > kMaxKeyBytes) return Status(Code::kInvalidArgument, "prefix is too long");
  auto db = readers_->Acquire();
  if (!db.ok()) return db.status();
  std::string sql = "SELECT COUNT(*) FROM kv WHERE deleted = 0 AND ";
  std::vector<std::string> texts;
  AppendKeyRange(&sql, &texts, "key", prefix, "");
  std::vector<SqlParam> params;
  for (const auto& t : texts) params.push_back(SqlParam::Text(t));
  auto rows = (*db)->Query(sql, params);
  if (!rows.ok()) return rows.status();
  return rows->empty() ? int64_t{0} : rows->front()[0].AsInt();
}

void StoreImpl::Submit(WriteOp op) {
  Status invalid = ValidateKey(op.key);
  if (invalid.ok() && op.value.size() > kMaxValueBytes) {
    invalid = Status(Code::kInvalidArgument, "value is " + std::to_string(op.value.size()) +
                                                 " bytes; the limit is " +
                                                 std::to_string(kMaxValueBytes));
  }
  if (invalid.ok() && op.expected_mod_rev < 0) {
    invalid = Status(Code::kInvalidArgument, "expected revision must not be negative");
  }
  if (!invalid.ok()) {
    WriteOutcome outcome;
    outcome.status = std::move(invalid);
    if (op.done) {
      try {
        op.done(std::move(outcome));
      } catch (...) {
      }
    }
    return;
  }
  writer_->Submit(std::move(op));
}

void StoreImpl::CreateAsync(std::string key, std::string value, WriteCallback done) {
  Submit(WriteOp{WriteOp::Kind::kCreate, std::move(key), std::move(value), 0, std::move(done)});
}

void StoreImpl::UpdateAsync(std::string key, std::string value, int64_t expected_mod_rev,
                            WriteCallback done) {
  Submit(WriteOp{WriteOp::Kind::kUpdate, std::move(key), std::move(value), expected_mod_rev,
                 std::move(done)});
}

void StoreImpl::DeleteAsync(std::string key, int64_t expected_mod_rev, WriteCallback done) {
  Submit(WriteOp{WriteOp::Kind::kDelete, std::move(key), {}, expected_mod_rev, std::move(done)});
}

Status StoreImpl::ReadBacklog(WatchState& watch, int64_t from, int64_t to) {
  auto db = readers_->Acquire();
  if (!db.ok()) return db.status();
  ReadTxn txn(**db);
  if (!txn.status().ok()) return txn.status();
  auto meta = ReadMeta(**db);
  if (!meta.ok()) return meta.status();
  if (from < meta->compact_rev) {
    return Status(Code::kCompacted, "cannot watch from revision " + std::to_string(from) +
                                        ": history up to " + std::to_string(meta->compact_rev) +
                                        " was compacted; re-list and watch again");
  }
  std::string sql = std::string("SELECT ") + kLogColumns +
                    " FROM kv_log WHERE rev > ? AND rev <= ? ORDER BY rev LIMIT ?";
  int64_t cursor = from;
  while (cursor < to) {
    auto rows = (*db)->Query(
        sql, {SqlParam::Int(cursor), SqlParam::Int(to), SqlParam::Int(kBacklogRowsPerRead)});
    if (!rows.ok()) return rows.status();
    for (SqlRow& row : *rows) {
      Event event = EventFromLogRow(row);
      if (HasPrefix(event.kv.key, watch.prefix())) {
        watch.Push(std::make_shared<const Event>(std::move(event)));
      }
    }
    if (static_cast<int64_t>(rows->size()) < kBacklogRowsPerRead) break;
    cursor = rows->back()[0].AsInt();
  }
  return Status::Ok();
}

Result<std::unique_ptr<Watch>> StoreImpl::StartWatch(std::string prefix, int64_t after_revision) {
  if (after_revision < 0) return Status(Code::kInvalidArgument, "revision must not be negative");
  if (prefix.size() > kMaxKeyBytes) return Status(Code::kInvalidArgument, "prefix is too long");
  if (after_revision < compact_rev_.load()) {
    return Status(Code::kCompacted, "cannot watch from revision " + std::to_string(after_revision) +
                                        ": history up to " + std::to_string(compact_rev_.load()) +
                                        " was compacted; re-list and watch again");
  }
  auto state = std::make_shared<WatchState>(std::move(prefix), options_.watch_queue_limit);
  // Read the backlog up to what the hub has dispatched, then join; retry if it moved meanwhile.
  int64_t cursor = after_revision;
  bool registered = false;
  for (int attempt = 0; attempt < kLockFreeRegisterAttempts && !registered; ++attempt) {
    int64_t last = hub_->last_dispatched();
    if (cursor < last) {
      if (Status st = ReadBacklog(*state, cursor, last); !st.ok()) return st;
      cursor = last;
    }
    registered = hub_->TryRegister(state, cursor);
  }
  if (!registered) {
    Status st = hub_->RegisterFillingGap(
        state, cursor, [&](int64_t from, int64_t to) { return ReadBacklog(*state, from, to); });
    if (!st.ok()) return st;
  }
  return std::unique_ptr<Watch>(new WatchHandle(hub_, std::move(state)));
}

Store::Stats StoreImpl::GetStats() {
  Stats stats;
  stats.writes = writer_->acknowledged_writes();
  stats.commits = writer_->commits();
  stats.fsyncs = fsyncs_->count();
  return stats;
}

}  // namespace mk8s::store
