// hostPath and emptyDir volumes, MountsFor (subPath, read-only, propagation, errors) and
// TearDownPod.
#include <sys/socket.h>
#include <sys/un.h>

#include "volumes_fixture.h"

namespace mk8s::kubelet::test {
namespace {

namespace fs = std::filesystem;
constexpr const char* kEmptyDirPlugin = "kubernetes.io~empty-dir";

json HostPathVolume(const std::string& name, const std::string& path, const std::string& type) {
  json source = {{"path", path}};
  if (!type.empty()) source["type"] = type;
  return {{"name", name}, {"hostPath", source}};
}

TEST_F(VolumesTest, HostPathTypes) {
  const std::string host = root() + "/host";
  fs::create_directories(host + "/existing-dir");
  std::ofstream(host + "/file") << "x";
  auto setup = [&](const json& volume) {
    return manager().SetUpPod(MakeVolumePod("p", json::array({volume})));
  };

  EXPECT_TRUE(setup(HostPathVolume("v", host + "/made/deep", "DirectoryOrCreate")).ok());
  EXPECT_TRUE(fs::is_directory(host + "/made/deep"));
  EXPECT_TRUE(setup(HostPathVolume("v", host + "/existing-dir", "Directory")).ok());
  Status status = setup(HostPathVolume("v", host + "/file", "Directory"));
  EXPECT_EQ(status.code(), Code::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "volume \"v\": hostPath type check failed: " + host + "/file is not a directory");
  status = setup(HostPathVolume("v", host + "/none", "Directory"));
  EXPECT_EQ(status.code(), Code::kNotFound);

  EXPECT_TRUE(setup(HostPathVolume("v", host + "/new-file", "FileOrCreate")).ok());
  EXPECT_TRUE(fs::is_regular_file(host + "/new-file"));
  EXPECT_EQ(Mode(host + "/new-file"), 0644);
  EXPECT_FALSE(setup(HostPathVolume("v", host + "/no-parent/f", "FileOrCreate")).ok());
  EXPECT_TRUE(setup(HostPathVolume("v", host + "/file", "File")).ok());
  EXPECT_FALSE(setup(HostPathVolume("v", host + "/existing-dir", "File")).ok());
  EXPECT_FALSE(setup(HostPathVolume("v", host + "/file", "DirectoryOrCreate")).ok());

  // A listening unix socket.
  const std::string socket_path = host + "/s.sock";
  const int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::snprintf(address.sun_path, sizeof(address.sun_path), "%s", socket_path.c_str());
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  EXPECT_TRUE(setup(HostPathVolume("v", socket_path, "Socket")).ok());
  close(fd);
  status = setup(HostPathVolume("v", host + "/file", "Socket"));
  EXPECT_NE(status.message().find("is not a socket file"), std::string::npos) << status.message();
  EXPECT_TRUE(setup(HostPathVolume("v", "/dev/null", "CharDevice")).ok());
  EXPECT_FALSE(setup(HostPathVolume("v", "/dev/null", "BlockDevice")).ok());
  EXPECT_TRUE(setup(HostPathVolume("v", host + "/anything-goes", "")).ok());
  EXPECT_FALSE(setup(HostPathVolume("v", "relative/path", "")).ok());
  EXPECT_FALSE(setup(HostPathVolume("v", host, "Bogus")).ok());

  // The mount points at the host path itself.
  json pod =
      MakeVolumePod("p", json::array({HostPathVolume("data", host + "/existing-dir", "Directory")}),
                    json::array({{{"name", "data"}, {"mountPath", "/data"}}}));
  auto mounts = manager().MountsFor(pod, pod["spec"]["containers"][0]);
  ASSERT_TRUE(mounts.ok()) << mounts.status().ToString();
  ASSERT_EQ(mounts->size(), 1u);
  EXPECT_EQ((*mounts)[0].host_path, host + "/existing-dir");
  EXPECT_EQ((*mounts)[0].container_path, "/data");
  EXPECT_FALSE((*mounts)[0].read_only);
}

TEST_F(VolumesTest, EmptyDirAndTearDown) {
  json pod = MakeVolumePod("p", json::array({{{"name", "scratch"}, {"emptyDir", json::object()}}}),
                           json::array({{{"name", "scratch"}, {"mountPath", "/scratch"}}}));
  ASSERT_TRUE(manager().SetUpPod(pod).ok());
  const std::string dir = VolumeDir(pod, kEmptyDirPlugin, "scratch");
  EXPECT_TRUE(fs::is_directory(dir));
  EXPECT_EQ(Mode(dir), 0777);
  std::ofstream(dir + "/kept") << "data";
  ASSERT_TRUE(manager().SetUpPod(pod).ok());  // idempotent: content stays
  EXPECT_EQ(Read(dir + "/kept"), "data");
  auto mounts = manager().MountsFor(pod, pod["spec"]["containers"][0]);
  ASSERT_TRUE(mounts.ok());
  EXPECT_EQ((*mounts)[0].host_path, dir);

  ASSERT_TRUE(manager().TearDownPod(Uid(pod)).ok());
  EXPECT_FALSE(fs::exists(root() + "/pods/" + Uid(pod)));
  EXPECT_TRUE(manager().TearDownPod(Uid(pod)).ok()) << "twice";
  EXPECT_TRUE(manager().TearDownPod("never-existed").ok());
  EXPECT_EQ(manager().TearDownPod("..").code(), Code::kInvalidArgument);
  EXPECT_EQ(manager().TearDownPod("a/b").code(), Code::kInvalidArgument);
}

TEST_F(VolumesTest, EmptyDirWithFsGroup) {
  if (geteuid() != 0) GTEST_SKIP() << "chown to another group needs root";
  json pod = MakeVolumePod("p", json::array({{{"name", "shared"}, {"emptyDir", json::object()}}}));
  pod["spec"]["securityContext"] = {{"fsGroup", 3456}};
  ASSERT_TRUE(manager().SetUpPod(pod).ok());
  struct stat st {};
  ASSERT_EQ(stat(VolumeDir(pod, kEmptyDirPlugin, "shared").c_str(), &st), 0);
  EXPECT_EQ(st.st_gid, 3456u);
  EXPECT_EQ(st.st_mode & 07777, 02777u) << "setgid: new files inherit the group";
}

TEST_F(VolumesTest, MemoryEmptyDirIsATmpfs) {
  if (geteuid() != 0) GTEST_SKIP() << "mounting a tmpfs needs root (CAP_SYS_ADMIN)";
  json pod = MakeVolumePod(
      "p", json::array(
               {{{"name", "cache"}, {"emptyDir", {{"medium", "Memory"}, {"sizeLimit", "8Mi"}}}}}));
  Status status = manager().SetUpPod(pod);
  ASSERT_TRUE(status.ok()) << status.ToString();
  const std::string dir = VolumeDir(pod, kEmptyDirPlugin, "cache");
  ASSERT_TRUE(volumes::IsMountPoint(dir));
  ASSERT_TRUE(manager().SetUpPod(pod).ok());  // not mounted twice
  EXPECT_EQ(volumes::MountsUnder(dir).size(), 1u);
  std::ofstream(dir + "/f") << "in memory";
  ASSERT_TRUE(manager().TearDownPod(Uid(pod)).ok());
  EXPECT_FALSE(volumes::IsMountPoint(dir));
  EXPECT_FALSE(fs::exists(root() + "/pods/" + Uid(pod)));
}

TEST_F(VolumesTest, SubPaths) {
  Create(client::kConfigMaps, controllers::test::MakeConfigMap("cm", {{"app.conf", "conf"}}));
  json mounts = json::array(
      {{{"name", "work"}, {"mountPath", "/logs"}, {"subPath", "logs/app"}},
       {{"name", "cfg"}, {"mountPath", "/etc/app.conf"}, {"subPath", "app.conf"}},
       {{"name", "work"}, {"mountPath", "/per-pod"}, {"subPathExpr", "pods/$(POD_NAME)"}},
       {{"name", "cfg"}, {"mountPath", "/etc/cfg"}, {"readOnly", false}}});
  json pod = MakeVolumePod("web-1",
                           json::array({{{"name", "work"}, {"emptyDir", json::object()}},
                                        {{"name", "cfg"}, {"configMap", {{"name", "cm"}}}}}),
                           mounts);
  pod["spec"]["containers"][0]["env"] = json::array(
      {{{"name", "POD_NAME"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.name"}}}}}}});
  ASSERT_TRUE(manager().SetUpPod(pod).ok());
  const json& container = pod["spec"]["containers"][0];
  auto resolved = manager().MountsFor(pod, container);
  ASSERT_TRUE(resolved.ok()) << resolved.status().ToString();
  ASSERT_EQ(resolved->size(), 4u);
  const std::string work = fs::canonical(VolumeDir(pod, kEmptyDirPlugin, "work")).string();
  EXPECT_EQ((*resolved)[0].host_path, work + "/logs/app");
  EXPECT_TRUE(fs::is_directory(work + "/logs/app")) << "created on demand";
  EXPECT_FALSE((*resolved)[0].read_only);
  // A configMap key through subPath: the resolved file of the current generation, read-only.
  EXPECT_EQ(Read((*resolved)[1].host_path), "conf");
  EXPECT_NE((*resolved)[1].host_path.find("/..20"), std::string::npos) << (*resolved)[1].host_path;
  EXPECT_TRUE((*resolved)[1].read_only);
  EXPECT_EQ((*resolved)[2].host_path, work + "/pods/web-1");
  EXPECT_TRUE((*resolved)[3].read_only) << "configMap volumes are always read-only";

  auto mount_error = [&](const json& mount) {
    json copy = container;
    copy["volumeMounts"] = json::array({mount});
    auto result = manager().MountsFor(pod, copy);
    return result.ok() ? std::string("<ok>") : result.status().message();
  };
  EXPECT_NE(mount_error({{"name", "work"}, {"mountPath", "/x"}, {"subPath", "../../etc"}})
                .find("must not contain '..'"),
            std::string::npos);
  EXPECT_NE(
      mount_error({{"name", "work"}, {"mountPath", "/x"}, {"subPath", "/etc"}}).find("relative"),
      std::string::npos);
  EXPECT_NE(mount_error({{"name", "cfg"}, {"mountPath", "/x"}, {"subPath", "absent"}})
                .find("does not exist"),
            std::string::npos);
  // A symlink planted in the volume (by a container) must not lead outside it.
  fs::create_symlink("/etc", work + "/evil");
  EXPECT_NE(mount_error({{"name", "work"}, {"mountPath", "/x"}, {"subPath", "evil"}})
                .find("resolves outside the volume"),
            std::string::npos);
}

TEST_F(VolumesTest, MountsForErrorsAndPropagation) {
  json pod = MakeVolumePod("p", json::array({{{"name", "work"}, {"emptyDir", json::object()}}}));
  ASSERT_TRUE(manager().SetUpPod(pod).ok());
  json container = pod["spec"]["containers"][0];
  auto with = [&](const json& mount, bool privileged = false) {
    json copy = container;
    copy["volumeMounts"] = json::array({mount});
    if (privileged) copy["securityContext"] = {{"privileged", true}};
    return manager().MountsFor(pod, copy);
  };
  auto unknown = with({{"name", "nope"}, {"mountPath", "/x"}});
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(
      unknown.status().message(),
      "container \"app\", volumeMount \"nope\" at \"/x\": no volume named \"nope\" in the pod");
  EXPECT_FALSE(with({{"name", "work"}}).ok()) << "mountPath required";

  auto bidirectional =
      with({{"name", "work"}, {"mountPath", "/x"}, {"mountPropagation", "Bidirectional"}});
  ASSERT_FALSE(bidirectional.ok());
  EXPECT_NE(bidirectional.status().message().find("only to privileged containers"),
            std::string::npos);
  auto privileged =
      with({{"name", "work"}, {"mountPath", "/x"}, {"mountPropagation", "Bidirectional"}}, true);
  ASSERT_TRUE(privileged.ok());
  EXPECT_EQ((*privileged)[0].propagation, "Bidirectional");
  auto host_to_container = with({{"name", "work"},
                                 {"mountPath", "/x"},
                                 {"mountPropagation", "HostToContainer"},
                                 {"readOnly", true}});
  ASSERT_TRUE(host_to_container.ok());
  EXPECT_EQ((*host_to_container)[0].propagation, "HostToContainer");
  EXPECT_TRUE((*host_to_container)[0].read_only);
  auto none = with({{"name", "work"}, {"mountPath", "/x"}, {"mountPropagation", "None"}});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ((*none)[0].propagation, "");
  EXPECT_FALSE(
      with({{"name", "work"}, {"mountPath", "/x"}, {"mountPropagation", "Sideways"}}).ok());

  // No volumeMounts: no mounts.
  json bare = {{"name", "bare"}, {"image", "busybox"}};
  auto empty = manager().MountsFor(pod, bare);
  ASSERT_TRUE(empty.ok());
  EXPECT_TRUE(empty->empty());
}

TEST_F(VolumesTest, UnsupportedVolumesAndBadPods) {
  json pod = MakeVolumePod(
      "p", json::array({{{"name", "data"}, {"persistentVolumeClaim", {{"claimName", "c"}}}}}));
  Status status = manager().SetUpPod(pod);
  EXPECT_EQ(status.code(), Code::kInvalidArgument);
  EXPECT_EQ(status.message(),
            "volume \"data\": persistentVolumeClaim volumes are not supported by this kubelet");
  json no_uid = pod;
  no_uid["metadata"].erase("uid");
  EXPECT_EQ(manager().SetUpPod(no_uid).code(), Code::kInvalidArgument);
  EXPECT_EQ(manager().SetUpPod(json::array()).code(), Code::kInvalidArgument);
  json no_volumes = MakeVolumePod("q", json::array());
  no_volumes["spec"].erase("volumes");
  EXPECT_TRUE(manager().SetUpPod(no_volumes).ok());
  EXPECT_TRUE(fs::is_directory(root() + "/pods/" + Uid(no_volumes) + "/volumes"));
}

}  // namespace
}  // namespace mk8s::kubelet::test
