// KubeletClient: the API server's HTTPS client towards kubelets (upstream's
// --kubelet-client-certificate). It proxies pods/log today; exec, attach and port-forward will
// reuse its dial + TLS part (tls_dial.h); ProxyUpgrade carries them.
//
// TLS: the API server's kubelet-client certificate (pki/kubelet_certs.h), and the kubelet's
// serving certificate is verified against the cluster CA and the dialled host.
//
// Threads: one I/O thread of its own runs every socket operation; nothing blocks the API
// server's transport threads, however long a followed log streams. StreamGet() may be called
// from any thread. Stop() ends every proxied response and joins the thread. Boost.Beast stays
// in the .cc files.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "apiserver/http/http_types.h"
#include "common/status.h"

namespace mk8s::apiserver {

struct KubeletClientOptions {
  std::string client_cert_pem;
  std::string client_key_pem;
  std::string ca_pem;                                 // verifies kubelets' serving certificates
  std::chrono::milliseconds dial_timeout{10000};      // TCP connect + TLS handshake
  std::chrono::milliseconds response_timeout{60000};  // until the response header arrives
};

class KubeletClient {
 public:
  static Result<std::unique_ptr<KubeletClient>> Create(const KubeletClientOptions& options);
  virtual ~KubeletClient() = default;

  // GET https://<host>:<port><target> and answer `responder` with it: a 200 is streamed through
  // as it arrives (chunked, same content type); another status becomes a metav1.Status carrying
  // the kubelet's text (400 BadRequest, 404 NotFound, ...); a dial or TLS failure becomes a 500
  // Status `Get "https://...": dial tcp ...: <cause>`. When the client goes away the kubelet
  // connection is closed.
  virtual void StreamGet(const std::string& host, uint16_t port, const std::string& target,
                         std::shared_ptr<http::Responder> responder) = 0;
  // Proxies an upgrade request (exec, attach, port-forward: WebSocket or SPDY/3.1) to
  // https://<host>:<port><target> with the client's method and its upgrade headers
  // (Upgrade, Connection, Sec-WebSocket-*, X-Stream-Protocol-Version). A 101 is passed to the
  // client (Responder::Upgrade) and then bytes flow both ways until either side closes; any
  // other answer becomes a metav1.Status as for StreamGet.
  virtual void ProxyUpgrade(const std::string& host, uint16_t port, const std::string& method,
                            const std::string& target, const std::vector<http::Header>& headers,
                            std::shared_ptr<http::Responder> responder) = 0;
  // Presents `cert_pem`/`key_pem` to kubelets from the next connection on (a renewed client
  // certificate); a bad pair changes nothing. Thread-safe.
  virtual Status ReplaceClientCertificate(const std::string& cert_pem,
                                          const std::string& key_pem) = 0;
  // Ends every proxied response and joins the I/O thread. Idempotent.
  virtual void Stop() = 0;
};

}  // namespace mk8s::apiserver
