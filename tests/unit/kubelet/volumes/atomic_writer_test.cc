// configMap and secret volumes: items, modes, optional sources, base64, and the atomic update
// protocol (..data swapped by rename, user-visible symlinks, old content until the swap).
#include <atomic>
#include <thread>

#include "kubelet/volumes/atomic_writer.h"
#include "pki/encoding.h"
#include "volumes_fixture.h"

namespace mk8s::kubelet::test {
namespace {

constexpr const char* kConfigMapPlugin = "kubernetes.io~configmap";
constexpr const char* kSecretPlugin = "kubernetes.io~secret";

json ConfigMapVolume(const std::string& name, const std::string& config_map,
                     json extra = json::object()) {
  json source = {{"name", config_map}};
  source.update(extra);
  return {{"name", name}, {"configMap", source}};
}

TEST_F(VolumesTest, ConfigMapItemsAndModes) {
  Create(client::kConfigMaps, controllers::test::MakeConfigMap(
                                  "app-config", {{"a", "alpha"}, {"b", "beta"}, {"c", "gamma"}}));
  json pod = MakeVolumePod(
      "p", json::array({ConfigMapVolume(
               "cfg", "app-config",
               {{"defaultMode", 0640},
                {"items", json::array({{{"key", "a"}, {"path", "dir/a.txt"}, {"mode", 0400}},
                                       {{"key", "b"}, {"path", "b"}}})}})}));
  ASSERT_TRUE(manager().SetUpPod(pod).ok());
  const std::string dir = VolumeDir(pod, kConfigMapPlugin, "cfg");
  EXPECT_EQ(Read(dir + "/dir/a.txt"), "alpha");
  EXPECT_EQ(Mode(dir + "/dir/a.txt"), 0400);
  EXPECT_EQ(Read(dir + "/b"), "beta");
  EXPECT_EQ(Mode(dir + "/b"), 0640);
  EXPECT_EQ(Read(dir + "/c"), "<missing>");  // not among the items
  // The layout: user-visible names are symlinks through ..data to a timestamped folder.
  EXPECT_EQ(LinkTarget(dir + "/dir"), "..data/dir");
  EXPECT_EQ(LinkTarget(dir + "/b"), "..data/b");
  const std::string generation = LinkTarget(dir + "/..data");
  EXPECT_EQ(generation.rfind("..20", 0), 0u) << generation;
  EXPECT_EQ(Mode(dir + "/" + generation), 0755);

  // All keys (data and binaryData) with the default mode 0644.
  json all = controllers::test::MakeConfigMap("all", {{"x", "1"}});
  all["binaryData"] = {{"bin", pki::Base64Encode(std::string("\x00\x01\xff", 3))}};
  Create(client::kConfigMaps, all);
  json pod2 = MakeVolumePod("p2", json::array({ConfigMapVolume("all", "all")}));
  ASSERT_TRUE(manager().SetUpPod(pod2).ok());
  const std::string dir2 = VolumeDir(pod2, kConfigMapPlugin, "all");
  EXPECT_EQ(Read(dir2 + "/x"), "1");
  EXPECT_EQ(Mode(dir2 + "/x"), 0644);
  EXPECT_EQ(Read(dir2 + "/bin"), std::string("\x00\x01\xff", 3));
}

TEST_F(VolumesTest, UpdateSwapsAtomically) {
  Create(client::kConfigMaps,
         controllers::test::MakeConfigMap("live", {{"a", "v1"}, {"b", "old-only"}}));
  json pod = MakeVolumePod("p", json::array({ConfigMapVolume("live", "live")}));
  ASSERT_TRUE(manager().SetUpPod(pod).ok());
  const std::string dir = VolumeDir(pod, kConfigMapPlugin, "live");
  const std::string first = LinkTarget(dir + "/..data");
  ASSERT_EQ(Read(dir + "/a"), "v1");

  // An unchanged object is not rewritten.
  ASSERT_TRUE(manager().SetUpPod(pod).ok());
  EXPECT_EQ(LinkTarget(dir + "/..data"), first);

  // The API object changes: the folder keeps the old content until the next sync swaps it.
  Patch(client::kConfigMaps, "live", {{"data", {{"a", "v2"}, {"b", nullptr}, {"d", "new"}}}});
  EXPECT_EQ(Read(dir + "/a"), "v1");
  ASSERT_TRUE(manager().SetUpPod(pod).ok());
  const std::string second = LinkTarget(dir + "/..data");
  EXPECT_NE(second, first);
  EXPECT_EQ(Read(dir + "/a"), "v2");
  EXPECT_EQ(Read(dir + "/d"), "new");
  EXPECT_FALSE(std::filesystem::exists(std::filesystem::symlink_status(dir + "/b")));
  EXPECT_FALSE(std::filesystem::exists(dir + "/" + first)) << "old generation removed";
  EXPECT_EQ(std::filesystem::canonical(dir + "/a").string(), dir + "/" + second + "/a");
}

// A reader never sees a partial file while generations are swapped under it.
TEST_F(VolumesTest, ReadersSeeWholeGenerations) {
  const std::string dir = root() + "/direct";
  auto content = [](int generation) {
    return std::string(64 * 1024, static_cast<char>('a' + generation % 26));
  };
  ASSERT_TRUE(volumes::WriteAtomically(dir, {{"f", {content(0), 0644}}}).ok());
  std::atomic<bool> stop{false};
  std::atomic<int> reads{0}, torn{0};
  std::thread reader([&] {
    while (!stop) {
      const std::string text = Read(dir + "/f");
      if (text == "<missing>") continue;  // resolved into a generation just removed: retry
      ++reads;
      if (text.size() != 64 * 1024 || text.find_first_not_of(text[0]) != std::string::npos) ++torn;
    }
  });
  for (int generation = 1; generation <= 200; ++generation) {
    auto written = volumes::WriteAtomically(dir, {{"f", {content(generation), 0644}}});
    ASSERT_TRUE(written.ok()) << written.status().ToString();
    EXPECT_TRUE(*written);
  }
  ASSERT_TRUE(WaitFor([&] { return reads.load() > 0; }, "the reader to read once"));
  stop = true;
  reader.join();
  EXPECT_EQ(torn.load(), 0) << "of " << reads.load() << " reads";
  EXPECT_EQ(Read(dir + "/f"), content(200));
  // Exactly one generation folder remains.
  int generations = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("..20", 0) == 0) ++generations;
  }
  EXPECT_EQ(generations, 1);
}

