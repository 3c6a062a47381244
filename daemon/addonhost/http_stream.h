// Streamed responses of addon HTTP routes (ABI 1.2, mk8s_host_http_stream_*): the per-call
// state behind a handler's mk8s_http_writer (HttpCall), and one streamed response
// (AddonHttpStream), which sends through the API server's own chunked ResponseStream
// (Responder::StartStream) once the handler returned.
//
// States of an AddonHttpStream:
//   pending  begun during the handler's call; bytes wait in `pending_` (bounded like the socket
//            side, except the handler's own mk8s_host_http_write);
//   open     the handler returned OK: Start() took the responder's ResponseStream; writes go
//            straight to it (it frames, encrypts and sends on the writer's thread);
//   closed   End() (the addon), Cancel() (the host: handler failed, addon stopping) or the
//            client went away. Writes answer MK8S_ERR_CLOSED from then on.
// Backpressure: a write waits while the bytes queued and unsent (pending_, or the
// ResponseStream's buffered_bytes()) plus its own exceed MK8S_HTTP_STREAM_MAX_BUFFERED. The
// transport has no "drained" signal, so the wait re-checks every kDrainPoll (as the kubelet's
// log and exec streams do); closing wakes it at once.
//
// Threads: every method is thread-safe. mu_ guards the state and serializes writes, so bytes
// keep their order. The ResponseStream's OnClosed callback only sets an atomic and notifies
// (it may run on any thread, even inside a Write), so it never takes mu_.
// Lifetime: shared_ptr, held by the addon's handle (mk8s_http_stream), the HttpCall of the
// handler's call, and HostContext's registry; callbacks hold weak_ptrs.
#pragma once

#include <mk8s/abi.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>

#include "apiserver/http/http_types.h"

namespace mk8s::addonhost {

class AddonThread;

class AddonHttpStream : public std::enable_shared_from_this<AddonHttpStream> {
 public:
  static constexpr size_t kMaxBuffered = MK8S_HTTP_STREAM_MAX_BUFFERED;
  static constexpr size_t kMaxWrite = MK8S_HTTP_STREAM_MAX_WRITE;
  static constexpr std::chrono::milliseconds kDrainPoll{2};

  // `handler_thread` is the addon's thread, where the handler runs: a write there while pending
  // cannot wait (nothing is sent before the handler returns). `body` is what the handler wrote
  // before it began the stream.
  AddonHttpStream(std::shared_ptr<AddonThread> handler_thread, std::string body);

  // --- the addon's side (mk8s_host_http_stream_write / _end; any thread)
  // See mk8s_host_http_stream_write for the statuses.
  mk8s_status_t Write(std::string_view bytes, int64_t timeout_ms);
  // mk8s_host_http_write after the stream began (the handler's thread, during its call): queued
  // in order, without the bound, like a buffered body.
  void AppendFromHandler(std::string_view bytes);
  // The addon is done: the terminating chunk follows what is queued (or follows the pending
  // bytes once Start runs). Idempotent.
  void End();

  // --- the host's side
  // The handler returned OK: answers `responder` with a chunked response of this head, sends the
  // pending bytes, and ends it if End() came already. On the addon's thread. False when the
  // stream was closed already (Cancel) or the responder cannot stream: `responder` is then
  // unanswered, and the stream closed.
  bool Start(apiserver::http::Responder& responder, int status, std::string content_type);
  // Closes the stream for the addon (writes answer MK8S_ERR_CLOSED, a waiting one at once). An
  // open response gets its terminating chunk after what is queued. Idempotent.
  void Cancel();

  bool closed() const;

 private:
  enum class State { kPending, kOpen, kClosed };
  void OnClientGone();

  const std::shared_ptr<AddonThread> handler_thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;                            // closing, Start, or a poll tick
  State state_ = State::kPending;                         // GUARDED_BY(mu_)
  bool end_requested_ = false;                            // GUARDED_BY(mu_): End while pending
  std::string pending_;                                   // GUARDED_BY(mu_)
  std::shared_ptr<apiserver::http::ResponseStream> out_;  // GUARDED_BY(mu_): set by Start
  std::atomic<bool> client_gone_{false};
};

// The streams of one addon (HostContext's registry): begins them for its handlers, ends the open
// ones when the host stops serving the addon, and frees the handles it never ended.
// Thread-safe (mu_ guards the set); never calls into the addon.
class AddonStreams {
 public:
  // `thread` is the addon's thread (where handlers run); `label` names the addon in logs.
  AddonStreams(std::shared_ptr<AddonThread> thread, std::string label);
  // Frees the handles the addon never ended (logged as a leak). Only once no addon code can run
  // any more (after mk8s_on_unload).
  ~AddonStreams();
  AddonStreams(const AddonStreams&) = delete;
  AddonStreams& operator=(const AddonStreams&) = delete;

  // Renames the addon in logs (before any addon call, like HostContext::SetIdentity).
  void SetLabel(std::string label) { label_ = std::move(label); }
  // mk8s_host_http_stream_begin: `why` gets the message of an error status.
  mk8s_status_t Begin(mk8s_http_response_v1* response, mk8s_http_stream** stream_out,
                      std::string* why);
  // mk8s_host_http_stream_end: ends the body and frees the handle. nullptr is a no-op.
  void End(mk8s_http_stream* handle);
  // Ends every open stream (AddonHttpStream::Cancel); the handles stay the addon's.
  void EndAll();
  // EndAll, and Begin fails from now on (MK8S_ERR_UNAVAILABLE).
  void Close();

 private:
  const std::shared_ptr<AddonThread> thread_;
  std::string label_;
  std::mutex mu_;
  bool closed_ = false;                  // GUARDED_BY(mu_)
  std::set<mk8s_http_stream*> handles_;  // GUARDED_BY(mu_): given out, not yet ended
};

// What a handler's mk8s_http_writer points to, for one call: the buffered body (ABI 1.1), and
// the stream once mk8s_host_http_stream_begin turned the response into one. Lives on the
// addon's thread for the duration of the call (HttpRoutes::Call).
struct HttpCall {
  std::string body;
  std::shared_ptr<AddonHttpStream> stream;  // set by stream_begin
};

// mk8s_host_http_write: appends to the body, or to the stream once begun.
void WriteBody(mk8s_http_writer* writer, std::string_view bytes);

}  // namespace mk8s::addonhost

// The opaque handle of abi.h, defined for the host only. OWNED BY THE ADDON between
// mk8s_host_http_stream_begin and _end (or by HostContext once the addon is unloaded).
struct mk8s_http_stream {
  std::shared_ptr<mk8s::addonhost::AddonHttpStream> stream;
};
