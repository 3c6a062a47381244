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
// the bridge (bridges.h). Stop() ends every session and waits for the threads.
// Authentication is the caller's job (the kubelet server checks the client certificate).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
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

 private:
  void RunSession(apiserver::http::Request request,
                  std::shared_ptr<apiserver::http::Responder> responder, uint64_t id);

  const std::shared_ptr<StreamingRuntime> runtime_;
  std::mutex mu_;
  std::condition_variable idle_;
  bool stopping_ = false;                             // GUARDED_BY(mu_)
  uint64_t next_id_ = 0;                              // GUARDED_BY(mu_)
  std::map<uint64_t, std::function<void()>> cancel_;  // GUARDED_BY(mu_): live sessions
  int threads_ = 0;                                   // GUARDED_BY(mu_)
};

}  // namespace mk8s::kubelet
