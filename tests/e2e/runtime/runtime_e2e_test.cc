// End-to-end test of daemon/runtime against the real containerd, runc and CNI plugins.
//
// Runs only inside a network namespace of its own (tests/e2e/in-netns.sh makes one): it starts
// the Containerd supervisor in a temp state folder, imports the pause image and a busybox httpd
// image, runs a pod on a CNI bridge (10.1.7.0/24, inside the namespace), talks HTTP to it, execs
// in it, kills containerd (the supervisor restarts it; the pod keeps running), and tears all
// down. Prints the measured timings as "E2E-TIMING <what> <ms>".
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <thread>

#include "common/paths.h"
#include "control/control_server.h"
#include "runtime/containerd.h"
#include "runtime/containerd_config.h"
#include "runtime/cri_client.h"
#include "runtime/images.h"
#include "runtime/process_util.h"

namespace mk8s::runtime {
namespace {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

constexpr char kSubnet[] = "10.1.7.0/24";
constexpr char kHttpdImage[] = "localhost/mk8s-test/httpd:1";
constexpr char kPage[] = "<h1>hello from mk8s e2e</h1>\n";

long long MsSince(SteadyClock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - start).count();
}

void Timing(const std::string& what, long long ms) {
  std::printf("E2E-TIMING %s %lld ms\n", what.c_str(), ms);
  std::fflush(stdout);
}

std::string RandomHex(int n) {
  std::random_device rd;
  std::string out;
  for (int i = 0; i < n; ++i) out += "0123456789abcdef"[rd() % 16];
  return out;
}

ino_t NetnsInode(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_ino : 0;
}

// One HTTP/1.0 GET to ip:port; the whole response, or "" on any failure.
std::string HttpGet(const std::string& ip, int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return "";
  timeval tv{2, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, ip.c_str(), &addr.sin_addr);
  std::string response;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    const std::string request = "GET / HTTP/1.0\r\nHost: " + ip + "\r\n\r\n";
    if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) ==
        static_cast<ssize_t>(request.size())) {
      char buf[4096];
      ssize_t n;
      while ((n = ::recv(fd, buf, sizeof(buf), 0)) > 0) response.append(buf, n);
    }
  }
  ::close(fd);
  return response;
}

// Polls `probe` until it returns true or `timeout` passes.
template <typename Probe>
bool WaitFor(std::chrono::milliseconds timeout, Probe&& probe) {
  const auto deadline = SteadyClock::now() + timeout;
  auto pause = std::chrono::milliseconds(20);
  while (SteadyClock::now() < deadline) {
    if (probe()) return true;
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(250));
  }
  return probe();
}

bool Contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

class RuntimeE2E : public ::testing::Test {
 protected:
  void SetUp() override {
    if (::geteuid() != 0) {
      GTEST_SKIP() << "needs root (containerd, runc, CNI)";
    }
    for (const char* bin : {"/usr/bin/containerd", "/usr/bin/ctr", "/usr/lib/cni/bridge"}) {
      if (::access(bin, X_OK) != 0) {
        GTEST_SKIP() << bin << " is missing (scripts/install-deps.sh)";
      }
    }
    // Network safety: pods, bridges and iptables rules only inside a namespace of our own.
    if (NetnsInode("/proc/self/ns/net") == NetnsInode("/proc/1/ns/net")) {
      GTEST_SKIP() << "refusing to run in the host network namespace: run it through "
                      "tests/e2e/in-netns.sh";
    }
    char tmpl[] = "/tmp/mk8s-e2e-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    std::printf("state folder: %s\n", dir_.c_str());
  }

  void TearDown() override {
    if (cri_ != nullptr) {
      // Best effort after a failure: remove whatever the test left.
      if (auto pods = cri_->ListPodSandbox(); pods.ok()) {
        for (const auto& p : *pods) {
          (void)cri_->StopPodSandbox(p.id());
          (void)cri_->RemovePodSandbox(p.id());
        }
      }
    }
    cri_.reset();
    if (containerd_ != nullptr) {
      EXPECT_TRUE(containerd_->Stop().ok());
    }
    containerd_.reset();
    if (!dir_.empty() && clean_) {
      std::error_code ec;
      fs::remove_all(dir_, ec);
    } else if (!dir_.empty()) {
      std::printf("left %s for inspection\n", dir_.c_str());
    }
  }

  std::string dir_;
  bool clean_ = false;  // set once the pods are gone, so removing the folder touches no mount
  std::unique_ptr<Containerd> containerd_;
  std::unique_ptr<CriClient> cri_;
};