TEST_F(VolumesTest, PayloadPathsAreValidated) {
  for (const std::string bad : {"/abs", "../up", "a/../b", "..hidden", "", "a//b"}) {
    auto written = volumes::WriteAtomically(root() + "/v", {{bad, {"x", 0644}}});
    EXPECT_FALSE(written.ok()) << bad;
  }
  json bad_item = MakeVolumePod(
      "p", json::array({ConfigMapVolume(
               "cfg", "cm", {{"items", json::array({{{"key", "a"}, {"path", "../../etc/x"}}})}})}));
  Create(client::kConfigMaps, controllers::test::MakeConfigMap("cm", {{"a", "1"}}));
  Status status = manager().SetUpPod(bad_item);
  EXPECT_EQ(status.code(), Code::kInvalidArgument);
  EXPECT_NE(status.message().find("volume \"cfg\""), std::string::npos) << status.message();
}

TEST_F(VolumesTest, OptionalAndMissingSources) {
  json optional = MakeVolumePod(
      "p",
      json::array({ConfigMapVolume("maybe", "absent", {{"optional", true}}),
                   {{"name", "s"}, {"secret", {{"secretName", "absent"}, {"optional", true}}}}}));
  ASSERT_TRUE(manager().SetUpPod(optional).ok());
  const std::string dir = VolumeDir(optional, kConfigMapPlugin, "maybe");
  EXPECT_TRUE(std::filesystem::is_directory(dir + "/..data"));

  json missing = MakeVolumePod("q", json::array({ConfigMapVolume("cfg", "app-config")}));
  Status status = manager().SetUpPod(missing);
  EXPECT_EQ(status.code(), Code::kNotFound);
  EXPECT_EQ(status.message(), "volume \"cfg\": configmap \"app-config\" not found");

  json secret_missing =
      MakeVolumePod("r", json::array({{{"name", "creds"}, {"secret", {{"secretName", "db"}}}}}));
  status = manager().SetUpPod(secret_missing);
  EXPECT_EQ(status.message(), "volume \"creds\": secret \"db\" not found");

  // A missing key: an error unless optional.
  Create(client::kConfigMaps, controllers::test::MakeConfigMap("partial", {{"a", "1"}}));
  json items = {
      {"items", json::array({{{"key", "a"}, {"path", "a"}}, {{"key", "nope"}, {"path", "n"}}})}};
  status = manager().SetUpPod(
      MakeVolumePod("s", json::array({ConfigMapVolume("cfg", "partial", items)})));
  EXPECT_EQ(status.message(), "volume \"cfg\": configmap references non-existent config key: nope");
  items["optional"] = true;
  json tolerant = MakeVolumePod("t", json::array({ConfigMapVolume("cfg", "partial", items)}));
  ASSERT_TRUE(manager().SetUpPod(tolerant).ok());
  EXPECT_EQ(Read(VolumeDir(tolerant, kConfigMapPlugin, "cfg") + "/a"), "1");

  // Other volumes of a pod are still set up when one fails.
  Create(client::kConfigMaps, controllers::test::MakeConfigMap("good", {{"k", "v"}}));
  json mixed = MakeVolumePod(
      "u", json::array({ConfigMapVolume("bad", "absent"), ConfigMapVolume("ok", "good")}));
  EXPECT_FALSE(manager().SetUpPod(mixed).ok());
  EXPECT_EQ(Read(VolumeDir(mixed, kConfigMapPlugin, "ok") + "/k"), "v");
}

