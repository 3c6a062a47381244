// SendBatch: a scope on one thread during which the HTTPS response streams written on that
// thread encrypt each chunk at once but hold back its send() until the batch flushes, so the
// fan-out of one watch event to many connections sends to them back to back.
//
// Why: on loopback each send() also runs the receiver's TCP input and wakes its reader. Sends
// interleaved with encryption come slower than a reader drains them, so the reader sleeps and
// is woken again for nearly every event; back-to-back sends find it still awake (fewer
// wake-ups and context switches on both sides). The latency added is one batch's encryption.
//
// Contract: what a stream's Write promised is unchanged (order, backlog limit, the hang-up and
// slow-client handling); only the moment of the send() moves to Flush() or the destructor on
// the same thread. A stream written from another thread meanwhile (a bookmark, Close) sends
// what is held back at once, before its own chunk, so nothing is reordered or lost. Batches
// nest: the innermost one collects. Not movable; lives on the stack of the thread it serves.
#pragma once

#include <memory>
#include <vector>

namespace mk8s::apiserver::http {

class TlsResponseStream;

class SendBatch {
 public:
  SendBatch();
  ~SendBatch();  // Flush()
  SendBatch(const SendBatch&) = delete;
  SendBatch& operator=(const SendBatch&) = delete;

  // Sends what the streams of this batch hold back (each stream's pending records, in order).
  void Flush();

 private:
  friend class TlsResponseStream;
  // The batch collecting on this thread, or null.
  static SendBatch* Current();

  SendBatch* const outer_;
  std::vector<std::shared_ptr<TlsResponseStream>> deferred_;  // each at most once
};

}  // namespace mk8s::apiserver::http
