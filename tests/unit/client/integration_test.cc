// The client against a real API server started in this process (store on a temp folder, HTTPS on
// a free port): typed requests and errors, compare-and-swap conflicts, and informers over both
// transports (in-process and HTTPS with the admin kubeconfig the server wrote).
#include <gtest/gtest.h>

#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>

#include "apiserver/api_server.h"
#include "client/client.h"
#include "client/https_transport.h"
#include "client/in_process_transport.h"
#include "client/informer.h"
#include "store/store.h"

namespace mk8s::client {
namespace {

using json = nlohmann::json;
using std::chrono::seconds;

class ServerEnvironment : public ::testing::Environment {
 public:
  static inline ServerEnvironment* instance = nullptr;

  void SetUp() override {
    char pattern[] = "/tmp/mk8s-client-test-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir = pattern;
    store::StoreOptions store_options;
    store_options.path = dir + "/datastore.db";
    auto opened = store::Store::Open(store_options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store = std::move(*opened);
    apiserver::ApiServerOptions options;
    options.bind_address = "127.0.0.1";
    const char* port = std::getenv("MK8S_APISERVER_PORT");
    options.port = port ? static_cast<uint16_t>(std::atoi(port)) : 0;
    options.credentials_dir = dir + "/credentials";
    options.kubeconfig_path = dir + "/client.config";
    options.node_ips = {"127.0.0.1"};
    auto started = apiserver::ApiServer::Start(options, store.get());
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    api = std::move(*started);
    kubeconfig = options.kubeconfig_path;
    instance = this;
  }
  void TearDown() override {
    if (api) api->Stop();
    store.reset();
    api.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir, ignored);
  }

  std::string dir;
  std::string kubeconfig;
  std::unique_ptr<store::Store> store;
  std::unique_ptr<apiserver::ApiServer> api;
};

json ConfigMap(const std::string& name, const std::string& value) {
  return {{"apiVersion", "v1"},
          {"kind", "ConfigMap"},
          {"metadata", {{"name", name}, {"namespace", "default"}, {"labels", {{"suite", "client"}}}}},
          {"data", {{"value", value}}}};
}

enum class Kind { kInProcess, kHttps };

class ClientIntegrationTest : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    ServerEnvironment* env = ServerEnvironment::instance;
    ASSERT_NE(env, nullptr);
    if (GetParam() == Kind::kInProcess) {
      transport_ = InProcessTransport::Create(
          env->api->InProcessHandler("system:kube-controller-manager", {"system:authenticated"}),
          "system:kube-controller-manager");
    } else {
      auto config = LoadKubeconfig(env->kubeconfig);
      ASSERT_TRUE(config.ok()) << config.status().ToString();
      auto https = HttpsTransport::Create(*config);
      ASSERT_TRUE(https.ok()) << https.status().ToString();
      transport_ = *https;
    }
    client_ = std::make_shared<Client>(transport_);
    prefix_ = GetParam() == Kind::kInProcess ? "inproc-" : "https-";
  }

  std::shared_ptr<Transport> transport_;
  std::shared_ptr<Client> client_;
  std::string prefix_;
};

