// The supervisor's error paths with fake containerd binaries (no root, no real containerd).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "runtime/containerd.h"
#include "runtime/images.h"

namespace mk8s::runtime {
namespace {

namespace fs = std::filesystem;

class SupervisorErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mk8s-sup-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  std::string FakeBinary(const std::string& name, const std::string& script) {
    fs::create_directories(dir_ + "/bin");
    const std::string path = dir_ + "/bin/" + name;
    std::ofstream(path) << "#!/bin/sh\n" << script << "\n";
    ::chmod(path.c_str(), 0755);
    return path;
  }
  ContainerdOptions Options() {
    ContainerdOptions o;
    o.state_dir = dir_ + "/containerd";
    o.cni_conf_dir = dir_ + "/net.d";
    o.runc_binary = "/bin/true";
    o.sandbox_image = "localhost/mk8s/pause:test";
    o.ready_timeout = std::chrono::seconds(2);
    return o;
  }
  std::string dir_;
};

TEST_F(SupervisorErrors, ExitDuringStartupReportsTheLogTail) {
  auto o = Options();
  o.containerd_binary =
      FakeBinary("containerd", "echo 'fake: cannot start, disk on fire' >&2; exit 3");
  auto r = Containerd::Start(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("exited with code 3"), std::string::npos)
      << r.status().message();
  EXPECT_NE(r.status().message().find("disk on fire"), std::string::npos) << r.status().message();
  EXPECT_TRUE(fs::exists(o.state_dir + "/config.toml"));
}

TEST_F(SupervisorErrors, NoReadinessWithinTheDeadline) {
  auto o = Options();
  o.containerd_binary = FakeBinary("containerd", "echo waiting forever; exec sleep 60");
  o.ready_timeout = std::chrono::seconds(1);
  auto r = Containerd::Start(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kDeadlineExceeded) << r.status().ToString();
  EXPECT_NE(r.status().message().find("waiting forever"), std::string::npos);
}

TEST_F(SupervisorErrors, MissingBinariesAndBadOptions) {
  auto o = Options();
  o.containerd_binary = dir_ + "/nope";
  auto r = Containerd::Start(o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  EXPECT_NE(r.status().message().find("apt-get install containerd"), std::string::npos);
  o = Options();
  o.state_dir = "relative/dir";
  EXPECT_EQ(Containerd::Start(o).status().code(), Code::kInvalidArgument);
  o = Options();
  o.sandbox_image.clear();
  o.containerd_binary = "/bin/true";
  EXPECT_EQ(Containerd::Start(o).status().code(), Code::kInvalidArgument);
}

TEST_F(SupervisorErrors, ImportOfAMissingTarball) {
  auto r = ImportImage(dir_ + "/sock", dir_ + "/missing.tar");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), Code::kNotFound);
  EXPECT_EQ(FindPauseImageTarball(dir_ + "/missing.tar").status().code(), Code::kNotFound);
}

TEST(RegistryMirrorFlag, ParsesHostEqualsUrl) {
  auto ok = ParseRegistryMirror("localhost:32000=http://127.0.0.1:32000");
  ASSERT_TRUE(ok.ok()) << ok.status().message();
  EXPECT_EQ(ok->first, "localhost:32000");
  EXPECT_EQ(ok->second, "http://127.0.0.1:32000");
  for (const std::string bad : {"", "localhost:5000", "=http://x", "a/b=http://x", "..=http://x",
                                "h:1=", "h:1=ftp://x", "h:1=http://", "h:1=http://a b"}) {
    auto r = ParseRegistryMirror(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << bad;
    EXPECT_NE(r.status().message().find("'" + bad + "'"), std::string::npos)
        << r.status().message();
  }
}

TEST_F(SupervisorErrors, WritesMirrorsAndConflist) {
  ASSERT_TRUE(
      WriteRegistryMirror(dir_ + "/certs.d", "localhost:32000", "http://127.0.0.1:32000").ok());
  std::ifstream hosts(dir_ + "/certs.d/localhost:32000/hosts.toml");
  std::string text((std::istreambuf_iterator<char>(hosts)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("server = \"http://127.0.0.1:32000\""), std::string::npos) << text;
  for (const std::string bad : {"", "..", "a/b", "a b"}) {
    EXPECT_EQ(WriteRegistryMirror(dir_ + "/certs.d", bad, "http://127.0.0.1:1").code(),
              Code::kInvalidArgument)
        << bad;
  }
  EXPECT_EQ(WriteRegistryMirror(dir_ + "/certs.d", "x:1", "ftp://x").code(),
            Code::kInvalidArgument);

  CniNetworkOptions net;
  net.bridge_name = "mk8s0";
  net.subnet = "10.1.3.0/24";
  net.ipam_data_dir = dir_ + "/ipam";
  ASSERT_TRUE(WriteCniConflist(dir_ + "/net.d", net).ok());
  EXPECT_TRUE(fs::exists(dir_ + "/net.d/10-mk8s.conflist"));
  net.subnet = "bad";
  EXPECT_EQ(WriteCniConflist(dir_ + "/net.d", net).code(), Code::kInvalidArgument);

  // Start writes the configured mirrors before launching (here a containerd that fails at once).
  auto o = Options();
  o.containerd_binary = FakeBinary("containerd", "exit 1");
  o.registry_mirrors["localhost:32000"] = "http://127.0.0.1:32000";
  EXPECT_FALSE(Containerd::Start(o).ok());
  EXPECT_TRUE(fs::exists(o.state_dir + "/certs.d/localhost:32000/hosts.toml"));
}

TEST(PauseImage, BuiltAndFound) {
  auto path = FindPauseImageTarball();
  ASSERT_TRUE(path.ok()) << path.status().ToString();
  EXPECT_GT(fs::file_size(*path), 1000u);
  EXPECT_EQ(PauseImageRef().rfind("localhost/mk8s/pause:", 0), 0u);
}

}  // namespace
}  // namespace mk8s::runtime
