#include "store/reader_pool.h"

namespace mk8s::store {

ReaderPool::ReaderPool(Opener opener, size_t max_connections)
    : opener_(std::move(opener)), max_connections_(max_connections == 0 ? 1 : max_connections) {}

ReaderPool::Lease::~Lease() {
  if (db_ != nullptr) pool_->Release(std::move(db_));
}

Result<ReaderPool::Lease> ReaderPool::Acquire() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !idle_.empty() || open_ < max_connections_; });
  if (!idle_.empty()) {
    auto db = std::move(idle_.back());
    idle_.pop_back();
    return Lease(this, std::move(db));
  }
  ++open_;
  lock.unlock();
  auto db = opener_();
  if (!db.ok()) {
    lock.lock();
    --open_;
    cv_.notify_one();
    return db.status();
  }
  return Lease(this, std::move(db).value());
}

void ReaderPool::Release(std::unique_ptr<SqlExecutor> db) {
  std::lock_guard<std::mutex> lock(mu_);
  idle_.push_back(std::move(db));
  cv_.notify_one();
}

}  // namespace mk8s::store
