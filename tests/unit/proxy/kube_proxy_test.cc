// KubeProxy's sync loop against a real in-process API server, with fake iptables tools
// (fake_iptables.cc) that record each transaction instead of touching the kernel.
#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <optional>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "apiserver/api_server.h"
#include "client/client.h"
#include "client/in_process_transport.h"
#include "fixtures.h"
#include "proxy/kube_proxy.h"
#include "store/store.h"

namespace mk8s::proxy {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using namespace testing;  // NOLINT

class KubeProxyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::getenv("MK8S_TEST_VERBOSE") == nullptr) spdlog::set_level(spdlog::level::warn);
    char pattern[] = "/tmp/mk8s-proxytest-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    dir_ = pattern;
    fake_dir_ = dir_ + "/iptables";
    fs::create_directories(fake_dir_);
    for (const char* tool : {"iptables", "iptables-restore", "iptables-save"}) {
      fs::create_symlink(MK8S_FAKE_IPTABLES, fake_dir_ + "/" + tool);
    }
    setenv("FAKE_IPTABLES_DIR", fake_dir_.c_str(), 1);

    store::StoreOptions store_options;
    store_options.path = dir_ + "/datastore.db";
    auto opened = store::Store::Open(store_options);
    ASSERT_TRUE(opened.ok()) << opened.status().ToString();
    store_ = std::move(*opened);
    apiserver::ApiServerOptions options;
    options.bind_address = "127.0.0.1";
    options.port = 0;
    options.credentials_dir = dir_ + "/credentials";
    options.kubeconfig_path = dir_ + "/client.config";
    options.node_ips = {"10.0.0.5"};
    auto started = apiserver::ApiServer::Start(options, store_.get());
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    server_ = std::move(*started);
    api_ = std::make_shared<client::Client>(client::InProcessTransport::Create(
        server_->InProcessHandler("system:admin", {"system:masters", "system:authenticated"}),
        "system:admin"));
    proxy_client_ = std::make_shared<client::Client>(client::InProcessTransport::Create(
        server_->InProcessHandler("system:kube-proxy", {"system:authenticated"}),
        "system:kube-proxy"));
  }

  void TearDown() override {
    if (proxy_) proxy_->Stop();
    proxy_.reset();
    proxy_client_.reset();
    api_.reset();
    if (server_) server_->Stop();
    server_.reset();
    store_.reset();
    std::error_code ignored;
    fs::remove_all(dir_, ignored);
  }

  ProxyOptions Options() {
    ProxyOptions options;
    options.node_name = "node-a";
    options.rules.chain_prefix = "T9";
    options.iptables.iptables = fake_dir_ + "/iptables";
    options.iptables.iptables_restore = fake_dir_ + "/iptables-restore";
    options.iptables.iptables_save = fake_dir_ + "/iptables-save";
    options.min_sync_interval = 20ms;
    options.retry_interval = 50ms;
    return options;
  }

  void StartProxy(ProxyOptions options) {
    auto started = KubeProxy::Start(std::move(options), proxy_client_);
    ASSERT_TRUE(started.ok()) << started.status().ToString();
    proxy_ = std::move(*started);
  }

  int Restores() const {
    int n = 0;
    while (fs::exists(fake_dir_ + "/restore-" + std::to_string(n + 1))) ++n;
    return n;
  }
  std::string Read(const std::string& name) const {
    std::ifstream in(fake_dir_ + "/" + name);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  std::string LastRestore() const {
    const int n = Restores();
    return n == 0 ? "" : Read("restore-" + std::to_string(n));
  }
  void Write(const std::string& name, const std::string& text) const {
    std::ofstream(fake_dir_ + "/" + name) << text;
  }

  // Polls until `predicate` holds (real time; no blind sleeps).
  template <typename F>
  ::testing::AssertionResult WaitFor(F predicate, const std::string& what,
                                     std::chrono::milliseconds timeout = 20s) {
    const auto end = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < end) {
      if (predicate()) return ::testing::AssertionSuccess();
      std::this_thread::sleep_for(10ms);  // poll interval
    }
    return ::testing::AssertionFailure() << "timed out waiting for " << what;
  }

  void Create(const client::ResourceRef& ref, const json& object) {
    auto created = api_->Create(ref, "default", object);
    ASSERT_TRUE(created.ok()) << created.error().ToString();
  }

  std::string dir_, fake_dir_;
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<apiserver::ApiServer> server_;
  std::shared_ptr<client::Client> api_, proxy_client_;
  std::unique_ptr<KubeProxy> proxy_;
};

TEST_F(KubeProxyTest, FirstSyncEnsuresJumpsServesKubernetesAndDeletesStaleChains) {
  Write("save-nat",
        "*nat\n:PREROUTING ACCEPT [0:0]\n:T9-SVC-STALESTALEST - [0:0]\n"
        ":KUBE-SERVICES - [0:0]\nCOMMIT\n");
  StartProxy(Options());
  ASSERT_TRUE(WaitFor([&] { return Restores() >= 1; }, "the first restore"));
  const std::string first = Read("restore-1");
  // default/kubernetes -> the API server's address and port, like any other service.
  EXPECT_NE(first.find("-d 10.152.183.1/32 -p tcp -m tcp --dport 443"), std::string::npos) << first;
  EXPECT_NE(first.find("DNAT --to-destination 10.0.0.5:" + std::to_string(server_->port())),
            std::string::npos);
  EXPECT_NE(first.find("-X T9-SVC-STALESTALEST"), std::string::npos);
  EXPECT_EQ(first.find("KUBE-SERVICES"), std::string::npos);
  std::istringstream jumps(Read("jumps"));
  int count = 0;
  for (std::string line; std::getline(jumps, line);) ++count;
  EXPECT_EQ(count, 8);
  // The stats follow the restore (the fake tool has written it before the proxy counts it).
  EXPECT_TRUE(WaitFor([&] { return proxy_->stats().syncs >= 1; }, "the sync counted"));
  EXPECT_GE(proxy_->stats().service_ports, 1u);
}

