// The bridges between an upgraded client connection (from the kubelet's HTTPS server, after
// the 101) and the runtime's streaming server. Each runs on the calling thread (the session
// thread) until the session ends, then closes both sides. The client's bytes arrive on a
// transport thread (UpgradedConnection::Start) and are written to the upstream socket there
// (blocking loopback writes); the session thread reads the upstream and queues for the client,
// pausing while the client is more than kClientBacklogBytes behind.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>

#include "apiserver/http/http_types.h"
#include "kubelet/streaming/spdy_client.h"
#include "kubelet/streaming/upstream.h"

namespace mk8s::kubelet {

constexpr size_t kClientBacklogBytes = 4 << 20;

struct ExecStreams {
  bool in = false;   // stdin (the names stdin/stdout/stderr are macros)
  bool out = false;  // stdout
  bool err = false;  // stderr
  bool tty = false;
};

// kubectl exec/attach over WebSocket (v5.channel.k8s.io, or v4 when `v5` is false) bridged to
// a SPDY v4.channel.k8s.io session. Opens containerd's streams (error, stdin, stdout, stderr,
// resize as requested) on `upstream`, then hands the client `upgrade_client()`'s connection.
// Client -> runtime: channel 0 -> stdin DATA, [255,0] -> stdin FIN (v5), channel 4 -> resize
// DATA, close -> end. Runtime -> client: stdout/stderr -> channels 1/2, the error stream's
// Status JSON -> channel 3 (plain text is wrapped in a Failure Status), then close 1000.
// Returns an error only when the streams cannot be opened (before the client is upgraded).
Status RunWebSocketExec(
    std::unique_ptr<SpdyClient> upstream, const ExecStreams& streams, bool v5,
    const std::function<std::shared_ptr<apiserver::http::UpgradedConnection>()>& upgrade_client);

// Byte relay: both ends already speak the same protocol (SPDY exec from a SPDY client, or
// kubectl's port-forward SPDY session), so the bytes pass unchanged (the zlib contexts stay
// between kubectl and the runtime). With `websocket_tunnel` the client side carries them in
// WebSocket binary messages (kubectl's SPDY/3.1+portforward.k8s.io).
void RunRelay(std::unique_ptr<UpstreamSocket> upstream,
              std::shared_ptr<apiserver::http::UpgradedConnection> client, bool websocket_tunnel);

}  // namespace mk8s::kubelet
