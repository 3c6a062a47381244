#include "fixture.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "apiserver/api_server.h"
#include "client/in_process_transport.h"
#include "client/informer.h"
#include "pki/certificates.h"
#include "pki/csr.h"
#include "pki/encoding.h"
#include "store/store.h"

namespace mk8s::controllers::test {
namespace {

// The PKI folder shared by every server of this test binary (generating it is the slow part of a
// server start). Created on first use; removed when the test program ends.
class PkiEnvironment : public ::testing::Environment {
 public:
  static const std::string& Dir() {
    static const std::string dir = [] {
      char pattern[] = "/tmp/mk8s-ctltest-pki-XXXXXX";
      if (mkdtemp(pattern) == nullptr) return std::string();
      return std::string(pattern);
    }();
    return dir;
  }
  void SetUp() override {
    // The server and controllers log at info; keep test output to warnings unless asked.
    if (std::getenv("MK8S_TEST_VERBOSE") == nullptr) spdlog::set_level(spdlog::level::warn);
  }
  void TearDown() override {
    std::error_code ignored;
    if (!Dir().empty()) std::filesystem::remove_all(Dir(), ignored);
  }
};

[[maybe_unused]] ::testing::Environment* const kPkiEnvironment =
    ::testing::AddGlobalTestEnvironment(new PkiEnvironment());

// "ReplicaSetTest.AdoptsOrphans" -> "replicasettest-adoptsorphans-3" (DNS label, <= 63 chars).
std::string NamespaceFor(const ::testing::TestInfo* info) {
  static std::atomic<int> counter{0};
  std::string raw = std::string(info->test_suite_name()) + "-" + info->name();
  std::string out;
  for (char c : raw) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    } else if (!out.empty() && out.back() != '-') {
      out.push_back('-');
    }
  }
  const std::string suffix = "-" + std::to_string(++counter);
  if (out.size() + suffix.size() > 63) out.resize(63 - suffix.size());
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out + suffix;
}

}  // namespace

ControllerTest::ControllerTest() = default;
ControllerTest::~ControllerTest() = default;

void ControllerTest::SetUp() {
  ASSERT_FALSE(PkiEnvironment::Dir().empty()) << "mkdtemp failed";
  char pattern[] = "/tmp/mk8s-ctltest-XXXXXX";
  ASSERT_NE(mkdtemp(pattern), nullptr);
  dir_ = pattern;

  store::StoreOptions store_options;
  store_options.path = dir_ + "/datastore.db";
  auto opened = store::Store::Open(store_options);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  store_ = std::move(*opened);

  apiserver::ApiServerOptions options;
  options.bind_address = "127.0.0.1";
  const char* port = std::getenv("MK8S_APISERVER_PORT");
  options.port = port ? static_cast<uint16_t>(std::atoi(port)) : 0;
  options.credentials_dir = PkiEnvironment::Dir();
  options.kubeconfig_path = dir_ + "/client.config";
  options.node_ips = {"127.0.0.1"};
  auto started = apiserver::ApiServer::Start(options, store_.get());
  ASSERT_TRUE(started.ok()) << started.status().ToString();
  server_ = std::move(*started);

  test_transport_ = client::InProcessTransport::Create(
      server_->InProcessHandler("system:admin", {"system:masters", "system:authenticated"}),
      "system:admin");
  client_ = std::make_shared<client::Client>(test_transport_);
  controller_transport_ = client::InProcessTransport::Create(
      server_->InProcessHandler("system:kube-controller-manager", {"system:authenticated"}),
      "system:kube-controller-manager");
  auto controller_client = std::make_shared<client::Client>(controller_transport_);
  informers_ = std::make_unique<client::SharedInformerFactory>(controller_client);

  std::ifstream ca(PkiEnvironment::Dir() + "/ca.crt");
  std::stringstream ca_text;
  ca_text << ca.rdbuf();
  ASSERT_FALSE(ca_text.str().empty()) << "no ca.crt in " << PkiEnvironment::Dir();

  context_.client = controller_client;
  context_.informers = informers_.get();
  context_.clock = &clock_;
  context_.cluster_ca_pem = ca_text.str();
  context_.cluster_signing_cert_file = PkiEnvironment::Dir() + "/ca.crt";
  context_.cluster_signing_key_file = PkiEnvironment::Dir() + "/ca.key";
  context_.node_monitor_grace_period = 10s;
  context_.node_monitor_period = 2s;

  wall_anchor_ = std::chrono::system_clock::now();
  clock_anchor_ = clock_.Now();

  ns_ = NamespaceFor(::testing::UnitTest::GetInstance()->current_test_info());
  ASSERT_FALSE(CreateNamespace(ns_).is_null());
}

