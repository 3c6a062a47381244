#include "apiserver/http/tls_response_stream.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <climits>

#include "apiserver/http/string_bio.h"

namespace mk8s::apiserver::http {
namespace {

// Queued chunks framed into one HTTP chunk per write, up to this many plaintext bytes (one
// frame larger than this goes alone).
constexpr size_t kMaxBatchBytes = 256 * 1024;
// Buffers that grew past this for a burst are given back once drained.
constexpr size_t kKeepCapacity = 64 * 1024;

// The framing of one HTTP chunk of `size` bytes: "<hex>\r\n".
void AppendChunkSize(std::string* out, size_t size) {
  static constexpr char kHex[] = "0123456789abcdef";
  char text[24];
  size_t at = sizeof(text);
  text[--at] = '\n';
  text[--at] = '\r';
  do {
    text[--at] = kHex[size & 0xf];
    size >>= 4;
  } while (size != 0);
  out->append(text + at, sizeof(text) - at);
}

// The SendBatch collecting on this thread (send_batch.h).
thread_local SendBatch* tl_send_batch = nullptr;

}  // namespace

SendBatch::SendBatch() : outer_(tl_send_batch) { tl_send_batch = this; }

SendBatch::~SendBatch() {
  Flush();
  tl_send_batch = outer_;
}

SendBatch* SendBatch::Current() { return tl_send_batch; }

void SendBatch::Flush() {
  // Sending never writes a chunk, so no stream joins deferred_ while this runs.
  for (const std::shared_ptr<TlsResponseStream>& stream : deferred_) stream->FlushDeferred();
  deferred_.clear();
}

TlsResponseStream::TlsResponseStream(std::shared_ptr<StreamSocket> socket, size_t max_backlog)
    : socket_(std::move(socket)), max_backlog_(max_backlog) {}

TlsResponseStream::~TlsResponseStream() {
  // The connection (which owns the SSL and so the BIO) outlives this object; make its BIO inert.
  if (bio_ != nullptr) BIO_set_data(bio_, nullptr);
}

void TlsResponseStream::Begin(std::string head) {
  std::lock_guard lock(mu_);
  if (ended_) return;
  ssl_ = socket_->native_ssl();
  fd_ = socket_->native_fd();
  // From here on this stream alone drives the TLS session: records go into out_ and from there
  // to the socket. The transport's own BIOs are released (SSL_set_bio frees them).
  bio_ = BIO_new(StringSinkBioMethod());
  if (bio_ == nullptr) return EndLocked("cannot allocate a BIO");
  BIO_set_data(bio_, &out_);
  SSL_set_bio(ssl_, bio_, bio_);
  started_ = true;
  if (!EncryptLocked(head)) return;
  WatchForHangUp();
  PumpLocked();
}

void TlsResponseStream::WatchForHangUp() {
  // Any byte or EOF from the client ends the stream (HTTP/1.1 clients send nothing more during a
  // streamed response). Readiness can be stale (edge-triggered epoll reports data an earlier
  // read already took), so a wake-up without anything to read re-arms the wait.
  socket_->WaitReadable([self = shared_from_this()](bool failed) {
    char byte;
    const ssize_t n =
        failed ? -1 : ::recv(self->socket_->native_fd(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
    if (!failed && n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
      return self->WatchForHangUp();
    }
    std::lock_guard lock(self->mu_);
    self->EndLocked(failed ? nullptr : "the client hung up");
  });
}

void TlsResponseStream::Abandon() {
  std::function<void()> callback;
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    ended_ = closed_ = true;
    queue_.clear();
    callback = std::move(on_closed_);
  }
  if (callback) callback();
}

bool TlsResponseStream::Write(std::string chunk) { return WriteBytes(chunk, nullptr, &chunk); }

bool TlsResponseStream::WriteShared(const std::shared_ptr<const std::string>& chunk) {
  if (!chunk) return true;
  return WriteBytes(*chunk, &chunk, nullptr);
}

bool TlsResponseStream::WriteBytes(std::string_view bytes, const Chunk* shared,
                                   std::string* owned) {
  std::lock_guard lock(mu_);
  if (ended_ || finish_requested_) return false;
  if (bytes.empty()) return true;  // an empty chunk would end the HTTP response
  const size_t unsent = queued_bytes_ + (out_.size() - out_sent_) + inflight_.size();
  if (unsent + bytes.size() > max_backlog_) {
    spdlog::warn("closing a stream whose client is {} bytes behind", unsent);
    EndLocked(nullptr);
    return false;
  }
  if (started_ && !waiting_writable_ && queued_bytes_ == 0 &&
      (out_sent_ == out_.size() || send_deferred_)) {
    // Nothing ahead of it but records held back for a SendBatch: encrypt from the caller's
    // bytes behind them (order is kept) and send now, or at the batch's flush when this thread
    // has one (send_batch.h). The usual case for a watch event.
    if (!EncryptChunkLocked(bytes)) return false;
    SendBatch* batch = SendBatch::Current();
    if (batch == nullptr) {
      PumpLocked();  // sends whatever another thread's batch held back, then this
      return !ended_;
    }
    if (!send_deferred_) {
      send_deferred_ = true;
      batch->deferred_.push_back(shared_from_this());
    }
    UpdateBacklogLocked();
    return true;
  }
  queued_bytes_ += bytes.size();
  if (shared != nullptr) {
    queue_.push_back(*shared);
  } else {
    queue_.push_back(std::make_shared<const std::string>(std::move(*owned)));
  }
  // While the socket is full the chunk waits for the writable callback, which sends everything
  // queued by then in one batch.
  if (started_ && !waiting_writable_) PumpLocked();
  UpdateBacklogLocked();
  return !ended_;
}

void TlsResponseStream::FlushDeferred() {
  std::lock_guard lock(mu_);
  send_deferred_ = false;
  // Waiting for the socket to drain: the writable callback sends everything in order.
  if (started_ && !waiting_writable_) PumpLocked();
}

void TlsResponseStream::Close() {
  std::lock_guard lock(mu_);
  if (ended_ || finish_requested_) return;
  finish_requested_ = true;
  if (started_ && !waiting_writable_) PumpLocked();
}

void TlsResponseStream::OnClosed(std::function<void()> callback) {
  std::unique_lock lock(mu_);
  if (closed_) {
    lock.unlock();
    callback();
    return;
  }
  on_closed_ = std::move(callback);
}

void TlsResponseStream::PumpLocked() {
  while (!ended_) {
    if (out_sent_ < out_.size()) {
      const ssize_t n = ::send(fd_, out_.data() + out_sent_, out_.size() - out_sent_,
                               MSG_NOSIGNAL | MSG_DONTWAIT);
      if (n > 0) {
        out_sent_ += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return ArmWritableLocked();
      return EndLocked(nullptr);  // the client is gone (EPIPE, ECONNRESET...)
    }
    out_.clear();
    out_sent_ = 0;
    if (out_.capacity() > kKeepCapacity) out_.shrink_to_fit();
    if (!queue_.empty()) {
      if (!EncryptQueuedLocked()) return;
      continue;
    }
    if (finish_requested_ && !finish_queued_) {
      finish_queued_ = true;
      if (!EncryptLocked("0\r\n\r\n")) return;
      SSL_shutdown(ssl_);  // appends close_notify; the client's is not awaited
      ERR_clear_error();
      continue;
    }
    if (finish_queued_) EndLocked(nullptr);  // the terminal chunk is out
    break;
  }
  UpdateBacklogLocked();
}

bool TlsResponseStream::EncryptQueuedLocked() {
  // Scratch for the framed plaintext; the TLS layer copies it into records at once.
  thread_local std::string plain;
  plain.clear();
  size_t batch = 0;
  size_t count = 0;
  for (const Chunk& chunk : queue_) {
    if (count > 0 && batch + chunk->size() > kMaxBatchBytes) break;
    batch += chunk->size();
    ++count;
  }
  if (count == 1) {  // no joining needed
    const Chunk chunk = std::move(queue_.front());
    queue_.pop_front();
    queued_bytes_ -= batch;
    return EncryptChunkLocked(*chunk);
  }
  plain.reserve(batch + 32);
  AppendChunkSize(&plain, batch);
  for (size_t i = 0; i < count; ++i) {
    plain += *queue_.front();
    queue_.pop_front();
  }
  plain += "\r\n";
  queued_bytes_ -= batch;
  const bool ok = EncryptLocked(plain);
  if (plain.capacity() > 4 * kKeepCapacity) std::string().swap(plain);
  return ok;
}

bool TlsResponseStream::EncryptChunkLocked(std::string_view data) {
  // "<hex>\r\n" data "\r\n" in one buffer, so one SSL_write makes one record (for a chunk up to
  // a record's size) instead of three.
  thread_local std::string plain;
  plain.clear();
  plain.reserve(data.size() + 32);
  AppendChunkSize(&plain, data.size());
  plain += data;
  plain += "\r\n";
  const bool ok = EncryptLocked(plain);
  if (plain.capacity() > 4 * kKeepCapacity) std::string().swap(plain);
  return ok;
}

bool TlsResponseStream::EncryptLocked(std::string_view plaintext) {
  size_t done = 0;
  while (done < plaintext.size()) {
    // Partial-write mode (set by the transport) returns after each record.
    const int n = SSL_write(ssl_, plaintext.data() + done,
                            static_cast<int>(std::min<size_t>(plaintext.size() - done, INT_MAX)));
    if (n <= 0) {
      ERR_clear_error();
      EndLocked("TLS write failed");
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

void TlsResponseStream::ArmWritableLocked() {
  if (waiting_writable_) return;
  waiting_writable_ = true;
  // The unsent records go to the transport's asynchronous write; records encrypted meanwhile
  // (none: writers only queue while waiting_writable_) would follow in out_.
  inflight_.assign(out_, out_sent_, std::string::npos);
  out_.clear();
  out_sent_ = 0;
  UpdateBacklogLocked();
  socket_->PostToStrand([self = shared_from_this()] {
    // inflight_ is not touched by anyone else until the write is done (waiting_writable_).
    self->socket_->WriteAll(self->inflight_.data(), self->inflight_.size(), [self](bool failed) {
      std::lock_guard lock(self->mu_);
      self->waiting_writable_ = false;
      std::string().swap(self->inflight_);
      if (failed) return self->EndLocked(nullptr);
      self->PumpLocked();
    });
  });
}

void TlsResponseStream::UpdateBacklogLocked() {
  backlog_.store(ended_ ? 0 : queued_bytes_ + (out_.size() - out_sent_) + inflight_.size(),
                 std::memory_order_relaxed);
}

void TlsResponseStream::EndLocked(const char* why) {
  if (ended_) return;
  ended_ = true;
  if (why != nullptr) spdlog::debug("stream ended: {}", why);
  queue_.clear();
  queued_bytes_ = 0;
  std::string().swap(out_);
  out_sent_ = 0;
  backlog_.store(0, std::memory_order_relaxed);
  socket_->PostToStrand([self = shared_from_this()] { self->FinishOnStrand(); });
}

void TlsResponseStream::FinishOnStrand() {
  socket_->CloseSocket();
  std::function<void()> callback;
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    closed_ = true;
    callback = std::move(on_closed_);
  }
  if (callback) callback();
}

}  // namespace mk8s::apiserver::http
