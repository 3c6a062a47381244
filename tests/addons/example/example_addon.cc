// The example addon: enable applies a ConfigMap (default/mk8s-example) holding its `message`
// argument, start watches ConfigMaps labelled mk8s-example=watched and serves HTTP routes on the
// API server (GET /addons/example/hello[/...]: its message, the caller and the path as JSON;
// /addons/example/fail: a handler that throws; streamed bodies from its own threads, SDK 1.2:
// /stream, /follow and /streams, see streaming.h), status reports both (and checks the ConfigMap
// is still there), disable deletes the ConfigMap.
#include <mk8s/addon.hpp>

#include <atomic>
#include <stdexcept>
#include <string>

#include "streaming.h"

namespace {

class Example : public mk8s::sdk::Addon {
 public:
  explicit Example(mk8s::sdk::Host& host) : host_(host), streaming_(host) {}

  void OnEnable(const mk8s::sdk::Args& args) override {
    message_ = args.Get("message");
    host_.Apply(Manifest());
    host_.Info("applied ConfigMap default/mk8s-example with message '{}'", message_);
  }

  void OnStart() override {
    watch_ = host_.Subscribe("/api/v1/configmaps", "", "mk8s-example=watched",
                             [this](mk8s::sdk::WatchEvent event, std::string_view) {
                               if (event == mk8s::sdk::WatchEvent::kAdded) ++watched_;
                               if (event == mk8s::sdk::WatchEvent::kDeleted) --watched_;
                             });
    hello_ = host_.ServeHttp("/hello", [this](const mk8s::sdk::HttpRequest& request) {
      if (request.method != "GET") return mk8s::sdk::HttpResponse{405, "text/plain", "GET only\n"};
      return mk8s::sdk::HttpResponse{
          200, "application/json",
          fmt::format(R"({{"message":"{}","user":"{}","path":"{}","watched":{}}})", Json(message_),
                      Json(request.user), Json(request.path), watched_.load())};
    });
    fail_ = host_.ServeHttp("/fail", [](const mk8s::sdk::HttpRequest&) -> mk8s::sdk::HttpResponse {
      throw std::runtime_error("the example fails on purpose");
    });
    streaming_.Start();
  }

  void OnStop() noexcept override {
    hello_ = {};  // the host dropped the routes before calling OnStop
    fail_ = {};
    streaming_.Stop();  // joins its producers: the host ended their streams already
    watch_.Cancel();
    watched_ = 0;
  }

  void OnDisable() override { host_.DeleteManifest(Manifest()); }

  mk8s::sdk::Health OnStatus() override {
    const mk8s::sdk::ApiResponse got =
        host_.Request("GET", "/api/v1/namespaces/default/configmaps/mk8s-example");
    if (!got.ok()) {
      return {false,
              fmt::format("ConfigMap default/mk8s-example is missing (HTTP {})", got.status)};
    }
    return {true, fmt::format("message '{}' served; watching {} labelled configmap(s)", message_,
                              watched_.load())};
  }

 private:
  std::string Manifest() const {
    return fmt::format(
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata:\n"
        "  name: mk8s-example\n"
        "  namespace: default\n"
        "  labels:\n"
        "    mk8s-example: watched\n"
        "data:\n"
        "  message: \"{}\"\n"
        "  domain: \"{}\"\n",
        message_, host_.cluster_domain());
  }

  // `text` as the inside of a JSON string.
  static std::string Json(std::string_view text) {
    std::string out;
    for (const char c : text) {
      if (c == '"' || c == '\\') {
        out += '\\';
        out += c;
      } else if (static_cast<unsigned char>(c) < 0x20) {
        out += fmt::format("\\u{:04x}", static_cast<int>(c));
      } else {
        out += c;
      }
    }
    return out;
  }

  mk8s::sdk::Host& host_;
  mk8s::sdk::HttpRoute hello_, fail_;
  example::StreamingRoutes streaming_;
  std::string message_;
  mk8s::sdk::Watch watch_;
  std::atomic<int> watched_{0};
};

mk8s::sdk::Manifest MakeManifest() {
  mk8s::sdk::Manifest manifest;
  manifest.name = "example";
  manifest.version = "1.0.0";
  manifest.description = "Example out-of-tree addon (writes a ConfigMap)";
  // The pattern keeps the value safe inside a quoted YAML string.
  manifest.args.push_back(mk8s::sdk::Argument::String("message", "the text stored in the ConfigMap",
                                                      "hello", "[A-Za-z0-9 ._-]{1,64}"));
  return manifest;
}

}  // namespace

MK8S_ADDON(Example, MakeManifest())
