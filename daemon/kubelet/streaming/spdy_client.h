// SpdyClient: a SPDY/3.1 session over an upgraded UpstreamSocket, as the client side (odd
// stream ids). Used for exec/attach towards containerd, where the kubelet terminates kubectl's
// WebSocket and must open containerd's error/stdin/stdout/stderr/resize streams itself.
//
// Threads: Run() reads on the caller's thread (the session thread) and answers PINGs itself;
// OpenStream/SendData may be called from any thread. Stream creation is serialized under one
// lock so that stream ids, header-compression order and wire order always agree.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "common/status.h"
#include "kubelet/streaming/spdy_framer.h"
#include "kubelet/streaming/upstream.h"

namespace mk8s::kubelet {

class SpdyClient {
 public:
  explicit SpdyClient(std::unique_ptr<UpstreamSocket> socket) : socket_(std::move(socket)) {}

  // SYN_STREAM with these headers; the new stream's id.
  Result<uint32_t> OpenStream(const spdy::HeaderList& headers);
  // DATA frames (split at 64 KiB); an empty `data` with fin sends a bare FIN.
  bool SendData(uint32_t stream_id, std::string_view data, bool fin = false);
  // Reads until the connection ends (EOF, GOAWAY, Shutdown, or a protocol error, returned).
  // `on_frame` gets every frame except PING, which is echoed here.
  Status Run(const std::function<void(const spdy::Frame&)>& on_frame);
  // Wakes Run; any thread, idempotent.
  void Shutdown() { socket_->Shutdown(); }

 private:
  std::unique_ptr<UpstreamSocket> socket_;
  std::mutex open_mu_;
  spdy::FrameEncoder encoder_;  // GUARDED_BY(open_mu_)
  uint32_t next_id_ = 1;        // GUARDED_BY(open_mu_)
  spdy::FrameParser parser_;    // Run's thread only
};

}  // namespace mk8s::kubelet
