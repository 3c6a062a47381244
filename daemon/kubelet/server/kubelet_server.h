// KubeletServer: the kubelet's HTTPS API (upstream's :10250) — container logs for now.
//
//   GET /healthz                                         "ok" (no authentication)
//   /exec/..., /attach/..., /portforward/...             options.streaming (upgrades)
//   GET /containerLogs/{namespace}/{pod}/{container}     raw log text; query as upstream's
//       PodLogOptions: follow, previous, timestamps, tailLines, limitBytes, sinceSeconds,
//       sinceTime. Errors are plain text with 400/404, as upstream's kubelet answers.
//
// Authentication: a client certificate signed by the cluster CA (the API server's
// kube-apiserver-kubelet-client identity); anything else gets 401. Authorization: every
// authenticated client may read every log (MicroK8s's default).
//
// Threads: the HTTPS transport (apiserver/http, Boost.Beast; not in this header) runs
// `threads` network threads; log files are read by one LogStreamer worker thread, so a
// followed log never blocks other requests. Stop() (or the destructor) ends every response.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "apiserver/http/http_types.h"
#include "common/status.h"
#include "kubelet/server/log_streamer.h"

namespace mk8s::kubelet {

struct KubeletServerOptions {
  std::string bind_address = "0.0.0.0";
  uint16_t port = 10250;  // 0 = a free port (see KubeletServer::port())
  // A socket already bound and listening (a port reserved before the serving certificate was
  // there), served instead of bind_address:port. Start takes ownership, also when it fails.
  int listening_fd = -1;
  // <state>/kubelet/logs: holds <namespace>_<pod>_<uid>/<container>/<restartCount>.log
  std::string log_root;
  // PEM files: the serving certificate (chain) and key, and the CA that signs client
  // certificates (the cluster CA). See pki/kubelet_certs.h for where mk8s keeps them.
  std::string cert_file;
  std::string key_file;
  std::string client_ca_file;
  // Optional: the pod's uid by namespace/name. Without it (or when it returns nullopt) the
  // newest folder <namespace>_<pod>_* is read.
  PodUidLookup pod_uid_lookup;
  // Optional: /exec, /attach and /portforward (kubelet/streaming/streaming_service.h,
  // StreamingService::Serve). Called on a transport thread for authenticated requests; returns
  // true when it took the request. Must not block.
  std::function<bool(apiserver::http::Request&, std::shared_ptr<apiserver::http::Responder>&)>
      streaming;
  int threads = 2;
};

class KubeletServer {
 public:
  // Reads the PEM files, binds and starts serving. kInvalidArgument when a file is missing or
  // unusable, kUnavailable when the address cannot be bound.
  static Result<std::unique_ptr<KubeletServer>> Start(KubeletServerOptions options);
  virtual ~KubeletServer() = default;
  // The bound port (the chosen one when options.port was 0).
  virtual uint16_t port() const = 0;
  // Serves a renewed certificate from the next handshake on (see http::HttpServer).
  virtual Status ReplaceCertificate(const std::string& cert_pem, const std::string& key_pem) = 0;
  // Stops accepting, ends every response and joins the threads. Idempotent.
  virtual void Stop() = 0;
};

}  // namespace mk8s::kubelet
