// Part of the header-only C++ wrapper (addon.hpp includes it): HTTP routes (ABI 1.1) and
// streamed responses (ABI 1.2). Serve a route with Host::ServeHttp (addon.hpp).
//
// A handler answers at once by returning an HttpResponse. To stream instead (a large blob, a
// log that trickles), it calls request.BeginStream(status, content_type), hands the returned
// HttpStream to a thread the addon owns, and returns; the thread writes and ends it:
//
//   hello_ = host_.ServeHttp("/logs", [this](const mk8s::sdk::HttpRequest& request) {
//     mk8s::sdk::HttpStream stream = request.BeginStream(200, "text/plain");
//     producers_.emplace_back([stream = std::move(stream)]() mutable {
//       while (stream.Write(NextLine()) == MK8S_OK) {}   // MK8S_ERR_CLOSED: the client left
//     });                                                // (the destructor ends the stream)
//     return mk8s::sdk::HttpResponse{};                  // not used once streaming
//   });
#pragma once

#include <mk8s/abi.h>
#include <mk8s/error.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace mk8s::sdk {

// A streamed response body (ABI 1.2; see mk8s_host_http_stream_* in abi.h). Move-only; ends the
// stream when destroyed. Write may be called from any thread (one HttpStream object should be
// used by one thread at a time, as any C++ object). Never throws.
class HttpStream {
 public:
  HttpStream() = default;
  HttpStream(const mk8s_host_api_v1* host, mk8s_http_stream* handle)
      : host_(host), handle_(handle) {}
  HttpStream(HttpStream&& other) noexcept { *this = std::move(other); }
  HttpStream& operator=(HttpStream&& other) noexcept {
    if (this != &other) {
      End();
      host_ = std::exchange(other.host_, nullptr);
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  ~HttpStream() { End(); }

  // Queues all of `bytes`, in pieces of at most MK8S_HTTP_STREAM_MAX_WRITE; each piece waits up
  // to `timeout` for room (a negative timeout: no limit). MK8S_OK; MK8S_ERR_CLOSED when the
  // client is gone or the host ended the stream (stop producing); MK8S_ERR_TIMEOUT when the
  // client reads too slowly (the pieces before the one that timed out are queued);
  // MK8S_ERR_INVALID_ARGUMENT on an ended or empty HttpStream.
  mk8s_status_t Write(std::string_view bytes,
                      std::chrono::milliseconds timeout = std::chrono::seconds(30)) noexcept {
    if (handle_ == nullptr) return MK8S_ERR_INVALID_ARGUMENT;
    do {
      const size_t n =
          bytes.size() < MK8S_HTTP_STREAM_MAX_WRITE ? bytes.size() : MK8S_HTTP_STREAM_MAX_WRITE;
      const mk8s_status_t status = host_->mk8s_host_http_stream_write(
          host_->ctx, handle_, mk8s_borrowed_str{bytes.data(), n},
          static_cast<int64_t>(timeout.count()));
      if (status != MK8S_OK) return status;
      bytes.remove_prefix(n);
    } while (!bytes.empty());
    return MK8S_OK;
  }
  // True while the client is there and the host has not ended the stream.
  bool open() const noexcept {
    return handle_ != nullptr &&
           host_->mk8s_host_http_stream_write(host_->ctx, handle_, mk8s_borrowed_str{nullptr, 0},
                                              0) == MK8S_OK;
  }
  // Ends the body (what is queued is still sent) and releases the handle. Idempotent.
  void End() noexcept {
    if (handle_ != nullptr) host_->mk8s_host_http_stream_end(host_->ctx, handle_);
    handle_ = nullptr;
  }
  bool active() const noexcept { return handle_ != nullptr; }

 private:
  const mk8s_host_api_v1* host_ = nullptr;  // owned by the host
  mk8s_http_stream* handle_ = nullptr;      // owned by this object until End
};

// An HTTP route's request: borrowed for the handler's call, like everything it points to.
struct HttpRequest {
  std::string_view method, path, query, body, user;

  // ABI 1.2: turns this request's response into a stream with this status and content type
  // (empty: application/json). Only inside the handler, at most once; the handler's returned
  // HttpResponse is then not used. Throws Error (MK8S_ERR_UNAVAILABLE) on an mk8sd older than
  // ABI 1.2, which lacks the stream functions (it says so with its struct_size).
  HttpStream BeginStream(int status = 200, std::string_view content_type = {}) const {
    if (host == nullptr || response == nullptr) {
      throw Error(MK8S_ERR_INVALID_ARGUMENT, "BeginStream works only inside an HTTP handler");
    }
    if (host->struct_size < MK8S_HOST_API_V1_2_MIN_SIZE) {
      throw Error(MK8S_ERR_UNAVAILABLE,
                  "this mk8sd cannot stream HTTP responses (it predates addon ABI 1.2): "
                  "upgrade mk8s");
    }
    response->status = status;
    SetMessage(&response->content_type, content_type);
    mk8s_http_stream* handle = nullptr;
    char buffer[512] = {0};
    mk8s_message_out error{buffer, sizeof(buffer), 0};
    const mk8s_status_t began =
        host->mk8s_host_http_stream_begin(host->ctx, response, &handle, &error);
    if (began != MK8S_OK) throw Error(began, std::string(buffer, error.len));
    streamed = true;
    return HttpStream(host, handle);
  }

  // Set by the wrapper for the handler's call (null in a request a test builds by hand).
  const mk8s_host_api_v1* host = nullptr;     // owned by the host
  mk8s_http_response_v1* response = nullptr;  // owned by the host, valid during the call
  mutable bool streamed = false;              // BeginStream succeeded
};

struct HttpResponse {
  int status = 200;
  std::string content_type;  // empty: application/json
  std::string body;
};

// Owns the handler of a route served with Host::ServeHttp. The host drops the route before it
// calls OnStop (or OnDisable), so keeping this as a member that lives until then is enough.
class HttpRoute {
 public:
  using Handler = std::function<HttpResponse(const HttpRequest&)>;
  struct Bound {  // the route's user_data
    const mk8s_host_api_v1* host;
    Handler handler;
  };
  HttpRoute() = default;
  explicit HttpRoute(std::unique_ptr<Bound> bound) : bound_(std::move(bound)) {}

  // The route's mk8s_on_http_fn: runs the handler; an exception becomes a 500 with its message.
  static mk8s_status_t Trampoline(void* user_data, const mk8s_http_request_v1* request,
                                  mk8s_http_response_v1* response,
                                  mk8s_message_out* message) noexcept {
    try {
      const auto* bound = static_cast<const Bound*>(user_data);
      const auto view = [](mk8s_borrowed_str s) { return std::string_view(s.ptr, s.len); };
      const HttpRequest in{view(request->method),
                           view(request->path),
                           view(request->query),
                           view(request->body),
                           view(request->user),
                           bound->host,
                           response};
      const HttpResponse out = bound->handler(in);
      if (in.streamed) return MK8S_OK;  // status and content type were set by BeginStream
      response->status = out.status;
      SetMessage(&response->content_type, out.content_type);
      bound->host->mk8s_host_http_write(bound->host->ctx, response->body,
                                        mk8s_borrowed_str{out.body.data(), out.body.size()});
      return MK8S_OK;
    } catch (const std::exception& e) {
      SetMessage(message, e.what());
    } catch (...) {
      SetMessage(message, "unknown exception in an HTTP handler");
    }
    return MK8S_ERR_EXCEPTION;
  }

 private:
  std::unique_ptr<Bound> bound_;
};

}  // namespace mk8s::sdk