TEST_P(ClientIntegrationTest, TypedRequestsAndErrors) {
  const std::string name = prefix_ + "typed";
  auto created = client_->Create(kConfigMaps, "default", ConfigMap(name, "1"));
  ASSERT_TRUE(created.ok()) << created.error().ToString();
  EXPECT_EQ((*created)["data"]["value"], "1");
  const std::string rv1 = (*created)["metadata"]["resourceVersion"];

  auto again = client_->Create(kConfigMaps, "default", ConfigMap(name, "1"));
  ASSERT_FALSE(again.ok());
  EXPECT_TRUE(IsAlreadyExists(again.error())) << again.error().ToString();
  EXPECT_EQ(again.error().code, 409);

  auto missing = client_->Get(kConfigMaps, "default", prefix_ + "missing");
  ASSERT_FALSE(missing.ok());
  EXPECT_TRUE(IsNotFound(missing.error())) << missing.error().ToString();
  EXPECT_EQ(missing.status().code(), Code::kNotFound);

  // Compare-and-swap: the first update wins, the second (same old resourceVersion) conflicts.
  json update = *created;
  update["data"]["value"] = "2";
  auto updated = client_->Update(kConfigMaps, update);
  ASSERT_TRUE(updated.ok()) << updated.error().ToString();
  EXPECT_NE((*updated)["metadata"]["resourceVersion"], rv1);
  update["data"]["value"] = "3";
  auto stale = client_->Update(kConfigMaps, update);
  ASSERT_FALSE(stale.ok());
  EXPECT_TRUE(IsConflict(stale.error())) << stale.error().ToString();

  auto patched = client_->Patch(kConfigMaps, "default", name, PatchType::kMerge,
                                json{{"data", {{"extra", "x"}}}});
  ASSERT_TRUE(patched.ok()) << patched.error().ToString();
  EXPECT_EQ((*patched)["data"]["value"], "2");
  EXPECT_EQ((*patched)["data"]["extra"], "x");
  auto json_patched = client_->Patch(
      kConfigMaps, "default", name, PatchType::kJson,
      json::array({{{"op", "replace"}, {"path", "/data/value"}, {"value", "4"}}}));
  ASSERT_TRUE(json_patched.ok()) << json_patched.error().ToString();
  EXPECT_EQ((*json_patched)["data"]["value"], "4");

  auto got = client_->Get(kConfigMaps, "default", name);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ((*got)["data"]["value"], "4");

  ListOptions options;
  options.label_selector = "suite=client";
  auto list = client_->List(kConfigMaps, "default", options);
  ASSERT_TRUE(list.ok()) << list.error().ToString();
  EXPECT_FALSE(list->resource_version.empty());
  bool found = false;
  for (const ObjectPtr& item : list->items) found |= (*item)["metadata"]["name"] == name;
  EXPECT_TRUE(found);

  DeleteOptions wrong;
  wrong.precondition_resource_version = rv1;
  auto refused = client_->Delete(kConfigMaps, "default", name, wrong);
  ASSERT_FALSE(refused.ok());
  EXPECT_TRUE(IsConflict(refused.error())) << refused.error().ToString();
  auto deleted = client_->Delete(kConfigMaps, "default", name);
  ASSERT_TRUE(deleted.ok()) << deleted.error().ToString();
  auto after = client_->Get(kConfigMaps, "default", name);
  EXPECT_TRUE(!after.ok() && IsNotFound(after.error()));
  auto twice = client_->Delete(kConfigMaps, "default", name);
  EXPECT_TRUE(!twice.ok() && IsNotFound(twice.error()));
}