std::shared_ptr<client::Client> ControllerTest::ClientAs(const std::string& user,
                                                         const std::vector<std::string>& groups) {
  other_transports_.push_back(
      client::InProcessTransport::Create(server_->InProcessHandler(user, groups), user));
  return std::make_shared<client::Client>(other_transports_.back());
}

void ControllerTest::TearDown() {
  StopControllers();
  if (informers_) informers_->Shutdown();
  informers_.reset();
  context_.client.reset();
  client_.reset();
  test_transport_.reset();        // joins the transport's callback thread
  controller_transport_.reset();
  other_transports_.clear();
  if (server_) server_->Stop();
  server_.reset();
  store_.reset();
  if (!dir_.empty()) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

std::string ControllerTest::Unique(const std::string& base) const {
  std::string prefix = ns_;
  if (prefix.size() > 40) prefix = prefix.substr(prefix.size() - 40);
  while (!prefix.empty() && !std::isalnum(static_cast<unsigned char>(prefix.front()))) {
    prefix.erase(prefix.begin());
  }
  return prefix + "-" + base;
}

// --- controllers

void ControllerTest::StartController(const std::string& name, int workers) {
  StartControllers({name}, workers);
}

void ControllerTest::StartController(const ControllerFactory& factory, int workers) {
  BuildAndRun({&factory}, workers);
}

void ControllerTest::StartControllers(const std::vector<std::string>& names, int workers) {
  std::vector<const ControllerFactory*> factories;
  for (const std::string& name : names) {
    const ControllerFactory* factory = ControllerRegistry::Builtin().Find(name);
    if (factory == nullptr) {
      ADD_FAILURE() << "no builtin controller named '" << name << "'";
      return;
    }
    factories.push_back(factory);
  }
  BuildAndRun(factories, workers);
}

void ControllerTest::BuildAndRun(const std::vector<const ControllerFactory*>& factories,
                                 int workers) {
  const size_t first = controllers_.size();
  for (const ControllerFactory* factory : factories) {
    controllers_.push_back((*factory)(context_));
    controllers_.back()->Setup();
  }
  informers_->Start();
  if (!informers_->WaitForCacheSync(kDefaultTimeout)) {
    ADD_FAILURE() << "controller informers did not sync";
    return;
  }
  for (size_t i = first; i < controllers_.size(); ++i) controllers_[i]->Run(workers);
}

void ControllerTest::StopControllers() {
  if (controllers_.empty()) return;
  for (auto& controller : controllers_) controller->Stop();
  // The informers hold handlers that point into the controllers: stop them before the
  // controllers go, and give later controllers a fresh factory.
  informers_->Shutdown();
  controllers_.clear();
  informers_ = std::make_unique<client::SharedInformerFactory>(context_.client);
  context_.informers = informers_.get();
}

// --- waiting and time

::testing::AssertionResult ControllerTest::WaitFor(const std::function<bool()>& predicate,
                                                   std::chrono::milliseconds timeout,
                                                   const std::string& what) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (predicate()) return ::testing::AssertionSuccess();
    if (std::chrono::steady_clock::now() >= deadline) {
      return ::testing::AssertionFailure()
             << "timed out after " << timeout.count() << " ms waiting for: " << what;
    }
    std::this_thread::sleep_for(5ms);  // a poll interval, bounded by the deadline above
  }
}

::testing::AssertionResult ControllerTest::AdvanceUntil(const std::function<bool()>& predicate,
                                                        client::Clock::Duration step,
                                                        client::Clock::Duration max_advance,
                                                        const std::string& what,
                                                        std::chrono::milliseconds settle) {
  client::Clock::Duration advanced{0};
  for (;;) {
    if (predicate()) return ::testing::AssertionSuccess();
    if (advanced >= max_advance) {
      // All the fake time is spent; a loaded machine may still be reacting to the last timers,
      // so give it real time (the default deadline) before failing.
      if (WaitFor(predicate, what)) return ::testing::AssertionSuccess();
      return ::testing::AssertionFailure()
             << "not reached after advancing the fake clock by "
             << std::chrono::duration_cast<std::chrono::milliseconds>(advanced).count()
             << " ms: " << what;
    }
    Advance(step);
    advanced += step;
    if (WaitFor(predicate, settle, what)) return ::testing::AssertionSuccess();
  }
}

