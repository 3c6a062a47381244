// Session's upgraded connections (101 Switching Protocols: exec, attach, port-forward): raw
// bytes both ways over the connection's TLS session. See session.h.
#include <openssl/err.h>
#include <spdlog/spdlog.h>

#include "apiserver/http/session.h"

namespace mk8s::apiserver::http {

void Session::BeginUpgrade(std::shared_ptr<UpgradeImpl> upgrade, std::vector<Header> headers) {
  upgrade_ = std::move(upgrade);
  if (phase_ != Phase::kHandling) return EndUpgrade();
  phase_ = Phase::kUpgrading;
  timer_.cancel();
  std::string head = "HTTP/1.1 101 Switching Protocols\r\n";
  for (const auto& header : headers) head += header.name + ": " + header.value + "\r\n";
  head += "\r\n";
  if (!Encrypt(head)) return;
  if (SendOut()) OnUpgradeSent();
}

void Session::OnUpgradeSent() {
  phase_ = Phase::kUpgraded;
  MaybeReadUpgraded();
  FlushUpgraded();
}

void Session::StartUpgraded(std::function<void(std::string_view)> on_data,
                            std::function<void()> on_closed) {
  if (upgrade_ended_) {
    if (on_closed) on_closed();
    return;
  }
  on_data_ = std::move(on_data);
  on_closed_ = std::move(on_closed);
  MaybeReadUpgraded();
}

void Session::MaybeReadUpgraded() {
  if (phase_ != Phase::kUpgraded || !on_data_ || upgrade_reading_ || upgrade_ended_) return;
  upgrade_reading_ = true;
  if (in_.size() > 0) {  // bytes that came right behind the request
    const auto data = in_.data();
    std::string early(static_cast<const char*>(data.data()), data.size());
    in_.consume(in_.size());
    on_data_(early);
  }
  ReadUpgraded();
}

void Session::ReadUpgraded() {
  char buffer[kReadChunk];
  for (int i = 0; i < kMaxInline; ++i) {
    if (upgrade_ended_ || phase_ != Phase::kUpgraded) return;
    ERR_clear_error();
    const int n = SSL_read(ssl_, buffer, sizeof(buffer));
    if (n > 0) {
      if (on_data_) on_data_(std::string_view(buffer, static_cast<size_t>(n)));
      continue;
    }
    const int error = SSL_get_error(ssl_, n);
    if (!writing_ && !SendOut() && phase_ == Phase::kClosed) return;
    if (error == SSL_ERROR_WANT_READ) return ReceiveThen(&Session::ReadUpgraded);
    return EndUpgrade();
  }
  Post([self = shared_from_this()] { self->ReadUpgraded(); });
}

void Session::QueueUpgraded(Chunk bytes) {
  if (upgrade_ended_) return;
  chunks_.push_back(std::move(bytes));
  FlushUpgraded();
}

void Session::CloseUpgraded() {
  upgrade_close_requested_ = true;
  FlushUpgraded();
}

void Session::FlushUpgraded() {
  while (!writing_ && phase_ == Phase::kUpgraded && !upgrade_ended_) {
    if (chunks_.empty()) {
      if (upgrade_close_requested_) EndUpgrade();
      return;
    }
    // Queued chunks go out together, up to kPiece bytes (at least one chunk).
    size_t bytes = 0;
    do {
      bytes += chunks_.front()->size();
      if (!Encrypt(*chunks_.front())) return;
      chunks_.pop_front();
    } while (!chunks_.empty() && bytes + chunks_.front()->size() <= kPiece);
    batch_bytes_ = bytes;
    if (!SendOut()) return;  // OnWritten accounts for the batch and goes on
    if (upgrade_) upgrade_->backlog_bytes -= batch_bytes_;
    batch_bytes_ = 0;
  }
}

void Session::EndUpgrade() {
  if (upgrade_ended_) return;
  upgrade_ended_ = true;
  chunks_.clear();
  if (upgrade_) upgrade_->MarkEnded();
  upgrade_.reset();
  on_data_ = nullptr;
  std::function<void()> on_closed = std::move(on_closed_);
  on_closed_ = nullptr;
  if (on_closed) on_closed();
  Shutdown();
}

// --- UpgradeImpl ---

void UpgradeImpl::Start(std::function<void(std::string_view)> on_data,
                        std::function<void()> on_closed) {
  session_->Post([session = session_, on_data = std::move(on_data),
                  on_closed = std::move(on_closed)]() mutable {
    session->StartUpgraded(std::move(on_data), std::move(on_closed));
  });
}

bool UpgradeImpl::Write(std::string bytes) {
  if (ended_) return false;
  if (bytes.empty()) return true;
  if (backlog_bytes.load() + bytes.size() > max_backlog_) {
    spdlog::warn("closing an upgraded connection whose client is {} bytes behind",
                 backlog_bytes.load());
    Close();
    return false;
  }
  backlog_bytes += bytes.size();
  session_->Post([session = session_,
                  bytes = std::make_shared<const std::string>(std::move(bytes))]() mutable {
    session->QueueUpgraded(std::move(bytes));
  });
  return true;
}

void UpgradeImpl::Close() {
  session_->Post([session = session_] { session->CloseUpgraded(); });
}

}  // namespace mk8s::apiserver::http
