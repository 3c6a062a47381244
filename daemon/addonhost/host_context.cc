// The C entry points of mk8s_host_api_v1. Each one catches everything: no exception may unwind
// into addon code.
#include "addonhost/host_context.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <future>

#include "addonhost/addon_thread.h"
#include "addonhost/http_routes.h"
#include "addonhost/http_stream.h"
#include "addonhost/manifest_apply.h"
#include "client/client.h"
#include "client/informer.h"

namespace mk8s::addonhost {

// One list+watch subscription. Its informer posts events to the addon's thread.
struct HostContext::Watch {
  mk8s_on_watch_event_fn on_event = nullptr;
  void* user_data = nullptr;    // owned by the addon
  std::timed_mutex deliver_mu;  // held while a callback of this watch runs
  std::atomic<bool> cancelled{false};
  std::unique_ptr<client::Informer> informer;
};

}  // namespace mk8s::addonhost

// The opaque handle types of abi.h, defined for the host only.
struct mk8s_watch_handle {
  std::shared_ptr<mk8s::addonhost::HostContext::Watch> watch;
};

namespace mk8s::addonhost {
namespace {

constexpr std::chrono::milliseconds kDefaultRequestTimeout{30000};
constexpr std::chrono::milliseconds kWaitForCallback{10000};

std::string_view View(mk8s_borrowed_str s) {
  return s.ptr == nullptr ? std::string_view() : std::string_view(s.ptr, s.len);
}

void SetMessage(mk8s_message_out* out, std::string_view text) {
  if (out == nullptr || out->data == nullptr || out->capacity == 0) return;
  const size_t n = std::min(text.size(), out->capacity - 1);
  std::memcpy(out->data, text.data(), n);
  out->data[n] = '\0';
  out->len = n;
}

mk8s_host_bytes Bytes(std::string_view text) {
  mk8s_host_bytes out{static_cast<char*>(std::malloc(text.size() + 1)), text.size()};
  if (out.data == nullptr) return {nullptr, 0};
  std::memcpy(out.data, text.data(), text.size());
  out.data[text.size()] = '\0';
  return out;
}

mk8s_status_t ToAbi(Code code) {
  switch (code) {
    case Code::kOk:
      return MK8S_OK;
    case Code::kInvalidArgument:
      return MK8S_ERR_INVALID_ARGUMENT;
    case Code::kNotFound:
      return MK8S_ERR_NOT_FOUND;
    case Code::kUnavailable:
      return MK8S_ERR_UNAVAILABLE;
    case Code::kDeadlineExceeded:
      return MK8S_ERR_TIMEOUT;
    default:
      return MK8S_ERR_INTERNAL;
  }
}

// "/api/v1/configmaps" or "/apis/g/v/res" -> a ResourceRef (namespaced iff `ns` is given).
bool ParseApiPath(std::string_view path, const std::string& ns, client::ResourceRef* ref) {
  std::vector<std::string> parts;
  size_t start = 1;
  if (path.empty() || path[0] != '/') return false;
  while (start <= path.size()) {
    const size_t slash = path.find('/', start);
    parts.emplace_back(path.substr(start, slash == std::string_view::npos ? slash : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  if (parts.size() == 3 && parts[0] == "api") {
    *ref = client::ResourceRef{"", parts[1], parts[2], !ns.empty()};
  } else if (parts.size() == 4 && parts[0] == "apis") {
    *ref = client::ResourceRef{parts[1], parts[2], parts[3], !ns.empty()};
  } else {
    return false;
  }
  for (const std::string& part : parts) {
    if (part.empty()) return false;
  }
  return true;
}

}  // namespace

// The static functions behind the vtable. `ctx` is always a HostContext.
struct HostFunctions {
  static HostContext* Self(mk8s_host_ctx* ctx) { return reinterpret_cast<HostContext*>(ctx); }

  static void Log(mk8s_host_ctx* ctx, mk8s_log_level_t level, mk8s_borrowed_str message) {
    try {
      HostContext* self = Self(ctx);
      const spdlog::level::level_enum spd = level <= MK8S_LOG_DEBUG  ? spdlog::level::debug
                                            : level == MK8S_LOG_INFO ? spdlog::level::info
                                            : level == MK8S_LOG_WARN ? spdlog::level::warn
                                                                     : spdlog::level::err;
      spdlog::log(spd, "addon {}: {}", self->label_, View(message));
    } catch (...) {
    }
  }

  static void FreeBytes(mk8s_host_ctx*, char* data) { std::free(data); }

  static mk8s_status_t ApiRequest(mk8s_host_ctx* ctx, const mk8s_api_request_v1* request,
                                  mk8s_api_response_v1* response) {
    if (response == nullptr || response->struct_size < MK8S_SIZE_UPTO(mk8s_api_response_v1, body)) {
      return MK8S_ERR_INVALID_ARGUMENT;
    }
    response->http_status = 0;
    response->body = {nullptr, 0};
    const auto fail = [&](mk8s_status_t code, std::string_view why) {
      response->body = Bytes(why);
      return code;
    };
    try {
      if (request == nullptr ||
          request->struct_size < MK8S_SIZE_UPTO(mk8s_api_request_v1, timeout_ms)) {
        return fail(MK8S_ERR_INVALID_ARGUMENT, "the request struct is too short");
      }
      std::shared_ptr<client::Client> client = Self(ctx)->Client();
      if (client == nullptr)
        return fail(MK8S_ERR_UNAVAILABLE, "no API server is available to addons");
      client::Request http;
      http.method = std::string(View(request->method));
      http.path = std::string(View(request->path));
      http.query = std::string(View(request->query));
      http.body = std::string(View(request->body));
      http.content_type = std::string(View(request->content_type));
      if (http.content_type.empty() && !http.body.empty()) http.content_type = "application/json";
      if (http.method.empty()) http.method = "GET";
      const auto timeout = request->timeout_ms > 0 ? std::chrono::milliseconds(request->timeout_ms)
                                                   : kDefaultRequestTimeout;
      auto answer = std::make_shared<std::promise<client::Response>>();
      std::future<client::Response> future = answer->get_future();
      client->transport()->Send(std::move(http),
                                [answer](client::Response r) { answer->set_value(std::move(r)); });
      if (future.wait_for(timeout) != std::future_status::ready) {
        return fail(MK8S_ERR_TIMEOUT,
                    "no answer within " + std::to_string(timeout.count()) + " ms");
      }
      client::Response result = future.get();
      response->http_status = result.status;
      response->body = Bytes(result.body);
      return result.status == 0 ? MK8S_ERR_UNAVAILABLE : MK8S_OK;
    } catch (const std::exception& e) {
      return fail(MK8S_ERR_INTERNAL, e.what());
    } catch (...) {
      return fail(MK8S_ERR_INTERNAL, "unknown error");
    }
  }

  // Apply or delete every object of a manifest.
  static mk8s_status_t Manifest(mk8s_host_ctx* ctx, mk8s_borrowed_str text, mk8s_message_out* error,
                                bool apply) {
    try {
      Result<std::vector<nlohmann::json>> objects = ParseManifest(View(text));
      if (!objects.ok()) {
        SetMessage(error, objects.status().message());
        return ToAbi(objects.status().code());
      }
      std::shared_ptr<client::Client> client = Self(ctx)->Client();
      if (client == nullptr) {
        SetMessage(error, "no API server is available to addons");
        return MK8S_ERR_UNAVAILABLE;
      }
      const Status status =
          apply ? ApplyObjects(*client, *objects, "mk8s-addon-" + Self(ctx)->addon_name_)
                : DeleteObjects(*client, *objects);
      if (!status.ok()) SetMessage(error, status.message());
      return ToAbi(status.code());
    } catch (const std::exception& e) {
      SetMessage(error, e.what());
      return MK8S_ERR_INTERNAL;
    } catch (...) {
      SetMessage(error, "unknown error");
      return MK8S_ERR_INTERNAL;
    }
  }
  static mk8s_status_t Apply(mk8s_host_ctx* ctx, mk8s_borrowed_str text, mk8s_message_out* error) {
    return Manifest(ctx, text, error, true);
  }
  static mk8s_status_t DeleteManifest(mk8s_host_ctx* ctx, mk8s_borrowed_str text,
                                      mk8s_message_out* error) {
    return Manifest(ctx, text, error, false);
  }

  static mk8s_status_t StartWatch(mk8s_host_ctx* ctx, const mk8s_watch_request_v1* request,
                                  mk8s_watch_handle** handle_out, mk8s_message_out* error) {
    try {
      HostContext* self = Self(ctx);
      if (handle_out == nullptr || request == nullptr ||
          request->struct_size < MK8S_SIZE_UPTO(mk8s_watch_request_v1, user_data) ||
          request->on_event == nullptr || request->api_path == nullptr) {
        SetMessage(error, "the watch request is incomplete (api_path and on_event are required)");
        return MK8S_ERR_INVALID_ARGUMENT;
      }
      const std::string ns = request->namespace_name != nullptr ? request->namespace_name : "";
      client::ResourceRef ref;
      if (!ParseApiPath(request->api_path, ns, &ref)) {
        SetMessage(error, std::string("cannot watch '") + request->api_path +
                              "': give a collection path like /api/v1/configmaps");
        return MK8S_ERR_INVALID_ARGUMENT;
      }
      std::shared_ptr<client::Client> client = self->Client();
      if (client == nullptr) {
        SetMessage(error, "no API server is available to addons");
        return MK8S_ERR_UNAVAILABLE;
      }
      client::InformerOptions options;
      options.namespace_ = ns;
      if (request->label_selector != nullptr) options.label_selector = request->label_selector;
      if (request->field_selector != nullptr) options.field_selector = request->field_selector;
      auto watch = std::make_shared<HostContext::Watch>();
      watch->on_event = request->on_event;
      watch->user_data = request->user_data;
      watch->informer = std::make_unique<client::Informer>(client, ref, options);
      std::weak_ptr<AddonThread> thread = self->thread_;
      std::weak_ptr<HostContext::Watch> weak = watch;
      auto on_fault = self->on_fault_;
      const auto post = [thread, weak, on_fault](mk8s_watch_event_t type,
                                                 const client::ObjectPtr& object) {
        std::shared_ptr<AddonThread> target = thread.lock();
        if (target == nullptr || object == nullptr) return;
        target->Post([weak, on_fault, type, text = object->dump()] {
          std::shared_ptr<HostContext::Watch> w = weak.lock();
          if (w == nullptr || w->cancelled.load()) return;
          std::lock_guard<std::timed_mutex> lock(w->deliver_mu);
          if (w->cancelled.load()) return;
          try {
            w->on_event(w->user_data, type, mk8s_borrowed_str{text.data(), text.size()});
          } catch (...) {
            w->cancelled.store(true);
            if (on_fault) on_fault("a watch callback threw an exception through the ABI");
          }
        });
      };
      client::EventHandlers handlers;
      handlers.on_add = [post](const client::ObjectPtr& o) { post(MK8S_WATCH_ADDED, o); };
      handlers.on_update = [post](const client::ObjectPtr&, const client::ObjectPtr& o) {
        post(MK8S_WATCH_MODIFIED, o);
      };
      handlers.on_delete = [post](const client::ObjectPtr& o) { post(MK8S_WATCH_DELETED, o); };
      watch->informer->AddEventHandler(std::move(handlers));
      {
        std::lock_guard lock(self->mu_);
        if (self->closed_) {
          SetMessage(error, "the addon host is stopping");
          return MK8S_ERR_UNAVAILABLE;
        }
        self->watches_.insert(watch);
      }
      watch->informer->Start();
      *handle_out = new mk8s_watch_handle{watch};
      return MK8S_OK;
    } catch (const std::exception& e) {
      SetMessage(error, e.what());
      return MK8S_ERR_INTERNAL;
    } catch (...) {
      SetMessage(error, "unknown error");
      return MK8S_ERR_INTERNAL;
    }
  }

  // Stops one watch: no callback of it runs after this returns.
  // Called on the addon's thread, it cannot race a callback (they run only there). Elsewhere it
  // waits for a running callback, unless the addon's thread is hung (then nothing would return).
  static void Stop(HostContext* self, const std::shared_ptr<HostContext::Watch>& watch) {
    watch->cancelled.store(true);
    const bool own_thread = self->thread_ != nullptr && self->thread_->OnThread();
    if (!own_thread && !(self->thread_ != nullptr && self->thread_->hung())) {
      if (watch->deliver_mu.try_lock_for(kWaitForCallback)) {
        watch->deliver_mu.unlock();
      } else {
        spdlog::warn("addon {}: a watch callback is still running after {} ms", self->label_,
                     kWaitForCallback.count());
      }
    }
    watch->informer->Stop();
  }

  static void CancelWatch(mk8s_host_ctx* ctx, mk8s_watch_handle* handle) {
    if (handle == nullptr) return;
    try {
      HostContext* self = Self(ctx);
      std::shared_ptr<HostContext::Watch> watch = std::move(handle->watch);
      delete handle;
      {
        std::lock_guard lock(self->mu_);
        if (self->watches_.erase(watch) == 0) return;  // already cancelled by the host
      }
      Stop(self, watch);
    } catch (...) {
    }
  }

  static mk8s_status_t ServeHttp(mk8s_host_ctx* ctx, const mk8s_http_route_v1* route,
                                 mk8s_message_out* error) {
    try {
      HostContext* self = Self(ctx);
      if (route == nullptr || route->struct_size < MK8S_HTTP_ROUTE_V1_MIN_SIZE ||
          route->prefix == nullptr) {
        SetMessage(error, "serve_http needs a route (prefix, handler) of ABI 1.1 or later");
        return MK8S_ERR_INVALID_ARGUMENT;
      }
      std::shared_ptr<HttpRoutes> routes;
      {
        std::lock_guard lock(self->mu_);
        if (!self->closed_) routes = self->http_routes_;
      }
      if (routes == nullptr) {
        SetMessage(error, "this mk8sd serves no addon HTTP routes (it runs no API server)");
        return MK8S_ERR_UNAVAILABLE;
      }
      const Status added = routes->Add(self->addon_name_, self->thread_, route->prefix,
                                       route->on_request, route->user_data);
      if (!added.ok()) {
        SetMessage(error, added.message());
        return MK8S_ERR_INVALID_ARGUMENT;
      }
      spdlog::info("addon {}: serving HTTP under {}{}{}", self->label_, HttpRoutes::kRoot,
                   self->addon_name_, std::string(route->prefix) == "/" ? "" : route->prefix);
      return MK8S_OK;
    } catch (const std::exception& e) {
      SetMessage(error, e.what());
      return MK8S_ERR_INTERNAL;
    }
  }

  static void HttpWrite(mk8s_host_ctx*, mk8s_http_writer* body, mk8s_borrowed_str bytes) {
    if (body == nullptr || bytes.len == 0 || bytes.ptr == nullptr) return;
    try {
      WriteBody(body, View(bytes));
    } catch (...) {  // out of memory: the body stays short
    }
  }

  // ABI 1.2 streams: the registry (http_stream.h) does the work.
  static mk8s_status_t StreamBegin(mk8s_host_ctx* ctx, mk8s_http_response_v1* response,
                                   mk8s_http_stream** stream_out, mk8s_message_out* error) {
    try {
      std::string why;
      const mk8s_status_t status = Self(ctx)->streams_.Begin(response, stream_out, &why);
      if (status != MK8S_OK) SetMessage(error, why);
      return status;
    } catch (const std::exception& e) {
      SetMessage(error, e.what());
      return MK8S_ERR_INTERNAL;
    }
  }

  static mk8s_status_t StreamWrite(mk8s_host_ctx*, mk8s_http_stream* handle,
                                   mk8s_borrowed_str bytes, int64_t timeout_ms) {
    if (handle == nullptr || handle->stream == nullptr) return MK8S_ERR_INVALID_ARGUMENT;
    try {
      return handle->stream->Write(View(bytes), timeout_ms);
    } catch (...) {  // out of memory
      return MK8S_ERR_INTERNAL;
    }
  }

  static void StreamEnd(mk8s_host_ctx* ctx, mk8s_http_stream* handle) {
    try {
      Self(ctx)->streams_.End(handle);
    } catch (...) {
    }
  }

  static mk8s_status_t Listen(mk8s_host_ctx*, mk8s_socket_type_t type, const char* address,
                              uint16_t port, int* fd_out, uint16_t* bound_port,
                              mk8s_message_out* error) {
    if (fd_out == nullptr || address == nullptr ||
        (type != MK8S_SOCKET_TCP && type != MK8S_SOCKET_UDP)) {
      SetMessage(error, "listen needs a socket type (TCP or UDP), an address and fd_out");
      return MK8S_ERR_INVALID_ARGUMENT;
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    if (inet_pton(AF_INET, address, &addr.sin_addr) != 1) {
      SetMessage(error, std::string("'") + address + "' is not an IPv4 address");
      return MK8S_ERR_INVALID_ARGUMENT;
    }
    const int fd =
        socket(AF_INET, (type == MK8S_SOCKET_TCP ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      SetMessage(error, std::string("socket: ") + std::strerror(errno));
      return MK8S_ERR_INTERNAL;
    }
    const int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    const std::string where = std::string(address) + ":" + std::to_string(port);
    if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
        (type == MK8S_SOCKET_TCP && listen(fd, 128) != 0)) {
      const int err = errno;
      close(fd);
      SetMessage(error, "cannot listen on " + where + ": " + std::strerror(err));
      return err == EADDRINUSE || err == EACCES ? MK8S_ERR_UNAVAILABLE : MK8S_ERR_INTERNAL;
    }
    socklen_t length = sizeof(addr);
    getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &length);
    if (bound_port != nullptr) *bound_port = ntohs(addr.sin_port);
    *fd_out = fd;
    return MK8S_OK;
  }
};

HostContext::HostContext(const HostSettings& settings, ClientFactory make_client,
                         std::shared_ptr<AddonThread> thread, std::string label)
    : settings_(settings),
      make_client_(std::move(make_client)),
      thread_(std::move(thread)),
      label_(std::move(label)),
      streams_(thread_, label_) {
  for (const std::string& ip : settings_.node_ips) node_ips_ += (node_ips_.empty() ? "" : ",") + ip;
  config_.abi_version = MK8S_ABI_VERSION;
  config_.struct_size = sizeof(config_);
  config_.addon_name = addon_name_.c_str();
  config_.state_dir = state_dir_.c_str();
  config_.cluster_domain = settings_.cluster_domain.c_str();
  config_.service_cidr = settings_.service_cidr.c_str();
  config_.cluster_dns_ip = settings_.cluster_dns_ip.c_str();
  config_.node_ips = node_ips_.c_str();
  config_.api_server_url = settings_.api_server_url.c_str();
  config_.daemon_state_dir = settings_.daemon_state_dir.c_str();

  api_.abi_version = MK8S_ABI_VERSION;
  api_.struct_size = sizeof(api_);
  api_.ctx = reinterpret_cast<mk8s_host_ctx*>(this);
  api_.config = &config_;
  api_.mk8s_host_log = &HostFunctions::Log;
  api_.mk8s_host_free_bytes = &HostFunctions::FreeBytes;
  api_.mk8s_host_api_request = &HostFunctions::ApiRequest;
  api_.mk8s_host_apply = &HostFunctions::Apply;
  api_.mk8s_host_delete_manifest = &HostFunctions::DeleteManifest;
  api_.mk8s_host_watch = &HostFunctions::StartWatch;
  api_.mk8s_host_watch_cancel = &HostFunctions::CancelWatch;
  api_.mk8s_host_listen = &HostFunctions::Listen;
  api_.mk8s_host_serve_http = &HostFunctions::ServeHttp;
  api_.mk8s_host_http_write = &HostFunctions::HttpWrite;
  api_.mk8s_host_http_stream_begin = &HostFunctions::StreamBegin;
  api_.mk8s_host_http_stream_write = &HostFunctions::StreamWrite;
  api_.mk8s_host_http_stream_end = &HostFunctions::StreamEnd;
}

HostContext::~HostContext() { Close(); }

void HostContext::SetIdentity(const std::string& name, const std::string& state_dir) {
  addon_name_ = name;
  state_dir_ = state_dir;
  label_ = name;
  streams_.SetLabel(name);
  config_.addon_name = addon_name_.c_str();
  config_.state_dir = state_dir_.c_str();
}

void HostContext::SetHttpRoutes(std::shared_ptr<HttpRoutes> routes) {
  std::lock_guard lock(mu_);
  http_routes_ = std::move(routes);
}

void HostContext::StopServingHttp(std::chrono::milliseconds timeout) {
  std::shared_ptr<HttpRoutes> routes;
  {
    std::lock_guard lock(mu_);
    routes = http_routes_;
  }
  if (routes != nullptr && routes->size(addon_name_) != 0) {
    const std::string name = addon_name_;
    // On the addon's thread: after it, no posted request can reach a handler. A hung thread runs
    // nothing more, so dropping directly is then just as safe.
    if (!thread_->Call([routes, name] { routes->RemoveAll(name); }, timeout).ok()) {
      routes->RemoveAll(name);
    }
  }
  EndStreams();
}

void HostContext::EndStreams() { streams_.EndAll(); }

void HostContext::SetFaultHandler(std::function<void(const std::string&)> on_fault) {
  on_fault_ = std::move(on_fault);
}

std::shared_ptr<client::Client> HostContext::Client() {
  std::lock_guard lock(mu_);
  if (closed_) return nullptr;
  if (client_ == nullptr && make_client_) client_ = make_client_(addon_name_);
  return client_;
}

void HostContext::CancelWatches() {
  std::set<std::shared_ptr<Watch>> watches;
  {
    std::lock_guard lock(mu_);
    watches.swap(watches_);
  }
  for (const auto& watch : watches) HostFunctions::Stop(this, watch);
}

void HostContext::Close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  streams_.Close();
  CancelWatches();
  std::shared_ptr<client::Client> client;
  {
    std::lock_guard lock(mu_);
    client.swap(client_);
  }
  client.reset();  // the last reference joins the transport's callback thread
}

}  // namespace mk8s::addonhost