::testing::AssertionResult ControllerTest::WaitUntilCached(const client::ResourceRef& resource,
                                                           const json& object,
                                                           const std::string& informer_ns) {
  client::Informer* informer = informers_->For(resource, informer_ns);
  if (!informer->HasSynced()) {
    return ::testing::AssertionFailure() << "no started controller informer for "
                                         << resource.Name() << " in '" << informer_ns << "'";
  }
  const std::string key = client::ObjectKey(object);
  const std::string wanted = object["metadata"].value("resourceVersion", "");
  return WaitFor([&] {
    client::ObjectPtr cached = informer->Get(key);
    if (!cached) return false;
    const std::string have = (*cached)["metadata"].value("resourceVersion", "");
    // Revisions are decimal counters; compare by length, then lexically.
    return have.size() > wanted.size() || (have.size() == wanted.size() && have >= wanted);
  }, kDefaultTimeout, "the controllers' cache to hold " + key + " at resourceVersion " + wanted);
}

std::chrono::system_clock::time_point ControllerTest::WallNow() {
  return wall_anchor_ +
         std::chrono::duration_cast<std::chrono::system_clock::duration>(clock_.Now() - clock_anchor_);
}

std::string ControllerTest::FormatTimestamp(std::chrono::system_clock::time_point time) {
  const std::time_t t = std::chrono::system_clock::to_time_t(time);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buffer;
}

// --- objects

json ControllerTest::CreateNamespace(const std::string& name) {
  json created = Create(client::kNamespaces, MakeNamespace(name));
  if (created.is_null()) return created;
  client::WriteOptions dry_run;
  dry_run.dry_run = true;
  json probe = MakeConfigMap("namespace-probe");
  probe["metadata"]["namespace"] = name;
  const bool usable = WaitFor([&] {
    auto result = client_->Create(client::kConfigMaps, name, probe, dry_run);
    return result.ok() || !client::IsNotFound(result.error());
  }, kDefaultTimeout, "namespace " + name + " to accept content");
  if (!usable) ADD_FAILURE() << "namespace " << name << " never accepted content";
  return created;
}

json ControllerTest::Create(const client::ResourceRef& resource, json object) {
  if (resource.namespaced && !object["metadata"].contains("namespace")) {
    object["metadata"]["namespace"] = ns_;
  }
  const std::string ns = resource.namespaced ? object["metadata"].value("namespace", "") : "";
  auto created = client_->Create(resource, ns, object);
  if (!created.ok()) {
    ADD_FAILURE() << "create " << resource.Name() << " " << object["metadata"].value("name", "")
                  << ": " << created.error().ToString();
    return json();
  }
  return std::move(*created);
}

std::optional<json> ControllerTest::Get(const client::ResourceRef& resource,
                                        const std::string& name) {
  return Get(resource, ns_, name);
}

std::optional<json> ControllerTest::Get(const client::ResourceRef& resource, const std::string& ns,
                                        const std::string& name) {
  auto got = client_->Get(resource, resource.namespaced ? ns : "", name);
  if (got.ok()) return std::move(*got);
  if (!client::IsNotFound(got.error())) {
    ADD_FAILURE() << "get " << resource.Name() << " " << name << ": " << got.error().ToString();
  }
  return std::nullopt;
}

std::vector<json> ControllerTest::List(const client::ResourceRef& resource,
                                       const std::string& label_selector) {
  return ListIn(resource, resource.namespaced ? ns_ : "", label_selector);
}

std::vector<json> ControllerTest::ListIn(const client::ResourceRef& resource, const std::string& ns,
                                         const std::string& label_selector) {
  client::ListOptions options;
  options.label_selector = label_selector;
  auto list = client_->ListAll(resource, ns, options);
  std::vector<json> items;
  if (!list.ok()) {
    ADD_FAILURE() << "list " << resource.Name() << ": " << list.error().ToString();
    return items;
  }
  for (const client::ObjectPtr& item : list->items) items.push_back(*item);
  return items;
}

