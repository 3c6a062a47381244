// The header-only C++ wrapper over mk8s/abi.h for addon authors: a base class to derive from,
// a Host object for the daemon's services, RAII watch handles and fmt-style logging.
//
// Exceptions never cross the ABI: every callback the wrapper exports catches everything and
// turns it into a status plus a one-line message (mk8s::sdk::Error carries its own status code;
// any other exception becomes MK8S_ERR_EXCEPTION). Usage:
//
//   class Hello : public mk8s::sdk::Addon {
//    public:
//     explicit Hello(mk8s::sdk::Host& host) : host_(host) {}
//     void OnEnable(const mk8s::sdk::Args& args) override { host_.Apply(...); }
//     void OnDisable() override { host_.DeleteManifest(...); }
//     mk8s::sdk::Health OnStatus() override { return {true, "serving"}; }
//    private:
//     mk8s::sdk::Host& host_;
//   };
//   MK8S_ADDON(Hello, (mk8s::sdk::Manifest{.name = "hello", .version = "1.0", ...}))
//
// The wrapper is split in three headers; include this one: error.hpp (Error, SetMessage) and
// http.hpp (HTTP routes and streamed responses) come with it.
//
// Threads: lifecycle calls and watch callbacks arrive on the addon's host thread, one at a time.
// Host methods are thread-safe. The Host reference given to the constructor stays valid until the
// addon object is destroyed (at unload).
#pragma once

#include <fmt/format.h>
#include <mk8s/abi.h>
#include <mk8s/error.hpp>
#include <mk8s/http.hpp>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mk8s::sdk {

