// StreamingService: the kubelet's /exec, /attach and /portforward endpoints (upstream kubelet
// URL shapes), bridged to the container runtime's streaming server.
//
//   /exec/{namespace}/{pod}[/{uid}]/{container}?command=..&stdin=..&stdout=..&stderr=..&tty=..
//   /attach/{namespace}/{pod}[/{uid}]/{container}?stdin=..&stdout=..&stderr=..&tty=..
//   /portforward/{namespace}/{pod}[/{uid}]
//
// Protocols accepted from the client:
//   exec/attach: WebSocket v5.channel.k8s.io or v4.channel.k8s.io (terminated here and bridged
//                to SPDY v4 streams), or SPDY/3.1 (relayed byte for byte; the runtime picks the
//                version from the client's X-Stream-Protocol-Version list).
//   portforward: SPDY/3.1 + portforward.k8s.io, raw or tunnelled in WebSocket binary messages
//                (Sec-WebSocket-Protocol SPDY/3.1+portforward.k8s.io); relayed byte for byte.
//
// Threads: Serve() never blocks; each accepted request gets a session thread that asks the
// runtime for a one-shot URL, dials and upgrades it, answers the client's 101 and then runs
// the bridge (bridges.h). Stop() ends every session and waits (up to 15 s) for the threads;
// the threads share the service's state, so a late one never touches a destroyed service.
// Authentication is the caller's job (the kubelet server checks the client certificate).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "apiserver/http/http_types.h"
#include "common/status.h"

namespace mk8s::kubelet {

struct StreamTarget {
  std::string namespace_;
  std::string pod;
  std::string uid;                   // empty when the URL has none
  std::string container;             // exec/attach
  std::vector<std::string> command;  // exec
  bool in = false, out = false, err = false, tty = false;
};

// What the service needs from the runtime (CRI): one-shot streaming URLs. Errors: kNotFound
// (no such running pod/container), kInvalidArgument (bad parameters), else the runtime's.
class StreamingRuntime {
 public:
  virtual ~StreamingRuntime() = default;
  virtual Result<std::string> ExecUrl(const StreamTarget& target) = 0;
  virtual Result<std::string> AttachUrl(const StreamTarget& target) = 0;
  virtual Result<std::string> PortForwardUrl(const StreamTarget& target) = 0;
};

class StreamingService {
 public:
  explicit StreamingService(std::shared_ptr<StreamingRuntime> runtime);
  ~StreamingService();

  // True when `request.path` is a streaming endpoint; the request is then answered (an error
  // status, or the 101 and the session). False leaves `responder` untouched.
  bool Serve(apiserver::http::Request& request,
             std::shared_ptr<apiserver::http::Responder>& responder);
  // Ends every session (both sides closed) and waits for the session threads. Idempotent.
  void Stop();

  // Internal (streaming_service.cc): shared with the session threads, which may outlive a
  // Stop() that timed out.
  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace mk8s::kubelet