TEST_F(RuntimeE2E, PodLifecycleSurvivesContainerdRestart) {
  // Images and network config.
  const std::string page = dir_ + "/index.html";
  std::ofstream(page) << kPage;
  const std::string httpd_tar = dir_ + "/httpd.tar";
  auto built = RunCommand({"/usr/bin/python3", MK8S_OCI_IMAGE_SCRIPT, "--name", kHttpdImage,
                           "--busybox", "--entrypoint", "/bin/httpd", "--cmd", "-f -p 80 -h /www",
                           "--file", page + ":/www/index.html", "-o", httpd_tar},
                          std::chrono::seconds(60));
  ASSERT_TRUE(built.ok()) << built.status().ToString();
  ASSERT_EQ(built->exit_code, 0) << built->output;
  auto pause_tar = FindPauseImageTarball();
  ASSERT_TRUE(pause_tar.ok()) << pause_tar.status().ToString();

  const std::string cni_conf_dir = dir_ + "/cni/net.d";
  const std::string ipam_dir = dir_ + "/cni/ipam";
  CniNetworkOptions net;
  net.network_name = "mk8s-e2e";
  net.bridge_name = "mk8se" + RandomHex(6);
  net.subnet = kSubnet;
  net.ipam_data_dir = ipam_dir;
  auto written = WriteCniConflist(cni_conf_dir, net);
  ASSERT_TRUE(written.ok()) << written.ToString();

  // containerd.
  ContainerdOptions options;
  options.state_dir = dir_ + "/containerd";
  options.cni_conf_dir = cni_conf_dir;
  options.sandbox_image = PauseImageRef();
  options.restart_backoff_initial = std::chrono::milliseconds(100);
  auto t0 = SteadyClock::now();
  auto containerd = Containerd::Start(options);
  ASSERT_TRUE(containerd.ok()) << containerd.status().ToString();
  containerd_ = std::move(*containerd);
  Timing("containerd-start", MsSince(t0));
  EXPECT_FALSE(containerd_->adopted());
  auto client = CriClient::Connect(containerd_->socket());
  ASSERT_TRUE(client.ok());
  cri_ = std::move(*client);
  auto version = cri_->Version();
  ASSERT_TRUE(version.ok()) << version.status().ToString();
  EXPECT_EQ(version->runtime_api_version(), "v1");
  EXPECT_TRUE(WaitFor(std::chrono::seconds(20), [&] {
    return cri_->ConditionTrue("NetworkReady");
  })) << "NetworkReady never became true";

  t0 = SteadyClock::now();
  auto imported = EnsurePauseImage(*cri_, containerd_->socket(), *pause_tar, PauseImageRef());
  ASSERT_TRUE(imported.ok()) << imported.status().ToString();
  EXPECT_TRUE(*imported);
  Timing("import-pause", MsSince(t0));
  auto again = EnsurePauseImage(*cri_, containerd_->socket(), *pause_tar, PauseImageRef());
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(*again) << "a present pause image must not be imported again";
  t0 = SteadyClock::now();
  auto names = ImportImage(containerd_->socket(), httpd_tar);
  ASSERT_TRUE(names.ok()) << names.status().ToString();
  Timing("import-httpd", MsSince(t0));
  auto httpd_status = cri_->ImageStatus(kHttpdImage);
  ASSERT_TRUE(httpd_status.ok() && httpd_status->has_value()) << "httpd image not visible to CRI";
  auto missing = cri_->ImageStatus("localhost/mk8s-test/absent:1");
  ASSERT_TRUE(missing.ok());
  EXPECT_FALSE(missing->has_value());
  auto bad_import = ImportImage(containerd_->socket(), page);
  ASSERT_FALSE(bad_import.ok());
  EXPECT_TRUE(Contains(bad_import.status().message(), "ctr exit")) << bad_import.status().message();

  // The pod: a sandbox, then the httpd container.
  const std::string uid = "e2e-" + RandomHex(8);
  const std::string log_dir = dir_ + "/logs/default_httpd_" + uid;
  fs::create_directories(log_dir);
  cri::PodSandboxConfig sandbox;
  sandbox.mutable_metadata()->set_name("httpd");
  sandbox.mutable_metadata()->set_namespace_("default");
  sandbox.mutable_metadata()->set_uid(uid);
  sandbox.set_hostname("httpd");
  sandbox.set_log_directory(log_dir);
  (*sandbox.mutable_labels())["io.kubernetes.pod.name"] = "httpd";
  (*sandbox.mutable_labels())["io.kubernetes.pod.namespace"] = "default";
  (*sandbox.mutable_labels())["io.kubernetes.pod.uid"] = uid;
  sandbox.mutable_linux()->mutable_security_context()->mutable_namespace_options()->set_pid(
      cri::CONTAINER);
  t0 = SteadyClock::now();
  auto sandbox_id = cri_->RunPodSandbox(sandbox);
  ASSERT_TRUE(sandbox_id.ok()) << sandbox_id.status().ToString();
  Timing("RunPodSandbox", MsSince(t0));

  auto sandbox_status = cri_->PodSandboxStatus(*sandbox_id);
  ASSERT_TRUE(sandbox_status.ok()) << sandbox_status.status().ToString();
  EXPECT_EQ(sandbox_status->status().state(), cri::SANDBOX_READY);
  const std::string pod_ip = sandbox_status->status().network().ip();
  EXPECT_EQ(pod_ip.rfind("10.1.7.", 0), 0u) << "pod IP " << pod_ip << " is not in " << kSubnet;
  std::printf("pod IP %s\n", pod_ip.c_str());
  EXPECT_TRUE(fs::exists(ipam_dir + "/mk8s-e2e/" + pod_ip)) << "no IPAM lease for " << pod_ip;

  cri::ContainerConfig container;
  container.mutable_metadata()->set_name("httpd");
  container.mutable_image()->set_image(kHttpdImage);
  // Override the image's command: print a line to the log first, then serve.
  container.add_command("/bin/sh");
  container.add_args("-c");
  container.add_args("echo mk8s-started; exec httpd -f -p 80 -h /www");
  container.set_log_path("httpd/0.log");
  (*container.mutable_labels())["io.kubernetes.container.name"] = "httpd";
  (*container.mutable_labels())["io.kubernetes.pod.uid"] = uid;
  (*container.mutable_annotations())["io.kubernetes.container.restartCount"] = "0";
  t0 = SteadyClock::now();
  auto container_id = cri_->CreateContainer(*sandbox_id, container, sandbox);
  ASSERT_TRUE(container_id.ok()) << container_id.status().ToString();
  Timing("CreateContainer", MsSince(t0));
  t0 = SteadyClock::now();
  ASSERT_TRUE(cri_->StartContainer(*container_id).ok());
  Timing("StartContainer", MsSince(t0));

  auto status = cri_->ContainerStatus(*container_id);
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_EQ(status->state(), cri::CONTAINER_RUNNING);
  auto unknown = cri_->ContainerStatus("no-such-container");
  ASSERT_FALSE(unknown.ok());
  EXPECT_EQ(unknown.status().code(), Code::kNotFound);
  EXPECT_TRUE(Contains(unknown.status().message(), "CRI ContainerStatus: "));

  // Traffic from the test (same network namespace) to the pod.
  std::string response;
  EXPECT_TRUE(WaitFor(std::chrono::seconds(20),
                      [&] {
                        response = HttpGet(pod_ip, 80);
                        return Contains(response, kPage);
                      }))
      << "GET http://" << pod_ip << "/ answered: " << response;

  auto exec = cri_->ExecSync(*container_id, {"echo", "hi"}, 10);
  ASSERT_TRUE(exec.ok()) << exec.status().ToString();
  EXPECT_EQ(exec->stdout_data, "hi\n");
  EXPECT_EQ(exec->exit_code, 0);
  auto failing = cri_->ExecSync(*container_id, {"sh", "-c", "echo oops >&2; exit 7"}, 10);
  ASSERT_TRUE(failing.ok()) << failing.status().ToString();
  EXPECT_EQ(failing->exit_code, 7);
  EXPECT_EQ(failing->stderr_data, "oops\n");

  // The container log, in CRI format.
  const std::string log_file = log_dir + "/httpd/0.log";
  const std::regex cri_line(R"(^\S+ stdout F mk8s-started$)");
  std::string log_text;
  EXPECT_TRUE(WaitFor(std::chrono::seconds(10),
                      [&] {
                        std::ifstream in(log_file);
                        std::string line;
                        while (std::getline(in, line)) {
                          log_text += line + "\n";
                          if (std::regex_match(line, cri_line)) return true;
                        }
                        return false;
                      }))
      << log_file << " holds: " << log_text;

  // Streaming endpoints (the kubelet's API proxies to them) and stats.
  cri::ExecRequest exec_request;
  exec_request.set_container_id(*container_id);
  exec_request.add_cmd("sh");
  exec_request.set_stdout(true);
  auto exec_url = cri_->Exec(exec_request);
  ASSERT_TRUE(exec_url.ok()) << exec_url.status().ToString();
  EXPECT_EQ(exec_url->rfind("http://127.0.0.1:", 0), 0u) << *exec_url;
  auto forward_url = cri_->PortForward(*sandbox_id, {80});
  ASSERT_TRUE(forward_url.ok()) << forward_url.status().ToString();
  EXPECT_EQ(forward_url->rfind("http://127.0.0.1:", 0), 0u) << *forward_url;
  auto stats = cri_->ContainerStats(*container_id);
  ASSERT_TRUE(stats.ok()) << stats.status().ToString();
  EXPECT_EQ(stats->attributes().id(), *container_id);
  auto fs_info = cri_->ImageFsInfo();
  ASSERT_TRUE(fs_info.ok()) << fs_info.status().ToString();
  EXPECT_FALSE(fs_info->image_filesystems().empty());

  // Kill containerd: the supervisor restarts it; the pod keeps running.
  const pid_t old_pid = containerd_->pid();
  ASSERT_GT(old_pid, 0);
  t0 = SteadyClock::now();
  ASSERT_EQ(::kill(old_pid, SIGKILL), 0);
  EXPECT_TRUE(WaitFor(std::chrono::seconds(60), [&] {
    return containerd_->restarts() >= 1 && containerd_->pid() != old_pid &&
           cri_->ConditionTrue("RuntimeReady");
  })) << "containerd was not restarted";
  Timing("containerd-restart", MsSince(t0));
  auto listed = cri_->ListContainers();
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].id(), *container_id);
  EXPECT_EQ((*listed)[0].state(), cri::CONTAINER_RUNNING);
  EXPECT_TRUE(WaitFor(std::chrono::seconds(10), [&] {
    return Contains(HttpGet(pod_ip, 80), kPage);
  })) << "the pod stopped answering after the containerd restart";
  auto exec2 = cri_->ExecSync(*container_id, {"echo", "hi"}, 10);
  ASSERT_TRUE(exec2.ok()) << exec2.status().ToString();
  EXPECT_EQ(exec2->stdout_data, "hi\n");

  // mk8sd going away without Stop() (as after a kill -9) leaves containerd running in its own
  // session; the next supervisor for the same folder adopts it instead of restarting it.
  const pid_t running_pid = containerd_->pid();
  EXPECT_NE(::getsid(running_pid), ::getsid(0)) << "containerd must run in its own session";
  containerd_.reset();
  EXPECT_TRUE(ProcessAlive(running_pid)) << "the supervisor's destructor must not stop containerd";
  t0 = SteadyClock::now();
  auto adopted = Containerd::Start(options);
  ASSERT_TRUE(adopted.ok()) << adopted.status().ToString();
  containerd_ = std::move(*adopted);
  Timing("containerd-adopt", MsSince(t0));
  EXPECT_TRUE(containerd_->adopted());
  EXPECT_EQ(containerd_->pid(), running_pid);
  auto after_adopt = cri_->ContainerStatus(*container_id);
  ASSERT_TRUE(after_adopt.ok()) << after_adopt.status().ToString();
  EXPECT_EQ(after_adopt->state(), cri::CONTAINER_RUNNING);

  // A changed config (here: the log level) restarts the adopted containerd; the pod stays.
  containerd_.reset();
  options.log_level = "debug";
  t0 = SteadyClock::now();
  auto reconfigured = Containerd::Start(options);
  ASSERT_TRUE(reconfigured.ok()) << reconfigured.status().ToString();
  containerd_ = std::move(*reconfigured);
  Timing("containerd-reconfigure", MsSince(t0));
  EXPECT_FALSE(containerd_->adopted());
  EXPECT_NE(containerd_->pid(), running_pid);
  EXPECT_FALSE(ProcessAlive(running_pid));
  auto after_restart = cri_->ContainerStatus(*container_id);
  ASSERT_TRUE(after_restart.ok()) << after_restart.status().ToString();
  EXPECT_EQ(after_restart->state(), cri::CONTAINER_RUNNING);
  EXPECT_TRUE(
      WaitFor(std::chrono::seconds(10), [&] { return Contains(HttpGet(pod_ip, 80), kPage); }));

  // Teardown.
  t0 = SteadyClock::now();
  EXPECT_TRUE(cri_->StopContainer(*container_id, 5).ok());
  EXPECT_TRUE(cri_->RemoveContainer(*container_id).ok());
  EXPECT_TRUE(cri_->StopPodSandbox(*sandbox_id).ok());
  EXPECT_TRUE(cri_->RemovePodSandbox(*sandbox_id).ok());
  Timing("teardown", MsSince(t0));
  EXPECT_TRUE(cri_->RemovePodSandbox(*sandbox_id).ok()) << "RemovePodSandbox must be idempotent";
  EXPECT_FALSE(fs::exists(ipam_dir + "/mk8s-e2e/" + pod_ip)) << "IPAM lease not released";
  auto pods = cri_->ListPodSandbox();
  ASSERT_TRUE(pods.ok());
  EXPECT_TRUE(pods->empty());
  clean_ = true;

  const pid_t pid = containerd_->pid();
  t0 = SteadyClock::now();
  EXPECT_TRUE(containerd_->Stop().ok());
  Timing("containerd-stop", MsSince(t0));
  EXPECT_FALSE(ProcessAlive(pid));
  EXPECT_FALSE(fs::exists(ContainerdPaths(options.state_dir).pid_file));
}

