// A chunked HTTP response (watch, log follow) written straight to its TLS connection: the
// producer's thread frames the chunk as one HTTP chunk, encrypts it (SSL_write into a BIO that
// appends to a string) and sends the records with one non-blocking send(), with no post to the
// connection's strand and no Asio/Beast operation per chunk. When nothing is queued or unsent
// (the usual watch event) it encrypts from the caller's bytes, without queueing them or keeping
// a reference to a shared chunk; inside a SendBatch on the writing thread (send_batch.h) the
// send() waits for the batch's flush. Only when the socket is full
// does the stream wait (on the strand) for it to drain; chunks queued meanwhile go out together,
// as one HTTP chunk in as few TLS records as possible. The unsent records themselves are handed
// to the transport's asynchronous write (Asio retries send() speculatively, so no readiness
// edge can be missed). Internal to http/ (no Asio here: the
// connection is reached through StreamSocket).
//
// Threads: Write/WriteShared/Close/OnClosed/buffered_bytes from any thread; Begin and the socket
// callbacks on the connection's strand. mu_ guards all state, including the SSL object once
// Begin took it over (nothing else touches that SSL afterwards) and every send() on the fd.
#pragma once

#include <atomic>
#include <cstddef>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

#include "apiserver/http/http_types.h"
#include "apiserver/http/send_batch.h"

typedef struct ssl_st SSL;
typedef struct bio_st BIO;

namespace mk8s::apiserver::http {

// What a TlsResponseStream needs from its connection (the HTTPS session implements it).
class StreamSocket {
 public:
  virtual ~StreamSocket() = default;
  // The connected socket and its handshaken TLS session; valid until the StreamSocket dies.
  virtual int native_fd() = 0;
  virtual SSL* native_ssl() = 0;
  // Runs `work` on the connection's strand (never inline).
  virtual void PostToStrand(std::function<void()> work) = 0;
  // Strand only. `done` runs on the strand once the socket is readable, or failed or was closed
  // (then with `failed` true). An edge that came before the call may be missed: look after it.
  virtual void WaitReadable(std::function<void(bool failed)> done) = 0;
  // Strand only. Writes all of [data, data + size) (kept alive and unchanged by the caller until
  // `done`), then runs `done` on the strand, with `failed` true if the socket failed or closed.
  virtual void WriteAll(const char* data, size_t size, std::function<void(bool failed)> done) = 0;
  // Strand only: closes the socket; pending waits complete with `failed`.
  virtual void CloseSocket() = 0;
};

class TlsResponseStream final : public ResponseStream,
                                public std::enable_shared_from_this<TlsResponseStream> {
 public:
  // `socket` (the connection) is kept alive by the stream. A client that lags more than
  // `max_backlog` bytes (queued and unsent) is cut off: the connection closes without the
  // terminal chunk, and Write returns false from then on.
  TlsResponseStream(std::shared_ptr<StreamSocket> socket, size_t max_backlog);
  ~TlsResponseStream() override;

  // Strand only, once, with no other I/O in flight on the connection: takes the TLS session
  // over, sends `head` (the HTTP response head, plain text) and whatever was queued, and
  // watches for the client hanging up (any byte or EOF from it ends the stream).
  void Begin(std::string head);
  // The response will never start (the request was already answered): ends at once.
  void Abandon();

  bool Write(std::string chunk) override;
  bool WriteShared(const std::shared_ptr<const std::string>& chunk) override;
  void Close() override;
  void OnClosed(std::function<void()> callback) override;
  size_t buffered_bytes() const override { return backlog_.load(std::memory_order_relaxed); }

 private:
  using Chunk = std::shared_ptr<const std::string>;
  // Write/WriteShared: `shared` (may be null) holds `bytes` if the caller has it shared; `owned`
  // (may be null) is a string the bytes may be moved out of. Sends at once when nothing is
  // queued or unsent (the usual watch event: no reference kept, no queue), else queues.
  bool WriteBytes(std::string_view bytes, const Chunk* shared, std::string* owned);
  // All with mu_ held.
  void PumpLocked();
  bool EncryptChunkLocked(std::string_view data);  // frames `data` as one HTTP chunk
  bool EncryptLocked(std::string_view plaintext);
  bool EncryptQueuedLocked();
  void ArmWritableLocked();
  void WatchForHangUp();  // strand
  void UpdateBacklogLocked();
  // Called by the SendBatch this stream's records were held back for (its own thread).
  friend class SendBatch;
  void FlushDeferred();
  // Marks the stream ended and posts the socket's close and the OnClosed callback.
  void EndLocked(const char* why);
  void FinishOnStrand();  // strand: closes the socket, runs the callback

  const std::shared_ptr<StreamSocket> socket_;
  const size_t max_backlog_;
  std::atomic<size_t> backlog_{0};  // queued_bytes_ + unsent ciphertext, for buffered_bytes()

  mutable std::mutex mu_;
  bool started_ = false;           // GUARDED_BY(mu_): Begin ran
  bool ended_ = false;             // GUARDED_BY(mu_): no more sends; the close is posted
  bool closed_ = false;            // GUARDED_BY(mu_): the OnClosed callback ran (or is running)
  bool finish_requested_ = false;  // GUARDED_BY(mu_): Close was called
  bool finish_queued_ = false;     // GUARDED_BY(mu_): terminal chunk + close_notify encrypted
  bool waiting_writable_ = false;  // GUARDED_BY(mu_): a WriteAll of inflight_ is under way
  // GUARDED_BY(mu_): out_ holds records a SendBatch will send (the stream is in its list).
  bool send_deferred_ = false;
  std::string inflight_;           // owned by that WriteAll while waiting_writable_
  std::deque<Chunk> queue_;        // GUARDED_BY(mu_): plaintext not yet framed
  size_t queued_bytes_ = 0;        // GUARDED_BY(mu_)
  std::string out_;                // GUARDED_BY(mu_): ciphertext; [out_sent_, size) unsent
  size_t out_sent_ = 0;            // GUARDED_BY(mu_)
  std::function<void()> on_closed_;  // GUARDED_BY(mu_)
  SSL* ssl_ = nullptr;             // GUARDED_BY(mu_); owned by the connection
  BIO* bio_ = nullptr;             // GUARDED_BY(mu_); owned by ssl_, its data points at out_
  int fd_ = -1;                    // GUARDED_BY(mu_)
};

}  // namespace mk8s::apiserver::http
