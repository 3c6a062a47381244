// HttpRoutes: the addons' HTTP routes (ABI 1.1, mk8s_host_serve_http), served by the API server
// under /addons/<addon>/<prefix>... once it has authenticated the request.
//
// A request is matched on the transport thread (longest prefix of that addon), then posted to
// the addon's AddonThread, where the handler runs one at a time with the addon's other calls.
// A handler that began a stream (ABI 1.2, http_stream.h) is answered with a chunked response
// once it returns; one that failed after beginning it gets its 500 and the stream is cancelled.
// The route is looked up again there, so a route dropped before the task runs is never called:
// RemoveAll runs on the addon's thread too (HostContext::StopServingHttp), before mk8s_on_stop /
// on_disable / on_unload, so no handler runs after the addon began to stop. A request whose
// task is dropped (the addon's thread is hung or stopping) is answered 503.
//
// Threads: every method is thread-safe (mu_ guards the table); Serve never blocks.
// Lifetime: owned through shared_ptr (posted tasks keep it alive).
#pragma once

#include <mk8s/abi.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "apiserver/http/http_types.h"
#include "common/status.h"

namespace mk8s::addonhost {

class AddonThread;
struct HttpCall;

class HttpRoutes : public std::enable_shared_from_this<HttpRoutes> {
 public:
  static constexpr const char* kRoot = "/addons/";

  // Adds a route of `addon`, whose calls run on `thread`. kInvalidArgument for a malformed
  // prefix or one the addon serves already.
  Status Add(const std::string& addon, std::shared_ptr<AddonThread> thread,
             const std::string& prefix, mk8s_on_http_fn on_request, void* user_data);
  // Drops every route of `addon` (see the header comment for where to call it).
  void RemoveAll(const std::string& addon);
  size_t size(const std::string& addon) const;

  // Answers one request whose path starts with kRoot; `user` is the authenticated user.
  void Serve(const apiserver::http::Request& request, const std::string& user,
             std::shared_ptr<apiserver::http::Responder> responder);

 private:
  struct Route {
    uint64_t id = 0;
    std::string prefix;
    mk8s_on_http_fn on_request = nullptr;
    void* user_data = nullptr;
  };
  struct AddonRoutes {
    std::shared_ptr<AddonThread> thread;
    std::vector<Route> routes;
  };
  // Runs on the addon's thread: the route if still there, then the handler, whose writer is
  // `call`. True when the handler answered (then `out` holds its status, content type and
  // buffered body); false with the error answer in `out`. Either way `call->stream` is set when
  // the handler began a stream (ABI 1.2).
  bool Call(const std::string& addon, uint64_t id, const apiserver::http::Request& request,
            const std::string& path, const std::string& user, HttpCall* call,
            apiserver::http::Response* out);

  mutable std::mutex mu_;
  std::map<std::string, AddonRoutes> addons_;  // GUARDED_BY(mu_)
  uint64_t next_id_ = 1;                       // GUARDED_BY(mu_)
};

// "/" or "/a[/b...]" with no empty segment, no trailing '/', no "." or "..", at most 256 bytes.
bool ValidRoutePrefix(const std::string& prefix);

}  // namespace mk8s::addonhost
