// InProcessTransport: the client transport for components inside mk8sd. It calls the handler
// from ApiServer::InProcessHandler(user, groups) directly: same pipeline as HTTPS (authentication
// as that identity, admission, validation), no TCP/TLS, no serialization of the request framing.
//
// Objects: a list request with accept_objects and a stream whose callbacks set on_object take the
// server's shared watch-cache objects (http::Responder/ResponseStream's object path) instead of
// bytes; see transport.h.
//
// Threads: the handler runs on the thread calling Send()/Stream() (it never blocks). The server
// answers from its own threads (store writer, watch-cache dispatcher under its lock, timers);
// those only queue work here. Every client callback runs on this transport's single callback
// thread, in order per stream. The server's OnClosed callbacks also run there.
// Lifetime: destroy the transport (joins the callback thread) before the ApiServer is destroyed;
// stop informers using it first. Late server answers after destruction are dropped safely.
#pragma once

#include <memory>
#include <string>

#include "apiserver/http/http_types.h"
#include "client/transport.h"

namespace mk8s::client {

class InProcessTransport : public Transport {
 public:
  // `handler` from ApiServer::InProcessHandler; `identity` is only for Describe().
  static std::shared_ptr<InProcessTransport> Create(apiserver::http::Handler handler,
                                                    std::string identity = "");
  ~InProcessTransport() override;

  void Send(Request request, ResponseCallback done) override;
  std::shared_ptr<StreamHandle> Stream(Request request, StreamCallbacks callbacks) override;
  std::string Describe() const override;

  class Executor;  // internal: the serial callback thread

 private:
  InProcessTransport(apiserver::http::Handler handler, std::string identity);
  apiserver::http::Request ToHttp(Request request) const;

  apiserver::http::Handler handler_;
  std::string identity_;
  std::shared_ptr<Executor> executor_;
};

}  // namespace mk8s::client