// The validated arguments given to OnEnable (defaults already filled in by the host).
class Args {
 public:
  Args() = default;
  explicit Args(const mk8s_args_v1* raw) {
    if (raw == nullptr) return;
    for (size_t i = 0; i < raw->count; ++i) {
      values_[raw->values[i].name] = raw->values[i].value != nullptr ? raw->values[i].value : "";
    }
    if (raw->raw != nullptr) raw_ = raw->raw;
  }
  bool Has(const std::string& name) const { return values_.count(name) != 0; }
  std::string Get(const std::string& name, const std::string& fallback = "") const {
    auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second;
  }
  int64_t GetInt(const std::string& name, int64_t fallback = 0) const {
    auto it = values_.find(name);
    return it == values_.end() ? fallback : std::strtoll(it->second.c_str(), nullptr, 10);
  }
  bool GetBool(const std::string& name, bool fallback = false) const {
    auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second == "true";
  }
  // A comma-separated value (MK8S_ARG_IPV4_LIST) as its items.
  std::vector<std::string> GetList(const std::string& name) const {
    std::vector<std::string> items;
    const std::string value = Get(name);
    size_t start = 0;
    while (start <= value.size() && !value.empty()) {
      const size_t comma = value.find(',', start);
      items.push_back(
          value.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
    return items;
  }
  const std::map<std::string, std::string>& values() const { return values_; }
  const std::string& raw() const { return raw_; }

 private:
  std::map<std::string, std::string> values_;
  std::string raw_;
};

struct Health {
  bool healthy = true;
  std::string message;  // one line
};

struct ApiResponse {
  int status = 0;  // HTTP status
  std::string body;
  bool ok() const { return status >= 200 && status < 300; }
};

enum class WatchEvent {
  kAdded = MK8S_WATCH_ADDED,
  kModified = MK8S_WATCH_MODIFIED,
  kDeleted = MK8S_WATCH_DELETED
};

// A live list+watch; cancels itself when destroyed. Move-only.
class Watch {
 public:
  using Callback = std::function<void(WatchEvent, std::string_view object_json)>;
  Watch() = default;
  Watch(const mk8s_host_api_v1* host, mk8s_watch_handle* handle, std::unique_ptr<Callback> cb)
      : host_(host), handle_(handle), callback_(std::move(cb)) {}
  Watch(Watch&& other) noexcept { *this = std::move(other); }
  Watch& operator=(Watch&& other) noexcept {
    if (this != &other) {
      Cancel();
      host_ = std::exchange(other.host_, nullptr);
      handle_ = std::exchange(other.handle_, nullptr);
      callback_ = std::move(other.callback_);
    }
    return *this;
  }
  ~Watch() { Cancel(); }
  // After Cancel returns the callback no longer runs. Idempotent.
  void Cancel() noexcept {
    if (handle_ != nullptr) host_->mk8s_host_watch_cancel(host_->ctx, handle_);
    handle_ = nullptr;
    callback_.reset();
  }
  bool active() const { return handle_ != nullptr; }

 private:
  const mk8s_host_api_v1* host_ = nullptr;  // owned by the host
  mk8s_watch_handle* handle_ = nullptr;     // owned by this object until Cancel
  std::unique_ptr<Callback> callback_;      // the user_data of the watch
};

// The daemon's services for this addon. Thread-safe. Methods that can fail throw Error.
class Host {
 public:
  explicit Host(const mk8s_host_api_v1* api) : api_(api) {}
  const mk8s_host_api_v1* raw() const { return api_; }

  // --- configuration (strings owned by the host, valid for the addon's lifetime)
  std::string_view addon_name() const { return Str(api_->config->addon_name); }
  std::string_view state_dir() const { return Str(api_->config->state_dir); }
  std::string_view cluster_domain() const { return Str(api_->config->cluster_domain); }
  std::string_view service_cidr() const { return Str(api_->config->service_cidr); }
  std::string_view cluster_dns_ip() const { return Str(api_->config->cluster_dns_ip); }
  std::string_view node_ips() const { return Str(api_->config->node_ips); }
  std::string_view api_server_url() const { return Str(api_->config->api_server_url); }

  // --- logging
  void Log(mk8s_log_level_t level, std::string_view message) const noexcept {
    api_->mk8s_host_log(api_->ctx, level, mk8s_borrowed_str{message.data(), message.size()});
  }
  template <typename... T>
  void Info(fmt::format_string<T...> format, T&&... args) const {
    Log(MK8S_LOG_INFO, fmt::format(format, std::forward<T>(args)...));
  }
  template <typename... T>
  void Warn(fmt::format_string<T...> format, T&&... args) const {
    Log(MK8S_LOG_WARN, fmt::format(format, std::forward<T>(args)...));
  }
  template <typename... T>
  void Err(fmt::format_string<T...> format, T&&... args) const {
    Log(MK8S_LOG_ERROR, fmt::format(format, std::forward<T>(args)...));
  }

  // --- the Kubernetes API (as system:addon:<name>)
  // Any HTTP answer is returned (check ok()); no answer at all throws Error.
  ApiResponse Request(std::string_view method, std::string_view path, std::string_view body = {},
                      std::string_view query = {}, std::string_view content_type = {},
                      int64_t timeout_ms = 0) const {
    mk8s_api_request_v1 request{};
    request.abi_version = MK8S_ABI_VERSION;
    request.struct_size = sizeof(request);
    request.method = Borrow(method);
    request.path = Borrow(path);
    request.query = Borrow(query);
    request.content_type = Borrow(content_type);
    request.body = Borrow(body);
    request.timeout_ms = timeout_ms;
    mk8s_api_response_v1 response{};
    response.abi_version = MK8S_ABI_VERSION;
    response.struct_size = sizeof(response);
    const mk8s_status_t status = api_->mk8s_host_api_request(api_->ctx, &request, &response);
    ApiResponse out;
    out.status = response.http_status;
    if (response.body.data != nullptr) {
      out.body.assign(response.body.data, response.body.len);
      api_->mk8s_host_free_bytes(api_->ctx, response.body.data);
    }
    if (status != MK8S_OK) {
      throw Error(status, fmt::format("{} {}: {}", method, path, out.body));
    }
    return out;
  }
  // Server-side apply of a YAML/JSON manifest (multi-document).
  void Apply(std::string_view manifest) const {
    Check([&](mk8s_message_out* error) {
      return api_->mk8s_host_apply(api_->ctx, Borrow(manifest), error);
    });
  }
  // Deletes every object a manifest names; missing ones are fine.
  void DeleteManifest(std::string_view manifest) const {
    Check([&](mk8s_message_out* error) {
      return api_->mk8s_host_delete_manifest(api_->ctx, Borrow(manifest), error);
    });
  }
  // List+watch `api_path` ("/api/v1/configmaps"); `ns` empty = all namespaces.
  Watch Subscribe(const std::string& api_path, const std::string& ns,
                  const std::string& label_selector, Watch::Callback callback) const {
    auto owned = std::make_unique<Watch::Callback>(std::move(callback));
    mk8s_watch_request_v1 request{};
    request.abi_version = MK8S_ABI_VERSION;
    request.struct_size = sizeof(request);
    request.api_path = api_path.c_str();
    request.namespace_name = ns.c_str();
    request.label_selector = label_selector.c_str();
    request.field_selector = "";
    request.on_event = &Host::Trampoline;
    request.user_data = owned.get();
    mk8s_watch_handle* handle = nullptr;
    Check([&](mk8s_message_out* error) {
      return api_->mk8s_host_watch(api_->ctx, &request, &handle, error);
    });
    return Watch(api_, handle, std::move(owned));
  }
  // A listening socket owned by the caller (close it in OnStop). Returns the fd.
  int Listen(mk8s_socket_type_t type, const std::string& address, uint16_t port,
             uint16_t* bound_port = nullptr) const {
    int fd = -1;
    uint16_t bound = 0;
    Check([&](mk8s_message_out* error) {
      return api_->mk8s_host_listen(api_->ctx, type, address.c_str(), port, &fd, &bound, error);
    });
    if (bound_port != nullptr) *bound_port = bound;
    return fd;
  }
  // Serves `handler` under /addons/<name><prefix> on the API server (ABI 1.1; see
  // mk8s_http_route_v1). The handler runs on the addon's thread; an exception it throws becomes
  // a 500 with its message. Call from OnStart and keep the returned route until OnStop. A
  // handler may stream its answer instead (HttpRequest::BeginStream, ABI 1.2; see http.hpp).
  HttpRoute ServeHttp(const std::string& prefix, HttpRoute::Handler handler) const {
    if (api_->struct_size < MK8S_HOST_API_V1_1_MIN_SIZE) {
      throw Error(MK8S_ERR_UNAVAILABLE, "this mk8sd is too old to serve addon HTTP routes");
    }
    auto bound = std::make_unique<HttpRoute::Bound>(HttpRoute::Bound{api_, std::move(handler)});
    mk8s_http_route_v1 route{};
    route.abi_version = MK8S_ABI_VERSION;
    route.struct_size = sizeof(route);
    route.prefix = prefix.c_str();
    route.on_request = &HttpRoute::Trampoline;
    route.user_data = bound.get();
    Check([&](mk8s_message_out* error) {
      return api_->mk8s_host_serve_http(api_->ctx, &route, error);
    });
    return HttpRoute(std::move(bound));
  }

 private:
  static std::string_view Str(const char* s) { return s == nullptr ? std::string_view() : s; }
  static mk8s_borrowed_str Borrow(std::string_view s) { return {s.data(), s.size()}; }
  template <typename F>
  static void Check(F&& call) {
    char buffer[1024] = {0};
    mk8s_message_out error{buffer, sizeof(buffer), 0};
    const mk8s_status_t status = call(&error);
    if (status != MK8S_OK) throw Error(status, std::string(buffer, error.len));
  }
  static void Trampoline(void* user_data, mk8s_watch_event_t type, mk8s_borrowed_str object) {
    try {
      (*static_cast<Watch::Callback*>(user_data))(static_cast<WatchEvent>(type),
                                                  std::string_view(object.ptr, object.len));
    } catch (...) {
      // Exceptions never cross the ABI. The addon's own code should log what it cannot handle.
    }
  }

  const mk8s_host_api_v1* api_;  // owned by the host
};

// What addon authors derive from. Methods may throw; the wrapper reports the exception.
class Addon {
 public:
  virtual ~Addon() = default;
  virtual void OnEnable(const Args& args) = 0;
  virtual void OnDisable() = 0;
  virtual Health OnStatus() = 0;
  virtual void OnStart() {}
  virtual void OnStop() noexcept {}
};

// One accepted argument (see mk8s_arg_spec_v1).
struct Argument {
  std::string name;
  std::string help;
  mk8s_arg_type_t type = MK8S_ARG_STRING;
  bool required = false;
  std::optional<std::string> default_value;
  std::string choices;  // MK8S_ARG_ENUM: "a,b,c"
  std::string pattern;  // MK8S_ARG_STRING: regex, empty = any
  int64_t min_value = std::numeric_limits<int64_t>::min();
  int64_t max_value = std::numeric_limits<int64_t>::max();

  // Shorthands: Argument::Int("count", "how many", 1, 10, "1").
  static Argument String(std::string name, std::string help,
                         std::optional<std::string> default_value = std::nullopt,
                         std::string pattern = "") {
    Argument arg =
        Make(std::move(name), std::move(help), MK8S_ARG_STRING, std::move(default_value));
    arg.pattern = std::move(pattern);
    return arg;
  }
  static Argument Int(std::string name, std::string help, int64_t min, int64_t max,
                      std::optional<std::string> default_value = std::nullopt) {
    Argument arg = Make(std::move(name), std::move(help), MK8S_ARG_INT, std::move(default_value));
    arg.min_value = min;
    arg.max_value = max;
    return arg;
  }
  static Argument Bool(std::string name, std::string help,
                       std::optional<std::string> default_value = std::nullopt) {
    return Make(std::move(name), std::move(help), MK8S_ARG_BOOL, std::move(default_value));
  }
  static Argument Enum(std::string name, std::string help, std::string choices,
                       std::optional<std::string> default_value = std::nullopt) {
    Argument arg = Make(std::move(name), std::move(help), MK8S_ARG_ENUM, std::move(default_value));
    arg.choices = std::move(choices);
    return arg;
  }
  static Argument Ipv4List(std::string name, std::string help,
                           std::optional<std::string> default_value = std::nullopt) {
    return Make(std::move(name), std::move(help), MK8S_ARG_IPV4_LIST, std::move(default_value));
  }
  Argument& Required() {
    required = true;
    return *this;
  }

 private:
  static Argument Make(std::string name, std::string help, mk8s_arg_type_t type,
                       std::optional<std::string> default_value) {
    Argument arg;
    arg.name = std::move(name);
    arg.help = std::move(help);
    arg.type = type;
    arg.default_value = std::move(default_value);
    return arg;
  }
};

struct Manifest {
  std::string name;
  std::string version;
  std::string description;
  std::string repository = "core";
  std::vector<Argument> args;
  std::vector<std::string> depends_on;
  bool needs_root = false;
};

namespace detail {

// Everything one loaded addon owns: the manifest's C view, the host wrapper and the addon object.
// Created by mk8s_addon_init, deleted by mk8s_on_unload.
template <typename AddonT>
class Binding {
 public:
  Binding(const mk8s_host_api_v1* api, Manifest manifest)
      : host_(api), manifest_(std::move(manifest)) {
    for (const Argument& arg : manifest_.args) {
      mk8s_arg_spec_v1 spec{};
      spec.abi_version = MK8S_ABI_VERSION;
      spec.struct_size = sizeof(spec);
      spec.name = arg.name.c_str();
      spec.help = arg.help.c_str();
      spec.type = arg.type;
      spec.required = arg.required ? 1 : 0;
      spec.default_value = arg.default_value ? arg.default_value->c_str() : nullptr;
      spec.choices = arg.choices.empty() ? nullptr : arg.choices.c_str();
      spec.pattern = arg.pattern.empty() ? nullptr : arg.pattern.c_str();
      spec.min_value = arg.min_value;
      spec.max_value = arg.max_value;
      specs_.push_back(spec);
    }
    for (const mk8s_arg_spec_v1& spec : specs_) spec_ptrs_.push_back(&spec);
    for (const std::string& dep : manifest_.depends_on) deps_.push_back(dep.c_str());
    c_manifest_ = mk8s_manifest_v1{};
    c_manifest_.abi_version = MK8S_ABI_VERSION;
    c_manifest_.struct_size = sizeof(c_manifest_);
    c_manifest_.name = manifest_.name.c_str();
    c_manifest_.version = manifest_.version.c_str();
    c_manifest_.description = manifest_.description.c_str();
    c_manifest_.repository = manifest_.repository.c_str();
    c_manifest_.args = spec_ptrs_.data();
    c_manifest_.arg_count = spec_ptrs_.size();
    c_manifest_.depends_on = deps_.data();
    c_manifest_.depends_on_count = deps_.size();
    c_manifest_.needs_root = manifest_.needs_root ? 1 : 0;
    addon_ = std::make_unique<AddonT>(host_);

    vtable_ = mk8s_addon_v1{};
    vtable_.abi_version = MK8S_ABI_VERSION;
    vtable_.struct_size = sizeof(vtable_);
    vtable_.manifest = &c_manifest_;
    vtable_.addon_ctx = this;
    vtable_.mk8s_on_enable = [](void* self, const mk8s_args_v1* args, mk8s_message_out* out) {
      return Guard(out, [&] { Self(self)->addon_->OnEnable(Args(args)); });
    };
    vtable_.mk8s_on_disable = [](void* self, mk8s_message_out* out) {
      return Guard(out, [&] { Self(self)->addon_->OnDisable(); });
    };
    vtable_.mk8s_on_status = [](void* self, mk8s_message_out* out) -> mk8s_status_t {
      Health health;
      const mk8s_status_t status = Guard(out, [&] { health = Self(self)->addon_->OnStatus(); });
      if (status != MK8S_OK) return status;
      SetMessage(out, health.message);
      return health.healthy ? MK8S_OK : MK8S_ERR_UNHEALTHY;
    };
    vtable_.mk8s_on_start = [](void* self, mk8s_message_out* out) {
      return Guard(out, [&] { Self(self)->addon_->OnStart(); });
    };
    vtable_.mk8s_on_stop = [](void* self) { Self(self)->addon_->OnStop(); };
    vtable_.mk8s_on_unload = [](void* self) {
      try {
        delete Self(self);
      } catch (...) {
      }
    };
  }
  const mk8s_addon_v1* vtable() const { return &vtable_; }

 private:
  static Binding* Self(void* p) { return static_cast<Binding*>(p); }
  template <typename F>
  static mk8s_status_t Guard(mk8s_message_out* out, F&& body) noexcept {
    try {
      body();
      return MK8S_OK;
    } catch (const Error& e) {
      SetMessage(out, e.what());
      return e.code() == MK8S_OK ? MK8S_ERR_INTERNAL : e.code();
    } catch (const std::exception& e) {
      SetMessage(out, std::string("unexpected exception: ") + e.what());
      return MK8S_ERR_EXCEPTION;
    } catch (...) {
      SetMessage(out, "unexpected exception of unknown type");
      return MK8S_ERR_EXCEPTION;
    }
  }

  Host host_;
  Manifest manifest_;
  std::vector<mk8s_arg_spec_v1> specs_;  // filled once; never resized after
  std::vector<const mk8s_arg_spec_v1*> spec_ptrs_;
  std::vector<const char*> deps_;
  mk8s_manifest_v1 c_manifest_{};
  std::unique_ptr<AddonT> addon_;
  mk8s_addon_v1 vtable_{};
};

// The body of mk8s_addon_init: checks the host's ABI, then builds the binding. Never throws.
template <typename AddonT, typename ManifestFn>
const mk8s_addon_v1* Init(const mk8s_host_api_v1* host, ManifestFn&& manifest) noexcept {
  if (host == nullptr || MK8S_ABI_MAJOR_OF(host->abi_version) != MK8S_ABI_VERSION_MAJOR ||
      host->struct_size < MK8S_HOST_API_V1_MIN_SIZE) {
    return nullptr;  // a host of another major version: we cannot even log safely
  }
  try {
    return (new Binding<AddonT>(host, manifest()))->vtable();
  } catch (const std::exception& e) {
    const std::string message = std::string("init failed: ") + e.what();
    host->mk8s_host_log(host->ctx, MK8S_LOG_ERROR, {message.data(), message.size()});
  } catch (...) {
    const std::string message = "init failed: unknown exception";
    host->mk8s_host_log(host->ctx, MK8S_LOG_ERROR, {message.data(), message.size()});
  }
  return nullptr;
}

}  // namespace detail
}  // namespace mk8s::sdk

// Exports the two ABI symbols for `AddonClass` (constructible from mk8s::sdk::Host&) with the
// manifest `manifest_expr` (an expression yielding mk8s::sdk::Manifest). Use once per library.
#define MK8S_ADDON(AddonClass, manifest_expr)                                               \
  extern "C" __attribute__((visibility("default"))) const uint32_t mk8s_addon_abi_version = \
      MK8S_ABI_VERSION;                                                                     \
  extern "C" __attribute__((visibility("default"))) const mk8s_addon_v1* mk8s_addon_init(   \
      const mk8s_host_api_v1* host) {                                                       \
    return ::mk8s::sdk::detail::Init<AddonClass>(host, [] { return manifest_expr; });       \
  }
