// Tests of the credentials folder (create, load, re-issue, modes) and kubeconfig rendering.
#include "pki/cluster_pki.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "pki/encoding.h"
#include "pki/jwt.h"
#include "pki/static_tokens.h"
#include "test_util.h"

namespace mk8s::pki {
namespace {

using testing::ReadAll;
using testing::RunCommand;
using testing::TempDir;

TimePoint Now() { return std::chrono::system_clock::now(); }

mode_t ModeOf(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return st.st_mode & 07777;
}

bool Has(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

TEST(ClusterPkiTest, FirstStartCreatesEverythingWithModes) {
  TempDir tmp;
  const std::string dir = tmp.File("credentials");
  auto pki = ClusterPki::LoadOrCreate(dir, {.dns = {"node1"}, .ips = {"192.168.1.10"}});
  ASSERT_TRUE(pki.ok()) << pki.status().ToString();
  EXPECT_TRUE(pki->created_ca());
  EXPECT_EQ(ModeOf(dir), 0700u);
  for (const char* f :
       {"ca.key", "server.key", "admin.key", "serviceaccount.key", "known_tokens.csv"})
    EXPECT_EQ(ModeOf(dir + "/" + f), 0600u) << f;
  for (const char* f : {"ca.crt", "server.crt", "admin.crt"})
    EXPECT_EQ(ModeOf(dir + "/" + f), 0644u) << f;
  EXPECT_EQ(ReadAll(dir + "/ca.crt"), pki->ca().cert_pem);
  EXPECT_EQ(ReadAll(dir + "/server.key"), pki->server().key_pem);

  auto server = ParseCertificate(pki->server().cert_pem);
  ASSERT_TRUE(server.ok());
  for (const char* dns : {"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
                          "kubernetes.default.svc.cluster.local", "node1"})
    EXPECT_TRUE(Has(server->dns_names, dns)) << dns;
  for (const char* ip : {"127.0.0.1", "10.152.183.1", "192.168.1.10"})
    EXPECT_TRUE(Has(server->ip_addresses, ip)) << ip;
  EXPECT_TRUE(
      VerifyCertificate(pki->server().cert_pem, pki->ca().cert_pem, Now(), Usage::kServer).ok());

  auto admin = AuthenticateClientCert(pki->admin().cert_pem, pki->ca().cert_pem, Now());
  ASSERT_TRUE(admin.ok()) << admin.status().ToString();
  EXPECT_EQ(admin->user, "admin");
  EXPECT_EQ(admin->groups, std::vector<std::string>{"system:masters"});

  // known_tokens.csv: token,user,uid,"groups" with a 32-byte hex token.
  EXPECT_EQ(pki->admin_token().size(), 64u);
  EXPECT_EQ(ReadAll(dir + "/known_tokens.csv"),
            pki->admin_token() + ",admin,admin,\"system:masters\"\n");
  auto tokens = StaticTokens::Load(pki->Path(ClusterPki::kTokenFile));
  ASSERT_TRUE(tokens.ok());
  auto who = tokens->Lookup(pki->admin_token());
  ASSERT_TRUE(who.has_value());
  EXPECT_EQ(who->groups, std::vector<std::string>{"system:masters"});

  // serviceaccount.key signs tokens that its public half verifies.
  auto signer = JwtSigner::Create(pki->service_account_key_pem());
  ASSERT_TRUE(signer.ok()) << signer.status().ToString();
  auto verifier = JwtVerifier::Create({pki->service_account_public_key_pem()});
  ASSERT_TRUE(verifier.ok());
  auto jwt = (*signer)->Sign(MakeServiceAccountClaims("default", "default", "u1", Now()));
  ASSERT_TRUE(jwt.ok());
  EXPECT_TRUE((*verifier)->Verify(*jwt).ok());

  // No temp files are left behind.
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
    ++files;
  }
  EXPECT_EQ(files, 8);
}

TEST(ClusterPkiTest, LoadIsIdempotentAndReissuesOnlyServingCertOnNewSan) {
  TempDir tmp;
  const std::string dir = tmp.File("credentials");
  auto first = ClusterPki::LoadOrCreate(dir, {.dns = {}, .ips = {"192.168.1.10"}});
  ASSERT_TRUE(first.ok()) << first.status().ToString();

  auto second = ClusterPki::LoadOrCreate(dir, {.dns = {}, .ips = {"192.168.1.10"}});
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_FALSE(second->created_ca());
  EXPECT_FALSE(second->reissued_server());
  EXPECT_EQ(second->ca().cert_pem, first->ca().cert_pem);
  EXPECT_EQ(second->ca().key_pem, first->ca().key_pem);
  EXPECT_EQ(second->server().cert_pem, first->server().cert_pem);
  EXPECT_EQ(second->admin().cert_pem, first->admin().cert_pem);
  EXPECT_EQ(second->service_account_key_pem(), first->service_account_key_pem());
  EXPECT_EQ(second->admin_token(), first->admin_token());

  // A new node IP (IPv6 in a non-canonical spelling) needs a new serving cert; nothing else.
  auto third = ClusterPki::LoadOrCreate(dir, {.dns = {}, .ips = {"192.168.1.10", "fd00:0::5"}});
  ASSERT_TRUE(third.ok()) << third.status().ToString();
  EXPECT_TRUE(third->reissued_server());
  EXPECT_NE(third->server().cert_pem, first->server().cert_pem);
  EXPECT_EQ(third->ca().cert_pem, first->ca().cert_pem);
  EXPECT_EQ(third->admin().cert_pem, first->admin().cert_pem);
  EXPECT_EQ(third->admin_token(), first->admin_token());
  EXPECT_EQ(ReadAll(dir + "/server.crt"), third->server().cert_pem);
  auto info = ParseCertificate(third->server().cert_pem);
  ASSERT_TRUE(info.ok());
  EXPECT_TRUE(Has(info->ip_addresses, "fd00::5"));
  EXPECT_TRUE(
      VerifyCertificate(third->server().cert_pem, first->ca().cert_pem, Now(), Usage::kServer)
          .ok());

  auto fourth = ClusterPki::LoadOrCreate(dir, {.dns = {}, .ips = {"fd00::5"}});
  ASSERT_TRUE(fourth.ok());
  EXPECT_FALSE(fourth->reissued_server());  // a subset of the present SANs is fine
}

TEST(ClusterPkiTest, DamagedFilesAreRepairedOrReported) {
  TempDir tmp;
  const std::string dir = tmp.File("credentials");
  auto first = ClusterPki::LoadOrCreate(dir, {});
  ASSERT_TRUE(first.ok());
  // A serving key that no longer matches its cert is replaced.
  auto stray = GenerateEcKeyPem();
  ASSERT_TRUE(stray.ok());
  testing::WriteFile(dir + "/server.key", *stray);
  std::filesystem::remove(dir + "/admin.crt");
  auto second = ClusterPki::LoadOrCreate(dir, {});
  ASSERT_TRUE(second.ok()) << second.status().ToString();
  EXPECT_TRUE(second->reissued_server());
  EXPECT_NE(second->admin().cert_pem, first->admin().cert_pem);
  EXPECT_EQ(second->ca().cert_pem, first->ca().cert_pem);
  // Half a CA is never silently replaced.
  std::filesystem::remove(dir + "/ca.key");
  auto third = ClusterPki::LoadOrCreate(dir, {});
  ASSERT_FALSE(third.ok());
  EXPECT_NE(third.status().message().find("ca.key"), std::string::npos) << third.status().message();
  EXPECT_FALSE(ClusterPki::LoadOrCreate("", {}).ok());
}

// Extracts the value of "<key>: " from the kubeconfig text.
std::string Field(const std::string& yaml, const std::string& key) {
  size_t p = yaml.find(key + ": ");
  if (p == std::string::npos) return {};
  p += key.size() + 2;
  return yaml.substr(p, yaml.find('\n', p) - p);
}

TEST(KubeconfigTest, EmbedsBase64DataAndParsesWithKubectl) {
  TempDir tmp;
  auto pki = ClusterPki::LoadOrCreate(tmp.File("credentials"), {});
  ASSERT_TRUE(pki.ok());
  std::string yaml = Kubeconfig("https://127.0.0.1:16443", pki->ca().cert_pem,
                                pki->admin().cert_pem, pki->admin().key_pem);
  EXPECT_EQ(Base64Decode(Field(yaml, "certificate-authority-data")), pki->ca().cert_pem);
  EXPECT_EQ(Base64Decode(Field(yaml, "client-certificate-data")), pki->admin().cert_pem);
  EXPECT_EQ(Base64Decode(Field(yaml, "client-key-data")), pki->admin().key_pem);
  EXPECT_EQ(Field(yaml, "current-context"), "\"mk8s\"");

  if (!testing::HaveTool("kubectl")) GTEST_SKIP() << "kubectl not installed";
  const std::string path = tmp.File("kubeconfig");
  testing::WriteFile(path, yaml);
  auto r = RunCommand("kubectl config view --raw -o json --kubeconfig " + path);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  auto j = nlohmann::json::parse(r.output, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.output;
  EXPECT_EQ(j["current-context"], "mk8s");
  EXPECT_EQ(j["clusters"][0]["name"], "mk8s-cluster");
  EXPECT_EQ(j["clusters"][0]["cluster"]["server"], "https://127.0.0.1:16443");
  EXPECT_EQ(
      Base64Decode(j["clusters"][0]["cluster"]["certificate-authority-data"].get<std::string>()),
      pki->ca().cert_pem);
  EXPECT_EQ(j["contexts"][0]["name"], "mk8s");
  EXPECT_EQ(j["contexts"][0]["context"]["cluster"], "mk8s-cluster");
  EXPECT_EQ(j["contexts"][0]["context"]["user"], "admin");
  EXPECT_EQ(j["users"][0]["name"], "admin");
  EXPECT_EQ(Base64Decode(j["users"][0]["user"]["client-certificate-data"].get<std::string>()),
            pki->admin().cert_pem);
  EXPECT_EQ(Base64Decode(j["users"][0]["user"]["client-key-data"].get<std::string>()),
            pki->admin().key_pem);

  std::string token_yaml = KubeconfigWithToken("https://10.0.0.1:16443", pki->ca().cert_pem,
                                               pki->admin_token(), "c", "u\"ser", "ctx");
  testing::WriteFile(path, token_yaml);
  r = RunCommand("kubectl config view --raw -o json --kubeconfig " + path);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  j = nlohmann::json::parse(r.output, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.output;
  EXPECT_EQ(j["users"][0]["name"], "u\"ser");
  EXPECT_EQ(j["users"][0]["user"]["token"], pki->admin_token());
  EXPECT_EQ(j["current-context"], "ctx");
  EXPECT_EQ(j["contexts"][0]["context"]["cluster"], "c");
}

}  // namespace
}  // namespace mk8s::pki