json ControllerTest::Patch(const client::ResourceRef& resource, const std::string& name,
                           const json& patch) {
  auto patched = client_->Patch(resource, resource.namespaced ? ns_ : "", name,
                                client::PatchType::kMerge, patch);
  if (!patched.ok()) {
    ADD_FAILURE() << "patch " << resource.Name() << " " << name << ": "
                  << patched.error().ToString();
    return json();
  }
  return std::move(*patched);
}

json ControllerTest::Mutate(const client::ResourceRef& resource, const std::string& name,
                            const std::function<void(json&)>& mutate, bool status) {
  for (int attempt = 0; attempt < 20; ++attempt) {
    std::optional<json> current = Get(resource, name);
    if (!current) {
      ADD_FAILURE() << "mutate " << resource.Name() << " " << name << ": not found";
      return json();
    }
    mutate(*current);
    auto written = status ? client_->UpdateStatus(resource, *current)
                          : client_->Update(resource, *current);
    if (written.ok()) return std::move(*written);
    if (!client::IsConflict(written.error())) {
      ADD_FAILURE() << "mutate " << resource.Name() << " " << name << ": "
                    << written.error().ToString();
      return json();
    }
  }
  ADD_FAILURE() << "mutate " << resource.Name() << " " << name << ": too many conflicts";
  return json();
}

bool ControllerTest::Delete(const client::ResourceRef& resource, const std::string& name,
                            const std::string& propagation) {
  return DeleteIn(resource, ns_, name, propagation);
}

bool ControllerTest::DeleteIn(const client::ResourceRef& resource, const std::string& ns,
                              const std::string& name, const std::string& propagation) {
  client::DeleteOptions options;
  options.propagation_policy = propagation;
  auto deleted = client_->Delete(resource, resource.namespaced ? ns : "", name, options);
  if (deleted.ok() || client::IsNotFound(deleted.error())) return true;
  ADD_FAILURE() << "delete " << resource.Name() << " " << name << ": "
                << deleted.error().ToString();
  return false;
}

// --- playing the kubelet

bool ControllerTest::SetPodReady(const std::string& pod_name, bool ready, const std::string& ip) {
  for (int attempt = 0; attempt < 20; ++attempt) {
    auto current = client_->Get(client::kPods, ns_, pod_name);
    if (!current.ok()) return false;
    json pod = std::move(*current);
    json& status = pod["status"];
    status["phase"] = "Running";
    if (!ip.empty()) {
      status["podIP"] = ip;
    } else if (status.value("podIP", "").empty()) {
      ++ip_counter_;
      status["podIP"] = "10.1." + std::to_string(ip_counter_ / 250) + "." +
                        std::to_string(ip_counter_ % 250 + 1);
    }
    status["podIPs"] = json::array({{{"ip", status["podIP"]}}});
    const std::string value = ready ? "True" : "False";
    json conditions = json::array();
    bool found = false;
    for (json condition : status.value("conditions", json::array())) {
      if (condition.value("type", "") == "Ready") {
        found = true;
        if (condition.value("status", "") != value) condition["lastTransitionTime"] = Timestamp();
        condition["status"] = value;
      }
      conditions.push_back(condition);
    }
    if (!found) {
      conditions.push_back(
          {{"type", "Ready"}, {"status", value}, {"lastTransitionTime", Timestamp()}});
    }
    status["conditions"] = conditions;
    auto written = client_->UpdateStatus(client::kPods, pod);
    if (written.ok()) return true;
    if (client::IsNotFound(written.error())) return false;
    if (!client::IsConflict(written.error())) {
      ADD_FAILURE() << "pod status " << pod_name << ": " << written.error().ToString();
      return false;
    }
  }
  return false;
}

int ControllerTest::ReadyAllPods(const std::string& label_selector) {
  int changed = 0;
  for (const json& pod : List(client::kPods, label_selector)) {
    if (HasDeletionTimestamp(pod) || ConditionStatus(pod, "Ready") == "True") continue;
    if (SetPodReady(pod["metadata"].value("name", ""), true)) ++changed;
  }
  return changed;
}

std::vector<json> ControllerTest::EventsWithReason(const std::string& reason,
                                                   const std::string& name) {
  std::vector<json> out;
  for (const json& event : List(client::kEvents)) {
    if (event.value("reason", "") != reason) continue;
    if (!name.empty() && event.value("/involvedObject/name"_json_pointer, std::string()) != name) {
      continue;
    }
    out.push_back(event);
  }
  return out;
}

