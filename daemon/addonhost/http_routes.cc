#include "addonhost/http_routes.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <utility>

#include "addonhost/addon_thread.h"
#include "addonhost/http_stream.h"

namespace mk8s::addonhost {
namespace {

namespace http = apiserver::http;

http::Response StatusResponse(int code, const std::string& reason, const std::string& message) {
  const nlohmann::json status = {{"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", {}},
                                 {"status", "Failure"}, {"message", message}, {"reason", reason},
                                 {"code", code}};
  return http::Response{code, "application/json", {}, status.dump()};
}

// Answers the request exactly once: with what Send gets, or 503 if the task holding it is
// dropped without running (the addon's thread is hung or stopping).
class OnceResponder {
 public:
  explicit OnceResponder(std::shared_ptr<http::Responder> responder)
      : responder_(std::move(responder)) {}
  ~OnceResponder() {
    if (responder_) {
      responder_->Send(StatusResponse(503, "ServiceUnavailable", "the addon is not serving"));
    }
  }
  OnceResponder(const OnceResponder&) = delete;
  OnceResponder& operator=(const OnceResponder&) = delete;
  void Send(http::Response response) {
    if (auto responder = std::exchange(responder_, nullptr)) responder->Send(std::move(response));
  }
  // Streams the answer (ABI 1.2); false when the stream could not start, and then the request is
  // still unanswered (Send or the destructor answers it).
  bool Stream(AddonHttpStream& stream, const http::Response& head) {
    if (responder_ == nullptr || !stream.Start(*responder_, head.status, head.content_type)) {
      return false;
    }
    responder_ = nullptr;
    return true;
  }

