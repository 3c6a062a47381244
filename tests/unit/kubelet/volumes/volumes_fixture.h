// VolumesTest: the controllers' API-server fixture (tests/unit/controllers/fixture.h) plus a
// temp pods root and a VolumeManager acting through the test's client. Pods are plain JSON
// (the manager never reads them from the API), each with a unique uid.
#pragma once

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "fixture.h"
#include "kubelet/volumes/host_volumes.h"
#include "kubelet/volumes/volumes.h"

namespace mk8s::kubelet::test {

using controllers::test::ControllerTest;
using nlohmann::json;

class VolumesTest : public ControllerTest {
 protected:
  void SetUp() override {
    ControllerTest::SetUp();
    if (HasFatalFailure()) return;
    char pattern[] = "/tmp/mk8s-voltest-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    root_ = pattern;
    manager_ = std::make_unique<VolumeManager>(api_ptr(), root_ + "/pods");
  }
  void TearDown() override {
    manager_.reset();
    if (!root_.empty()) {
      // Never remove through a mount a failed test left behind.
      EXPECT_TRUE(volumes::UnmountAllUnder(root_).ok());
      std::error_code ignored;
      std::filesystem::remove_all(root_, ignored);
    }
    ControllerTest::TearDown();
  }

  VolumeManager& manager() { return *manager_; }
  const std::string& root() const { return root_; }

  // A pod in ns() with one container "app" and the given volumes / volumeMounts.
  json MakeVolumePod(const std::string& name, const json& volumes,
                     const json& mounts = json::array()) {
    static int counter = 0;
    json pod = {
        {"apiVersion", "v1"},
        {"kind", "Pod"},
        {"metadata",
         {{"name", name},
          {"namespace", ns()},
          {"uid", "uid-" + ns() + "-" + std::to_string(++counter)}}},
        {"spec",
         {{"containers",
           json::array({{{"name", "app"}, {"image", "busybox"}, {"volumeMounts", mounts}}})},
          {"volumes", volumes}}}};
    return pod;
  }
  static std::string Uid(const json& pod) { return pod["metadata"]["uid"].get<std::string>(); }
  std::string VolumeDir(const json& pod, const std::string& plugin, const std::string& volume) {
    return root_ + "/pods/" + Uid(pod) + "/volumes/" + plugin + "/" + volume;
  }

  // File content ("<missing>" if it cannot be read).
  static std::string Read(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return "<missing>";
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }
  // Permission bits of the file a path resolves to; -1 if missing.
  static int Mode(const std::string& path) {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) return -1;
    return static_cast<int>(st.st_mode & 07777);
  }
  static std::string LinkTarget(const std::string& path) {
    std::error_code ec;
    auto target = std::filesystem::read_symlink(path, ec);
    return ec ? "<not a symlink>" : target.string();
  }

 private:
  std::string root_;
  std::unique_ptr<VolumeManager> manager_;
};

}  // namespace mk8s::kubelet::test