// --- builders

json MakeNamespace(const std::string& name) {
  return {{"apiVersion", "v1"}, {"kind", "Namespace"}, {"metadata", {{"name", name}}}};
}

json MakePodTemplate(const json& labels, const std::string& image) {
  return {{"metadata", {{"labels", labels}}},
          {"spec",
           {{"containers", json::array({{{"name", "app"},
                                         {"image", image},
                                         {"ports", json::array({{{"name", "http"},
                                                                 {"containerPort", 8080}}})}}})}}}};
}

json MakePod(const std::string& name, const json& labels, const std::string& node_name) {
  json pod = MakePodTemplate(labels);
  pod["apiVersion"] = "v1";
  pod["kind"] = "Pod";
  pod["metadata"]["name"] = name;
  if (!node_name.empty()) pod["spec"]["nodeName"] = node_name;
  return pod;
}

json MakeReplicaSet(const std::string& name, int64_t replicas, const json& labels) {
  return {{"apiVersion", "apps/v1"},
          {"kind", "ReplicaSet"},
          {"metadata", {{"name", name}}},
          {"spec",
           {{"replicas", replicas},
            {"selector", {{"matchLabels", labels}}},
            {"template", MakePodTemplate(labels)}}}};
}

json MakeDeployment(const std::string& name, int64_t replicas, const json& labels) {
  json deployment = MakeReplicaSet(name, replicas, labels);
  deployment["kind"] = "Deployment";
  return deployment;
}

json MakeService(const std::string& name, const json& selector, const json& ports) {
  return {{"apiVersion", "v1"},
          {"kind", "Service"},
          {"metadata", {{"name", name}}},
          {"spec", {{"selector", selector}, {"ports", ports}}}};
}

json MakeClientCsr(const std::string& name) {
  auto key = pki::GenerateEcKeyPem();
  EXPECT_TRUE(key.ok());
  pki::CsrOptions options;
  options.common_name = "alice";
  auto pem = pki::CreateCsr(key.ok() ? *key : "", options);
  EXPECT_TRUE(pem.ok());
  return MakeCsr(name, pem.ok() ? *pem : "", "kubernetes.io/kube-apiserver-client",
                 {"digital signature", "client auth"});
}

json MakeCsr(const std::string& name, const std::string& request_pem, const std::string& signer,
             const std::vector<std::string>& usages) {
  return {{"apiVersion", "certificates.k8s.io/v1"},
          {"kind", "CertificateSigningRequest"},
          {"metadata", {{"name", name}}},
          {"spec",
           {{"request", pki::Base64Encode(request_pem)}, {"signerName", signer}, {"usages", usages}}}};
}

json MakeNode(const std::string& name) {
  return {{"apiVersion", "v1"},
          {"kind", "Node"},
          {"metadata", {{"name", name}, {"labels", {{"kubernetes.io/hostname", name}}}}},
          {"spec", json::object()}};
}

json MakeConfigMap(const std::string& name, const json& data) {
  return {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", name}}}, {"data", data}};
}

json OwnerRef(const json& owner, bool controller, bool block_owner_deletion) {
  json reference = {{"apiVersion", owner.value("apiVersion", "")},
                    {"kind", owner.value("kind", "")},
                    {"name", owner["metadata"].value("name", "")},
                    {"uid", owner["metadata"].value("uid", "")}};
  if (controller) reference["controller"] = true;
  if (block_owner_deletion) reference["blockOwnerDeletion"] = true;
  return reference;
}

const json* FindCondition(const json& object, const std::string& type) {
  if (!object.contains("/status/conditions"_json_pointer)) return nullptr;
  for (const json& condition : object.at("/status/conditions"_json_pointer)) {
    if (condition.value("type", "") == type) return &condition;
  }
  return nullptr;
}

std::string ConditionStatus(const json& object, const std::string& type) {
  const json* condition = FindCondition(object, type);
  return condition ? condition->value("status", "") : "";
}

int64_t StatusInt(const json& object, const std::string& field) {
  if (!object.contains("status") || !object["status"].is_object()) return 0;
  const json& value = object["status"].value(field, json());
  return value.is_number() ? value.get<int64_t>() : 0;
}

bool HasDeletionTimestamp(const json& object) {
  return object.contains("/metadata/deletionTimestamp"_json_pointer);
}

}  // namespace mk8s::controllers::test
