// The example addon: enable applies a ConfigMap (default/mk8s-example) holding its `message`
// argument, start watches ConfigMaps labelled mk8s-example=watched, status reports both (and
// checks the ConfigMap is still there), disable deletes the ConfigMap.
#include <mk8s/addon.hpp>

#include <atomic>
#include <string>

namespace {

class Example : public mk8s::sdk::Addon {
 public:
  explicit Example(mk8s::sdk::Host& host) : host_(host) {}

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
  }

  void OnStop() noexcept override {
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

  mk8s::sdk::Host& host_;
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