// `mk8s images import|ls` through a control server whose context names the containerd socket
// (what mk8sd wires when it runs the kubelet).
TEST_F(RuntimeE2E, ImagesThroughTheCli) {
  const std::string page = dir_ + "/index.html";
  std::ofstream(page) << kPage;
  const std::string tar = dir_ + "/httpd.tar";
  auto built =
      RunCommand({"/usr/bin/python3", MK8S_OCI_IMAGE_SCRIPT, "--name", "localhost/mk8s-test/cli:2",
                  "--busybox", "--file", page + ":/www/index.html", "-o", tar},
                 std::chrono::seconds(60));
  ASSERT_TRUE(built.ok() && built->exit_code == 0) << (built.ok() ? built->output : "");

  ContainerdOptions options;
  options.state_dir = dir_ + "/containerd";
  options.cni_conf_dir = dir_ + "/cni/net.d";
  options.sandbox_image = PauseImageRef();
  auto containerd = Containerd::Start(options);
  ASSERT_TRUE(containerd.ok()) << containerd.status().ToString();
  containerd_ = std::move(*containerd);

  const StatePaths paths(dir_);
  control::ControlContext context;
  context.state_dir = dir_;
  context.containerd_socket = containerd_->socket();
  auto server = control::ControlServer::Start(paths.socket, context);
  ASSERT_TRUE(server.ok()) << server.status().ToString();
  auto mk8s = [&](std::vector<std::string> args) {
    args.insert(args.begin(), {MK8S_CLI_BINARY, "--state-dir", dir_});
    auto r = RunCommand(args, std::chrono::seconds(120));
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : CommandOutput{-1, r.status().message()};
  };

  auto t0 = SteadyClock::now();
  auto imported = mk8s({"images", "import", tar});
  Timing("mk8s-images-import", MsSince(t0));
  EXPECT_EQ(imported.exit_code, 0) << imported.output;
  EXPECT_TRUE(Contains(imported.output, "Imported localhost/mk8s-test/cli:2")) << imported.output;
  auto listed = mk8s({"images", "ls"});
  std::printf("mk8s images ls:\n%s", listed.output.c_str());
  EXPECT_EQ(listed.exit_code, 0) << listed.output;
  EXPECT_TRUE(Contains(listed.output, "IMAGE")) << listed.output;
  EXPECT_TRUE(Contains(listed.output, "localhost/mk8s-test/cli:2")) << listed.output;

  // A file that is not an image: one line with ctr's reason, exit 1.
  auto bad = mk8s({"images", "import", page});
  std::printf("mk8s images import <not a tarball>: %s", bad.output.c_str());
  EXPECT_EQ(bad.exit_code, 1) << bad.output;
  EXPECT_TRUE(Contains(bad.output, "image import of")) << bad.output;
  auto missing = mk8s({"images", "import", dir_ + "/nope.tar"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(Contains(missing.output, "is not a file")) << missing.output;
  (*server)->Shutdown();

  // A daemon without a container runtime says so.
  context.containerd_socket.clear();
  auto bare = control::ControlServer::Start(paths.socket, context);
  ASSERT_TRUE(bare.ok()) << bare.status().ToString();
  auto none = mk8s({"images", "ls"});
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_TRUE(Contains(none.output, "runs no container runtime")) << none.output;
  (*bare)->Shutdown();
  clean_ = true;
}

}  // namespace
}  // namespace mk8s::runtime