TEST_F(KubeProxyTest, ChangesReachTheRulesAndRemovedEndpointsLeave) {
  StartProxy(Options());
  ASSERT_TRUE(WaitFor([&] { return Restores() >= 1; }, "the first restore"));
  Create(client::kServices, *Service("web", "10.152.183.77", {Port(80, 8080, "http")}));
  ASSERT_TRUE(WaitFor(
      [&] { return LastRestore().find("default/web:http has no endpoints") != std::string::npos; },
      "a REJECT for web"));
  Create(client::kEndpointSlices,
         *Slice("web", {Ep("10.1.0.2"), Ep("10.1.0.3")}, {SlicePort(8080, "http")}));
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::string last = LastRestore();
        return last.find("--to-destination 10.1.0.2:8080") != std::string::npos &&
               last.find("--to-destination 10.1.0.3:8080") != std::string::npos;
      },
      "DNAT to both endpoints"));
  EXPECT_EQ(LastRestore().find("web:http has no endpoints"), std::string::npos);

  auto replaced = api_->Patch(client::kEndpointSlices, "default", "web-abc",
                              client::PatchType::kMerge, json{{"endpoints", {Ep("10.1.0.3")}}});
  ASSERT_TRUE(replaced.ok()) << replaced.error().ToString();
  ASSERT_TRUE(WaitFor([&] { return LastRestore().find("10.1.0.2") == std::string::npos; },
                      "10.1.0.2 leaving the rules"));
  const std::string last = LastRestore();
  EXPECT_NE(last.find("--to-destination 10.1.0.3:8080"), std::string::npos);
  EXPECT_NE(last.find("-X T9-SEP-"), std::string::npos)
      << "the removed endpoint's chain is deleted";
}

TEST_F(KubeProxyTest, FailedSyncIsRetriedAndReported) {
  Write("fail", "");
  // What a health registry would show (on_sync runs on the sync thread).
  std::mutex mu;
  std::optional<std::pair<bool, std::string>> reported;
  ProxyOptions options = Options();
  options.on_sync = [&](bool ok, const std::string& message) {
    std::lock_guard lock(mu);
    reported.emplace(ok, message);
  };
  auto last_report = [&] {
    std::lock_guard lock(mu);
    return reported;
  };
  StartProxy(options);
  ASSERT_TRUE(WaitFor([&] { return proxy_->stats().failures >= 2; }, "failed syncs"));
  EXPECT_NE(proxy_->stats().last_error.find("iptables-restore failed"), std::string::npos);
  EXPECT_EQ(Restores(), 0);
  ASSERT_TRUE(WaitFor([&] { return last_report().has_value(); }, "a report"));
  EXPECT_FALSE(last_report()->first);
  EXPECT_NE(last_report()->second.find("iptables-restore failed"), std::string::npos);
  fs::remove(fake_dir_ + "/fail");
  ASSERT_TRUE(WaitFor([&] { return Restores() >= 1; }, "a restore after the failure"));
  EXPECT_NE(Read("restore-1").find("10.152.183.1/32"), std::string::npos);
  ASSERT_TRUE(WaitFor([&] { return last_report() && last_report()->first; }, "a good report"));
  EXPECT_NE(last_report()->second.find("chains T9-*"), std::string::npos) << last_report()->second;
  proxy_->Stop();  // before `reported` goes out of scope
}

TEST_F(KubeProxyTest, StopKeepsRulesCleanUpRemovesThem) {
  StartProxy(Options());
  ASSERT_TRUE(WaitFor([&] { return Restores() >= 1; }, "the first restore"));
  proxy_->Stop();
  const int restores = Restores();
  EXPECT_FALSE(Read("jumps").empty());
  Write("save-nat",
        "*nat\n:OUTPUT ACCEPT [0:0]\n:T9-SERVICES - [0:0]\n:T9-SVC-X - [0:0]\n"
        ":T90-SERVICES - [0:0]\nCOMMIT\n");
  ProxyOptions options = Options();
  ASSERT_TRUE(CleanUp(options.rules, options.iptables).ok());
  EXPECT_TRUE(Read("jumps").empty());
  ASSERT_EQ(Restores(), restores + 1);
  const std::string cleanup = LastRestore();
  EXPECT_NE(cleanup.find("-X T9-SERVICES"), std::string::npos);
  EXPECT_NE(cleanup.find("-X T9-SVC-X"), std::string::npos);
  EXPECT_EQ(cleanup.find("T90-"), std::string::npos);
}

TEST_F(KubeProxyTest, BadOptionsAreRefused) {
  ProxyOptions options = Options();
  options.rules.chain_prefix = "WAY-TOO-LONG-PREFIX";
  auto started = KubeProxy::Start(options, proxy_client_);
  ASSERT_FALSE(started.ok());
  EXPECT_NE(started.status().message().find("1 to 10 characters"), std::string::npos);
  options = Options();
  options.iptables.iptables_restore = "/nonexistent/iptables-restore";
  started = KubeProxy::Start(options, proxy_client_);
  ASSERT_FALSE(started.ok());
  EXPECT_NE(started.status().message().find("iptables-restore"), std::string::npos);
}

}  // namespace
}  // namespace mk8s::proxy