TEST_F(VolumesTest, SecretIsDecoded) {
  json secret = {
      {"apiVersion", "v1"},
      {"kind", "Secret"},
      {"metadata", {{"name", "db"}}},
      {"type", "Opaque"},
      {"data",
       {{"password", pki::Base64Encode("s3cr3t\n")}, {"user", pki::Base64Encode("admin")}}}};
  Create(client::kSecrets, secret);
  json pod = MakeVolumePod(
      "p", json::array({{{"name", "creds"},
                         {"secret",
                          {{"secretName", "db"},
                           {"defaultMode", 0400},
                           {"items", json::array({{{"key", "password"}, {"path", "pw"}}})}}}}}));
  ASSERT_TRUE(manager().SetUpPod(pod).ok());
  const std::string dir = VolumeDir(pod, kSecretPlugin, "creds");
  EXPECT_EQ(Read(dir + "/pw"), "s3cr3t\n");
  EXPECT_EQ(Mode(dir + "/pw"), 0400);
  EXPECT_EQ(Read(dir + "/user"), "<missing>");
  // Secrets never reach the disk: the volume is a tmpfs (where the test may mount).
  if (geteuid() == 0) {
    EXPECT_TRUE(volumes::IsMountPoint(dir));
    ASSERT_TRUE(manager().TearDownPod(Uid(pod)).ok());
    EXPECT_FALSE(volumes::IsMountPoint(dir));
    EXPECT_FALSE(std::filesystem::exists(dir));
  }
}

TEST_F(VolumesTest, FsGroupOwnsTheFiles) {
  if (geteuid() != 0) GTEST_SKIP() << "chown to another group needs root";
  Create(client::kConfigMaps, controllers::test::MakeConfigMap("cm", {{"a", "1"}}));
  json pod =
      MakeVolumePod("p", json::array({ConfigMapVolume("cfg", "cm", {{"defaultMode", 0600}})}));
  pod["spec"]["securityContext"] = {{"fsGroup", 2345}};
  ASSERT_TRUE(manager().SetUpPod(pod).ok());
  const std::string file = VolumeDir(pod, kConfigMapPlugin, "cfg") + "/a";
  struct stat st {};
  ASSERT_EQ(stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, 2345u);
  EXPECT_EQ(st.st_mode & 07777, 0640u);
  // Idempotent with the group bits.
  const std::string generation = LinkTarget(VolumeDir(pod, kConfigMapPlugin, "cfg") + "/..data");
  ASSERT_TRUE(manager().SetUpPod(pod).ok());
  EXPECT_EQ(LinkTarget(VolumeDir(pod, kConfigMapPlugin, "cfg") + "/..data"), generation);
}

}  // namespace
}  // namespace mk8s::kubelet::test
