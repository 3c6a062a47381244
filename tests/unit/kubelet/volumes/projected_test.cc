// projected volumes (service account token, kube-root-ca.crt, secret, downwardAPI) and
// downwardAPI volumes.
#include "pki/encoding.h"
#include "volumes_fixture.h"

namespace mk8s::kubelet::test {
namespace {

constexpr const char* kProjectedPlugin = "kubernetes.io~projected";
constexpr const char* kDownwardPlugin = "kubernetes.io~downward-api";

json JwtClaims(const std::string& token) {
  const size_t first = token.find('.');
  const size_t second = token.find('.', first + 1);
  if (first == std::string::npos || second == std::string::npos) return json();
  auto payload = pki::Base64UrlDecode(token.substr(first + 1, second - first - 1));
  if (!payload) return json();
  return json::parse(*payload, nullptr, false);
}

// The volume kube-api-access-* that upstream's ServiceAccount admission injects.
json ApiAccessVolume(const std::string& audience) {
  json token = {{"expirationSeconds", 3607}, {"path", "token"}};
  if (!audience.empty()) token["audience"] = audience;
  return {{"name", "kube-api-access"},
          {"projected",
           {{"defaultMode", 0644},
            {"sources",
             json::array(
                 {{{"serviceAccountToken", token}},
                  {{"configMap",
                    {{"name", "kube-root-ca.crt"},
                     {"items", json::array({{{"key", "ca.crt"}, {"path", "ca.crt"}}})}}}},
                  {{"downwardAPI",
                    {{"items", json::array({{{"path", "namespace"},
                                             {"fieldRef",
                                              {{"apiVersion", "v1"},
                                               {"fieldPath", "metadata.namespace"}}}}})}}}}})}}}};
}

class ProjectedTest : public VolumesTest {
 protected:
  void SetUp() override {
    VolumesTest::SetUp();
    if (HasFatalFailure()) return;
    Create(client::kServiceAccounts,
           {{"apiVersion", "v1"}, {"kind", "ServiceAccount"}, {"metadata", {{"name", "builder"}}}});
    manager().SetClockForTest([this] { return now_; });
  }
  std::chrono::system_clock::time_point now_ = std::chrono::system_clock::now();
};

TEST_F(ProjectedTest, ServiceAccountTokenRootCaAndNamespace) {
  StartController("root-ca-publisher");
  ASSERT_TRUE(WaitFor([&] { return Get(client::kConfigMaps, "kube-root-ca.crt").has_value(); },
                      "kube-root-ca.crt in the namespace"));
  json pod = MakeVolumePod("p", json::array({ApiAccessVolume("vault")}));
  pod["spec"]["serviceAccountName"] = "builder";
  Status status = manager().SetUpPod(pod);
  ASSERT_TRUE(status.ok()) << status.ToString();
  const std::string dir = VolumeDir(pod, kProjectedPlugin, "kube-api-access");
  EXPECT_EQ(Read(dir + "/ca.crt"), cluster_ca_pem());
  EXPECT_EQ(Read(dir + "/namespace"), ns());
  EXPECT_EQ(Mode(dir + "/token"), 0644);

  const std::string token = Read(dir + "/token");
  const json claims = JwtClaims(token);
  ASSERT_TRUE(claims.is_object()) << token;
  EXPECT_EQ(claims.value("sub", ""), "system:serviceaccount:" + ns() + ":builder");
  EXPECT_EQ(claims["aud"], json::array({"vault"}));
  EXPECT_EQ(claims.value("/kubernetes.io/serviceaccount/name"_json_pointer, std::string()),
            "builder");
  EXPECT_EQ(claims.value("/kubernetes.io/pod/name"_json_pointer, std::string()), "p");
  EXPECT_EQ(claims.value("/kubernetes.io/pod/uid"_json_pointer, std::string()), Uid(pod));
  EXPECT_EQ(claims.value("exp", int64_t{0}) - claims.value("iat", int64_t{0}), 3607);
}

TEST_F(ProjectedTest, TokenRefreshedAt80PercentOfItsLifetime) {
  Create(client::kConfigMaps,
         controllers::test::MakeConfigMap("kube-root-ca.crt", {{"ca.crt", "CA"}}));
  json pod = MakeVolumePod("p", json::array({ApiAccessVolume("")}));
  pod["spec"]["serviceAccountName"] = "builder";
  ASSERT_TRUE(manager().SetUpPod(pod).ok());
  const std::string path = VolumeDir(pod, kProjectedPlugin, "kube-api-access") + "/token";
  const std::string first = Read(path);
  // The API server's default audience when none is asked for.
  EXPECT_EQ(JwtClaims(first)["aud"], json::array({"https://kubernetes.default.svc.cluster.local"}));

  now_ += std::chrono::minutes(40);  // 66% of 3607 s: kept
  ASSERT_TRUE(manager().SetUpPod(pod).ok());
  EXPECT_EQ(Read(path), first);
  now_ += std::chrono::minutes(9);  // 81%: refreshed
  ASSERT_TRUE(manager().SetUpPod(pod).ok());
  const std::string second = Read(path);
  EXPECT_NE(second, first);
  EXPECT_EQ(JwtClaims(second).value("sub", ""), "system:serviceaccount:" + ns() + ":builder");

  // TearDownPod forgets the pod's tokens: a new setup asks for a fresh one.
  ASSERT_TRUE(manager().TearDownPod(Uid(pod)).ok());
  ASSERT_TRUE(manager().SetUpPod(pod).ok());
  EXPECT_NE(Read(path), second);
}

TEST_F(ProjectedTest, MissingServiceAccountAndShortExpiration) {
  json pod = MakeVolumePod("p", json::array({ApiAccessVolume("")}));
  pod["spec"]["serviceAccountName"] = "ghost";
  Create(client::kConfigMaps,
         controllers::test::MakeConfigMap("kube-root-ca.crt", {{"ca.crt", "CA"}}));
  Status status = manager().SetUpPod(pod);
  EXPECT_EQ(status.code(), Code::kNotFound);
  EXPECT_EQ(status.message(),
            "volume \"kube-api-access\": serviceaccount \"" + ns() + "/ghost\" not found");

  json short_lived = ApiAccessVolume("");
  short_lived["projected"]["sources"][0]["serviceAccountToken"]["expirationSeconds"] = 60;
  status = manager().SetUpPod(MakeVolumePod("q", json::array({short_lived})));
  EXPECT_EQ(status.code(), Code::kInvalidArgument);
}

TEST_F(ProjectedTest, ProjectedSecretAndMissingSources) {
  Create(client::kSecrets, {{"apiVersion", "v1"},
                            {"kind", "Secret"},
                            {"metadata", {{"name", "tls"}}},
                            {"data", {{"tls.key", pki::Base64Encode("KEY")}}}});
  json volume = {
      {"name", "bundle"},
      {"projected",
       {{"defaultMode", 0440},
        {"sources", json::array({{{"secret", {{"name", "tls"}}}},
                                 {{"configMap", {{"name", "absent"}, {"optional", true}}}}})}}}};
  json pod = MakeVolumePod("p", json::array({volume}));
  ASSERT_TRUE(manager().SetUpPod(pod).ok());
  const std::string dir = VolumeDir(pod, kProjectedPlugin, "bundle");
  EXPECT_EQ(Read(dir + "/tls.key"), "KEY");
  EXPECT_EQ(Mode(dir + "/tls.key"), 0440);

  volume["projected"]["sources"][1]["configMap"]["optional"] = false;
  Status status = manager().SetUpPod(MakeVolumePod("q", json::array({volume})));
  EXPECT_EQ(status.message(), "volume \"bundle\": configmap \"absent\" not found");
}

TEST_F(VolumesTest, DownwardApiVolume) {
  json items = json::array(
      {{{"path", "labels"}, {"fieldRef", {{"fieldPath", "metadata.labels"}}}},
       {{"path", "annotations"}, {"fieldRef", {{"fieldPath", "metadata.annotations"}}}},
       {{"path", "name"}, {"fieldRef", {{"fieldPath", "metadata.name"}}}, {"mode", 0600}},
       {{"path", "uid"}, {"fieldRef", {{"fieldPath", "metadata.uid"}}}},
       {{"path", "tier"}, {"fieldRef", {{"fieldPath", "metadata.labels['tier']"}}}},
       {{"path", "cpu_limit"},
        {"resourceFieldRef",
         {{"containerName", "app"}, {"resource", "limits.cpu"}, {"divisor", "1m"}}}},
       {{"path", "mem_request"},
        {"resourceFieldRef",
         {{"containerName", "app"}, {"resource", "requests.memory"}, {"divisor", "1Mi"}}}}});
  json pod = MakeVolumePod("web-0",
                           json::array({{{"name", "info"}, {"downwardAPI", {{"items", items}}}}}));
  pod["metadata"]["labels"] = {{"tier", "front"}, {"app", "web"}, {"quote", "say \"hi\"\n"}};
  pod["metadata"]["annotations"] = {{"note", "ünïcode"}};
  pod["spec"]["containers"][0]["resources"] = {{"limits", {{"cpu", "250m"}}},
                                               {"requests", {{"memory", "129Mi"}}}};
  Status status = manager().SetUpPod(pod);
  ASSERT_TRUE(status.ok()) << status.ToString();
  const std::string dir = VolumeDir(pod, kDownwardPlugin, "info");
  EXPECT_EQ(Read(dir + "/labels"), "app=\"web\"\nquote=\"say \\\"hi\\\"\\n\"\ntier=\"front\"");
  EXPECT_EQ(Read(dir + "/annotations"), "note=\"ünïcode\"");
  EXPECT_EQ(Read(dir + "/name"), "web-0");
  EXPECT_EQ(Mode(dir + "/name"), 0600);
  EXPECT_EQ(Read(dir + "/uid"), Uid(pod));
  EXPECT_EQ(Read(dir + "/tier"), "front");
  EXPECT_EQ(Read(dir + "/cpu_limit"), "250");
  EXPECT_EQ(Read(dir + "/mem_request"), "129");

  // Labels change: the file follows on the next sync.
  pod["metadata"]["labels"]["tier"] = "back";
  ASSERT_TRUE(manager().SetUpPod(pod).ok());
  EXPECT_EQ(Read(dir + "/tier"), "back");

  json bad = MakeVolumePod(
      "x", json::array(
               {{{"name", "info"},
                 {"downwardAPI",
                  {{"items", json::array({{{"path", "ip"},
                                           {"fieldRef", {{"fieldPath", "status.podIP"}}}}})}}}}}));
  status = manager().SetUpPod(bad);
  EXPECT_EQ(status.message(),
            "volume \"info\": downwardAPI item \"ip\": unsupported fieldPath: status.podIP");
}

}  // namespace
}  // namespace mk8s::kubelet::test