// Waits (with a deadline) until `predicate` holds for the informer.
template <typename Predicate>
bool Eventually(Predicate predicate) {
  const auto deadline = std::chrono::steady_clock::now() + seconds(20);
  while (std::chrono::steady_clock::now() < deadline) {
    if (predicate()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return predicate();
}

TEST_P(ClientIntegrationTest, InformerSyncsAndFollows) {
  const std::string existing = prefix_ + "existing";
  ASSERT_TRUE(client_->Create(kConfigMaps, "default", ConfigMap(existing, "a")).ok());

  InformerOptions options;
  options.namespace_ = "default";
  options.label_selector = "suite=client";
  options.page_size = 1;  // exercises paging
  ASSERT_TRUE(client_->Create(kConfigMaps, "default", ConfigMap(prefix_ + "second", "b")).ok());
  Informer informer(client_, kConfigMaps, options);
  std::mutex mu;
  std::vector<std::string> events;
  informer.AddEventHandler(EventHandlers{
      [&](const ObjectPtr& o) {
        std::lock_guard lock(mu);
        events.push_back("add " + (*o)["metadata"]["name"].get<std::string>());
      },
      [&](const ObjectPtr&, const ObjectPtr& n) {
        std::lock_guard lock(mu);
        events.push_back("update " + (*n)["metadata"]["name"].get<std::string>() + "=" +
                         (*n)["data"]["value"].get<std::string>());
      },
      [&](const ObjectPtr& o) {
        std::lock_guard lock(mu);
        events.push_back("delete " + (*o)["metadata"]["name"].get<std::string>());
      }});
  auto seen = [&](const std::string& event) {
    std::lock_guard lock(mu);
    return std::find(events.begin(), events.end(), event) != events.end();
  };
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(seconds(20)));
  EXPECT_NE(informer.Get("default/" + existing), nullptr);
  EXPECT_TRUE(seen("add " + existing));
  EXPECT_TRUE(seen("add " + prefix_ + "second"));

  const std::string fresh = prefix_ + "fresh";
  auto created = client_->Create(kConfigMaps, "default", ConfigMap(fresh, "1"));
  ASSERT_TRUE(created.ok());
  EXPECT_TRUE(Eventually([&] { return seen("add " + fresh); }));
  json update = *created;
  update["data"]["value"] = "2";
  ASSERT_TRUE(client_->Update(kConfigMaps, update).ok());
  EXPECT_TRUE(Eventually([&] { return seen("update " + fresh + "=2"); }));
  auto cached = informer.Get("default", fresh);
  ASSERT_NE(cached, nullptr);
  EXPECT_EQ((*cached)["data"]["value"], "2");
  ASSERT_TRUE(client_->Delete(kConfigMaps, "default", fresh).ok());
  EXPECT_TRUE(Eventually([&] { return seen("delete " + fresh); }));
  EXPECT_EQ(informer.Get("default", fresh), nullptr);
  informer.Stop();

  ASSERT_TRUE(client_->Delete(kConfigMaps, "default", existing).ok());
  ASSERT_TRUE(client_->Delete(kConfigMaps, "default", prefix_ + "second").ok());
}

// A namespace is usable the moment its create returns, even before the watch cache has seen it.
TEST_P(ClientIntegrationTest, ObjectsCanBeCreatedInANamespaceRightAfterIt) {
  for (int i = 0; i < 30; ++i) {
    const std::string ns = prefix_ + "fresh-ns-" + std::to_string(i);
    json namespace_object = {{"apiVersion", "v1"}, {"kind", "Namespace"},
                             {"metadata", {{"name", ns}}}};
    ASSERT_TRUE(client_->Create(kNamespaces, "", namespace_object).ok());
    json config_map = ConfigMap("first", "1");
    config_map["metadata"]["namespace"] = ns;
    auto created = client_->Create(kConfigMaps, ns, config_map);
    ASSERT_TRUE(created.ok()) << "in namespace " << ns << ": " << created.error().ToString();
  }
}

TEST_P(ClientIntegrationTest, CancelEndsAWatch) {
  std::mutex mu;
  std::condition_variable cv;
  bool ended = false;
  StreamCallbacks callbacks;
  callbacks.on_line = [](std::string) {};
  callbacks.on_end = [&](Response) {
    std::lock_guard lock(mu);
    ended = true;
    cv.notify_all();
  };
  auto handle = client_->Watch(kConfigMaps, "default", ListOptions{}, std::move(callbacks));
  handle->Cancel();
  std::unique_lock lock(mu);
  EXPECT_TRUE(cv.wait_for(lock, seconds(20), [&] { return ended; }));
}

// The in-process object path: informers of two components (two identities, two transports) hold
// the API server's own watch-cache objects, the same pointer for the same object version, from
// the initial list and from the watch. Selectors still filter on the server: an object that
// stops matching is a delete, one that starts matching an add, in order.
TEST(InProcessObjectPathTest, InformersShareTheWatchCachesObjects) {
  ServerEnvironment* env = ServerEnvironment::instance;
  ASSERT_NE(env, nullptr);
  auto make_client = [&](const std::string& user) {
    return std::make_shared<Client>(InProcessTransport::Create(
        env->api->InProcessHandler(user, {"system:authenticated"}), user));
  };
  auto scheduler = make_client("system:kube-scheduler");
  auto controllers = make_client("system:kube-controller-manager");
  json listed = ConfigMap("shared-listed", "1");
  listed["metadata"]["labels"]["share"] = "yes";
  ASSERT_TRUE(scheduler->Create(kConfigMaps, "default", listed).ok());

  InformerOptions selected;
  selected.namespace_ = "default";
  selected.label_selector = "share=yes";
  Informer filtered(scheduler, kConfigMaps, selected);
  InformerOptions everything;
  everything.namespace_ = "default";
  everything.page_size = 1;  // continue pages are shared objects too
  Informer all(controllers, kConfigMaps, everything);
  std::mutex mu;
  std::vector<std::string> events;  // of `filtered`
  filtered.AddEventHandler(EventHandlers{
      [&](const ObjectPtr& o) {
        std::lock_guard lock(mu);
        events.push_back("add " + (*o)["metadata"]["name"].get<std::string>());
      },
      [&](const ObjectPtr&, const ObjectPtr& n) {
        std::lock_guard lock(mu);
        events.push_back("update " + (*n)["metadata"]["name"].get<std::string>());
      },
      [&](const ObjectPtr& o) {
        std::lock_guard lock(mu);
        events.push_back("delete " + (*o)["metadata"]["name"].get<std::string>());
      }});
  filtered.Start();
  all.Start();
  ASSERT_TRUE(filtered.WaitForSync(seconds(20)));
  ASSERT_TRUE(all.WaitForSync(seconds(20)));
  ASSERT_NE(filtered.Get("default/shared-listed"), nullptr);
  EXPECT_EQ(filtered.Get("default/shared-listed").get(), all.Get("default/shared-listed").get())
      << "the listed object is a copy, not the watch cache's";

  json watched = ConfigMap("shared-watched", "1");
  watched["metadata"]["labels"]["share"] = "yes";
  auto created = controllers->Create(kConfigMaps, "default", watched);
  ASSERT_TRUE(created.ok()) << created.error().ToString();
  ASSERT_TRUE(Eventually([&] {
    return filtered.Get("default/shared-watched") && all.Get("default/shared-watched");
  }));
  EXPECT_EQ(filtered.Get("default/shared-watched").get(), all.Get("default/shared-watched").get())
      << "the watched object is a copy, not the watch cache's";

  // Leaves the selector: a delete for `filtered`, an update for `all`.
  json moved = *created;
  moved["metadata"]["labels"]["share"] = "no";
  auto updated = controllers->Update(kConfigMaps, moved);
  ASSERT_TRUE(updated.ok()) << updated.error().ToString();
  const std::string rv = (*updated)["metadata"]["resourceVersion"];
  ASSERT_TRUE(Eventually([&] {
    auto object = all.Get("default/shared-watched");
    return object && (*object)["metadata"]["resourceVersion"] == rv;
  }));
  EXPECT_TRUE(Eventually([&] { return filtered.Get("default/shared-watched") == nullptr; }));
  // Comes back: an add again.
  json back = *updated;
  back["metadata"]["labels"]["share"] = "yes";
  ASSERT_TRUE(controllers->Update(kConfigMaps, back).ok());
  EXPECT_TRUE(Eventually([&] { return filtered.Get("default/shared-watched") != nullptr; }));
  ASSERT_TRUE(controllers->Delete(kConfigMaps, "default", "shared-watched").ok());
  EXPECT_TRUE(Eventually([&] {
    return filtered.Get("default/shared-watched") == nullptr &&
           all.Get("default/shared-watched") == nullptr;
  }));
  {
    std::lock_guard lock(mu);
    EXPECT_EQ(events, (std::vector<std::string>{"add shared-listed", "add shared-watched",
                                                "delete shared-watched", "add shared-watched",
                                                "delete shared-watched"}));
  }
  filtered.Stop();
  all.Stop();
  ASSERT_TRUE(scheduler->Delete(kConfigMaps, "default", "shared-listed").ok());
}

// A raw in-process watch that offers on_object gets objects for events and lines for the rest;
// one that does not gets lines only (the byte path is unchanged).
TEST(InProcessObjectPathTest, RawWatchesGetObjectsOnlyWhenTheyAskForThem) {
  ServerEnvironment* env = ServerEnvironment::instance;
  ASSERT_NE(env, nullptr);
  auto client = std::make_shared<Client>(InProcessTransport::Create(
      env->api->InProcessHandler("system:kube-proxy", {"system:authenticated"}), "proxy"));
  struct Seen {
    std::mutex mu;
    std::vector<std::string> lines;
    std::vector<std::string> objects;  // "TYPE name"
  };
  auto start = [&](Seen* seen, bool objects, const std::string& rv) {
    StreamCallbacks callbacks;
    callbacks.on_line = [seen](std::string line) {
      std::lock_guard lock(seen->mu);
      seen->lines.push_back(std::move(line));
    };
    if (objects) {
      callbacks.on_object = [seen](std::string_view type, ObjectPtr object) {
        std::lock_guard lock(seen->mu);
        seen->objects.push_back(std::string(type) + " " +
                                (*object)["metadata"]["name"].get<std::string>());
      };
    }
    ListOptions options;
    options.resource_version = rv;
    options.field_selector = "metadata.name=raw-watched";
    return client->Watch(kConfigMaps, "default", options, std::move(callbacks));
  };
  auto list = client->List(kConfigMaps, "default");
  ASSERT_TRUE(list.ok());
  Seen with_objects, with_lines;
  auto a = start(&with_objects, true, list->resource_version);
  auto b = start(&with_lines, false, list->resource_version);
  ASSERT_TRUE(client->Create(kConfigMaps, "default", ConfigMap("raw-watched", "1")).ok());
  ASSERT_TRUE(client->Create(kConfigMaps, "default", ConfigMap("raw-other", "1")).ok());
  ASSERT_TRUE(client->Delete(kConfigMaps, "default", "raw-watched").ok());
  EXPECT_TRUE(Eventually([&] {
    std::scoped_lock lock(with_objects.mu, with_lines.mu);
    return with_objects.objects.size() >= 2 && with_lines.lines.size() >= 2;
  }));
  {
    std::scoped_lock lock(with_objects.mu, with_lines.mu);
    EXPECT_EQ(with_objects.objects,
              (std::vector<std::string>{"ADDED raw-watched", "DELETED raw-watched"}));
    EXPECT_TRUE(with_objects.lines.empty());
    ASSERT_EQ(with_lines.lines.size(), 2u);
    EXPECT_EQ(json::parse(with_lines.lines[0])["type"], "ADDED");
    EXPECT_EQ(json::parse(with_lines.lines[1])["type"], "DELETED");
  }
  a->Cancel();
  b->Cancel();
  ASSERT_TRUE(client->Delete(kConfigMaps, "default", "raw-other").ok());
}

// The real 410 path: an informer whose resourceVersion fell out of the server's watch history
// (here kept to 20 events) gets 410 Gone when its watch resumes, re-lists, and carries on.
TEST(InformerGoneTest, ResumingPastTheServersHistoryReListsAndCarriesOn) {
  char pattern[] = "/tmp/mk8s-client-gone-XXXXXX";
  ASSERT_NE(mkdtemp(pattern), nullptr);
  const std::string dir = pattern;
  store::StoreOptions store_options;
  store_options.path = dir + "/datastore.db";
  auto store = store::Store::Open(store_options);
  ASSERT_TRUE(store.ok()) << store.status().ToString();
  apiserver::ApiServerOptions options;
  options.bind_address = "127.0.0.1";
  options.port = 0;
  options.credentials_dir = dir + "/credentials";
  options.kubeconfig_path = dir + "/client.config";
  options.node_ips = {"127.0.0.1"};
  options.watch_history_capacity = 20;
  options.watch_history_min_events = 20;
  auto api = apiserver::ApiServer::Start(options, store->get());
  ASSERT_TRUE(api.ok()) << api.status().ToString();
  {
    auto transport = InProcessTransport::Create(
        (*api)->InProcessHandler("system:kube-controller-manager", {"system:authenticated"}),
        "system:kube-controller-manager");
    auto client = std::make_shared<Client>(transport);
    json kept = ConfigMap("kept", "1");
    kept["metadata"]["labels"] = {{"watched", "yes"}};
    ASSERT_TRUE(client->Create(kConfigMaps, "default", kept).ok());

    InformerOptions informer_options;
    informer_options.label_selector = "watched=yes";
    informer_options.min_watch_timeout_seconds = 1;  // the watch ends and resumes within 2 s
    Informer informer(client, kConfigMaps, informer_options);
    informer.Start();
    ASSERT_TRUE(informer.WaitForSync(seconds(20)));
    EXPECT_EQ(informer.list_count(), 1u);
    // 50 writes the informer does not watch push its resourceVersion out of the history.
    for (int i = 0; i < 50; ++i) {
      ASSERT_TRUE(client->Create(kConfigMaps, "default", ConfigMap("noise-" + std::to_string(i), "x")).ok());
    }
    EXPECT_TRUE(Eventually([&] { return informer.list_count() >= 2; }))
        << "the informer never re-listed after its resourceVersion expired";
    EXPECT_NE(informer.Get("default/kept"), nullptr);
    json late = ConfigMap("late", "1");
    late["metadata"]["labels"] = {{"watched", "yes"}};
    ASSERT_TRUE(client->Create(kConfigMaps, "default", late).ok());
    EXPECT_TRUE(Eventually([&] { return informer.Get("default/late") != nullptr; }));
    informer.Stop();
  }
  (*api)->Stop();
  store->reset();
  api->reset();
  std::error_code ignored;
  std::filesystem::remove_all(dir, ignored);
}

INSTANTIATE_TEST_SUITE_P(Transports, ClientIntegrationTest,
                         ::testing::Values(Kind::kInProcess, Kind::kHttps),
                         [](const auto& info) {
                           return info.param == Kind::kInProcess ? "InProcess" : "Https";
                         });

}  // namespace
}  // namespace mk8s::client

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new mk8s::client::ServerEnvironment());
  return RUN_ALL_TESTS();
}