 private:
  std::shared_ptr<http::Responder> responder_;
};

bool Matches(const std::string& prefix, const std::string& path) {
  if (prefix == "/") return true;
  return path.compare(0, prefix.size(), prefix) == 0 &&
         (path.size() == prefix.size() || path[prefix.size()] == '/');
}

mk8s_borrowed_str Borrow(const std::string& s) { return {s.data(), s.size()}; }

}  // namespace

bool ValidRoutePrefix(const std::string& prefix) {
  if (prefix == "/") return true;
  if (prefix.empty() || prefix.size() > 256 || prefix[0] != '/' || prefix.back() == '/') {
    return false;
  }
  size_t start = 1;
  while (start <= prefix.size()) {
    const size_t end = std::min(prefix.find('/', start), prefix.size());
    const std::string segment = prefix.substr(start, end - start);
    if (segment.empty() || segment == "." || segment == "..") return false;
    for (const char c : segment) {
      if (static_cast<unsigned char>(c) <= ' ' || c == '?' || c == '#' || c == '%') return false;
    }
    start = end + 1;
  }
  return true;
}

Status HttpRoutes::Add(const std::string& addon, std::shared_ptr<AddonThread> thread,
                       const std::string& prefix, mk8s_on_http_fn on_request, void* user_data) {
  if (on_request == nullptr) return Status(Code::kInvalidArgument, "the route has no handler");
  if (!ValidRoutePrefix(prefix)) {
    return Status(Code::kInvalidArgument,
                  "route prefix '" + prefix +
                      "' is not '/' or '/segment[/segment...]' (no trailing '/', '.', '..')");
  }
  std::lock_guard lock(mu_);
  AddonRoutes& entry = addons_[addon];
  for (const Route& route : entry.routes) {
    if (route.prefix == prefix) {
      return Status(Code::kInvalidArgument, "addon " + addon + " serves " + prefix + " already");
    }
  }
  entry.thread = std::move(thread);
  entry.routes.push_back(Route{next_id_++, prefix, on_request, user_data});
  return Status::Ok();
}

void HttpRoutes::RemoveAll(const std::string& addon) {
  std::lock_guard lock(mu_);
  addons_.erase(addon);
}

size_t HttpRoutes::size(const std::string& addon) const {
  std::lock_guard lock(mu_);
  const auto it = addons_.find(addon);
  return it == addons_.end() ? 0 : it->second.routes.size();
}

void HttpRoutes::Serve(const http::Request& request, const std::string& user,
                       std::shared_ptr<http::Responder> responder) {
  const std::string root = kRoot;
  const size_t slash = request.path.find('/', root.size());
  const std::string addon = request.path.substr(root.size(), slash - root.size());
  const std::string path = slash == std::string::npos ? "/" : request.path.substr(slash);
  std::shared_ptr<AddonThread> thread;
  uint64_t id = 0;
  {
    std::lock_guard lock(mu_);
    const auto it = addons_.find(addon);
    if (it != addons_.end()) {
      size_t best = 0;
      for (const Route& route : it->second.routes) {
        if (Matches(route.prefix, path) && (id == 0 || route.prefix.size() > best)) {
          id = route.id;
          best = route.prefix.size();
        }
      }
      thread = it->second.thread;
    }
  }
  if (id == 0 || thread == nullptr) {
    return responder->Send(StatusResponse(
        404, "NotFound", "no addon route serves " + request.path + " (is the addon enabled?)"));
  }
  auto once = std::make_shared<OnceResponder>(std::move(responder));
  thread->Post([self = shared_from_this(), once, addon, id, request, path, user] {
    http::Response response;
    HttpCall call;
    const bool handled = self->Call(addon, id, request, path, user, &call, &response);
    if (call.stream == nullptr) return once->Send(std::move(response));
    // A streamed answer: its head now, its bytes as the addon writes them.
    if (handled && once->Stream(*call.stream, response)) return;
    call.stream->Cancel();  // the addon's writes now answer MK8S_ERR_CLOSED
    if (handled) {
      response = StatusResponse(503, "ServiceUnavailable", "addon " + addon + " stopped serving");
    }
    once->Send(std::move(response));
  });
}

bool HttpRoutes::Call(const std::string& addon, uint64_t id, const http::Request& request,
                      const std::string& path, const std::string& user, HttpCall* call,
                      http::Response* out) {
  Route route;
  {
    std::lock_guard lock(mu_);
    const auto it = addons_.find(addon);
    if (it != addons_.end()) {
      for (const Route& candidate : it->second.routes) {
        if (candidate.id == id) route = candidate;
      }
    }
  }
  if (route.id == 0) {
    *out = StatusResponse(503, "ServiceUnavailable", "addon " + addon + " stopped serving");
    return false;
  }
  mk8s_http_request_v1 in{};
  in.abi_version = MK8S_ABI_VERSION;
  in.struct_size = sizeof(in);
  in.method = Borrow(request.method);
  in.path = Borrow(path);
  in.query = Borrow(request.query);
  in.body = Borrow(request.body);
  in.user = Borrow(user);
  char content_type[256] = {0};
  mk8s_http_response_v1 answer{};
  answer.abi_version = MK8S_ABI_VERSION;
  answer.struct_size = sizeof(answer);
  answer.status = 200;
  answer.content_type = {content_type, sizeof(content_type), 0};
  answer.body = reinterpret_cast<mk8s_http_writer*>(call);
  char message[1024] = {0};
  mk8s_message_out error{message, sizeof(message), 0};
  mk8s_status_t status = MK8S_ERR_INTERNAL;
  try {
    status = route.on_request(route.user_data, &in, &answer, &error);
  } catch (...) {  // the ABI forbids it; a C++ addon without the wrapper may do it anyway
    *out = StatusResponse(500, "InternalError", "addon " + addon + "'s handler threw");
    return false;
  }
  if (status != MK8S_OK) {
    const size_t len = std::min(error.len, sizeof(message) - 1);
    *out =
        StatusResponse(500, "InternalError", "addon " + addon + ": " + std::string(message, len));
    return false;
  }
  out->status = answer.status >= 100 && answer.status <= 599 ? answer.status : 500;
  const size_t type_len = std::min(answer.content_type.len, sizeof(content_type) - 1);
  out->content_type = type_len == 0 ? "application/json" : std::string(content_type, type_len);
  out->body = std::move(call->body);
  return true;
}

}  // namespace mk8s::addonhost
