#include "daemon_process.h"

#include <fcntl.h>
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "mk8s/v1/control.grpc.pb.h"

extern char** environ;

namespace mk8s::testing {

TempDir::TempDir(const std::string& prefix) {
  const char* base = std::getenv("TMPDIR");
  std::string pattern = std::string(base && *base ? base : "/tmp") + "/" + prefix + "-XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (mkdtemp(buffer.data()) == nullptr) std::abort();
  path_ = buffer.data();
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string DaemonBinary() {
  if (const char* bin = std::getenv("MK8SD_BIN"); bin != nullptr && *bin != '\0') return bin;
  return MK8S_TEST_MK8SD_BIN;
}

DaemonProcess::DaemonProcess(std::string state_dir, std::vector<std::string> extra_args)
    : state_dir_(std::move(state_dir)), extra_args_(std::move(extra_args)) {}

DaemonProcess::~DaemonProcess() {
  if (pid_ > 0) Kill9();
}

bool DaemonProcess::Start(std::chrono::milliseconds deadline) {
  std::vector<std::string> args = {DaemonBinary(), "--state-dir", state_dir_, "--no-log-stderr"};
  args.insert(args.end(), extra_args_.begin(), extra_args_.end());
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);

  std::filesystem::create_directories(state_dir_);
  // Side-by-side daemons: the API server takes any free port unless the caller chose one.
  setenv("MK8S_APISERVER_PORT", "0", /*overwrite=*/0);
  // The control plane only, unless the caller asks for more (`--components` in extra_args wins
  // over the environment): the daemon's default components include the kubelet and kube-proxy,
  // which would start containerd, pods and iptables rules in the host's network namespace when
  // a test or benchmark is run by hand outside ctest.
  setenv("MK8S_COMPONENTS", "apiserver,controllers,scheduler", /*overwrite=*/0);
  const std::string output = state_dir_ + "/daemon.out";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, output.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, 1, 2);
  int rc = posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    pid_ = -1;
    return false;
  }

  auto stub = mk8s::v1::Control::NewStub(Channel());
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < until) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {  // exited early
      pid_ = -1;
      return false;
    }
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::milliseconds(500));
    mk8s::v1::StatusRequest request;
    mk8s::v1::StatusResponse reply;
    if (stub->Status(&context, request, &reply).ok() && reply.ready()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));  // poll interval, not a wait
  }
  return false;
}

void DaemonProcess::Kill9() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
}

int DaemonProcess::Terminate(std::chrono::milliseconds deadline) {
  if (pid_ <= 0) return -1;
  kill(pid_, SIGTERM);
  const auto until = std::chrono::steady_clock::now() + deadline;
  int status = 0;
  while (std::chrono::steady_clock::now() < until) {
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  Kill9();
  return -1;
}

std::shared_ptr<grpc::Channel> DaemonProcess::Channel() const {
  return grpc::CreateChannel("unix:" + socket(), grpc::InsecureChannelCredentials());
}

long DaemonProcess::ResidentBytes() const {
  std::ifstream status("/proc/" + std::to_string(pid_) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6) * 1024;
  }
  return 0;
}

std::string DaemonProcess::OutputTail() const {
  std::ifstream file(state_dir_ + "/daemon.out");
  std::stringstream text;
  text << file.rdbuf();
  std::string all = text.str();
  return all.size() > 2000 ? all.substr(all.size() - 2000) : all;
}

}  // namespace mk8s::testing
