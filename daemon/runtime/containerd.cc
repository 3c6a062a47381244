#include "runtime/containerd.h"

#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <vector>

#include "runtime/containerd_config.h"
#include "runtime/cri_client.h"
#include "runtime/process_util.h"

namespace mk8s::runtime {
namespace {

namespace fs = std::filesystem;
using SteadyClock = std::chrono::steady_clock;

constexpr std::chrono::seconds kStableUptime{30};  // a run this long resets the back-off
constexpr int kLogTailLines = 15;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return "";
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

pid_t ReadPidFile(const std::string& path) {
  try {
    const std::string text = ReadFile(path);
    return text.empty() ? -1 : static_cast<pid_t>(std::stol(text));
  } catch (const std::exception&) {
    return -1;
  }
}

// pid runs `<...>containerd --config <config_file>`: not a recycled pid of something else.
bool IsOurContainerd(pid_t pid, const std::string& config_file) {
  const auto argv = ProcessCmdline(pid);
  if (argv.empty() || argv[0].find("containerd") == std::string::npos) return false;
  return std::find(argv.begin(), argv.end(), config_file) != argv.end();
}

// Waits until the process behind pidfd exits or `timeout` passes; true when it exited.
bool WaitExit(int pidfd, std::chrono::milliseconds timeout) {
  if (pidfd < 0) return true;
  pollfd pfd{pidfd, POLLIN, 0};
  const auto deadline = SteadyClock::now() + timeout;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    const int n = ::poll(&pfd, 1, static_cast<int>(std::max<int64_t>(left.count(), 0)));
    if (n > 0) return true;
    if (n == 0) return false;
    if (errno != EINTR) return false;
  }
}

// SIGTERM, up to `grace`, then SIGKILL; reaps when own_child. True when the process is gone.
bool Terminate(pid_t pid, bool own_child, std::chrono::milliseconds grace) {
  const int pidfd = PidfdOpen(pid);
  bool gone = pidfd < 0;
  if (!gone) {
    ::kill(pid, SIGTERM);
    gone = WaitExit(pidfd, grace);
    if (!gone) {
      spdlog::warn("containerd (pid {}) did not exit within {} ms of SIGTERM: sending SIGKILL", pid,
                   grace.count());
      ::kill(pid, SIGKILL);
      gone = WaitExit(pidfd, std::chrono::seconds(10));
    }
    ::close(pidfd);
  }
  if (own_child) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
  }
  return gone;
}

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return "exited with code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status))
    return std::string("was killed by signal ") + strsignal(WTERMSIG(status));
  return "stopped";
}

}  // namespace

namespace {

std::string ExecutableDir() {
  std::error_code ec;
  const auto exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? "" : exe.parent_path().string();
}

// The first of `relative` (to this executable's folder) then `system` that passes `usable`;
// system.front() when none does.
std::string FirstFound(const std::vector<std::string>& relative,
                       const std::vector<std::string>& system, bool directory) {
  std::vector<std::string> candidates;
  if (const std::string dir = ExecutableDir(); !dir.empty()) {
    for (const auto& r : relative) candidates.push_back(dir + "/" + r);
  }
  candidates.insert(candidates.end(), system.begin(), system.end());
  for (const auto& path : candidates) {
    std::error_code ec;
    const bool ok = directory
                        ? fs::is_directory(path, ec)
                        : (fs::is_regular_file(path, ec) && ::access(path.c_str(), X_OK) == 0);
    if (ok) return fs::path(path).lexically_normal().string();
  }
  return system.front();
}

}  // namespace

std::string DefaultContainerdBinary() {
  return FirstFound({"containerd"}, {"/usr/bin/containerd", "/usr/local/bin/containerd"}, false);
}

std::string DefaultCtrBinary() {
  return FirstFound({"ctr"}, {"/usr/bin/ctr", "/usr/local/bin/ctr"}, false);
}

std::string DefaultRuncBinary() {
  return FirstFound(
      {"../sbin/runc", "runc"},
      {"/usr/sbin/runc", "/usr/bin/runc", "/usr/local/sbin/runc", "/usr/local/bin/runc"}, false);
}

std::string DefaultCniBinDir() {
  return FirstFound({"../lib/cni"}, {"/usr/lib/cni", "/opt/cni/bin"}, true);
}

Status WriteCniConflist(const std::string& conf_dir, const CniNetworkOptions& options) {
  auto text = CniConflist(options);
  if (!text.ok()) return text.status();
  std::error_code ec;
  fs::create_directories(conf_dir, ec);
  if (ec) return Status(Code::kInternal, "cannot create " + conf_dir + ": " + ec.message());
  return WriteFileAtomic(conf_dir + "/10-mk8s.conflist", *text);
}

namespace {

constexpr char kMirrorMarker[] = "# Written by mk8sd.";

// A registry host[:port] as containerd names its certs.d folder: letters, digits, '.', '-', '_',
// ':' and IPv6 brackets; never "." or "..".
bool ValidRegistryHost(const std::string& host) {
  if (host.empty() || host == "." || host == "..") return false;
  return std::all_of(host.begin(), host.end(), [](unsigned char c) {
    return std::isalnum(c) != 0 || c == '.' || c == '-' || c == '_' || c == ':' || c == '[' ||
           c == ']';
  });
}

// Removes the mk8sd-written hosts.toml folders of certs_d whose host is not in `keep`.
void RemoveStaleMirrors(const std::string& certs_d,
                        const std::map<std::string, std::string>& keep) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(certs_d, ec)) {
    const std::string host = entry.path().filename().string();
    if (keep.count(host) != 0) continue;
    const std::string file = entry.path().string() + "/hosts.toml";
    if (ReadFile(file).rfind(kMirrorMarker, 0) != 0) continue;  // not ours
    std::error_code remove_error;
    fs::remove(file, remove_error);
    fs::remove(entry.path(), remove_error);  // only when empty
    spdlog::info("containerd: removed the registry mirror for {}", host);
  }
}

}  // namespace

Status WriteRegistryMirror(const std::string& certs_d, const std::string& host,
                           const std::string& server_url) {
  if (!ValidRegistryHost(host)) {
    return Status(Code::kInvalidArgument, "registry mirror: bad registry host '" + host + "'");
  }
  auto text = RegistryHostsToml(server_url);
  if (!text.ok()) return text.status();
  const std::string dir = certs_d + "/" + host;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status(Code::kInternal, "cannot create " + dir + ": " + ec.message());
  return WriteFileAtomic(dir + "/hosts.toml", *text);
}

Result<std::pair<std::string, std::string>> ParseRegistryMirror(const std::string& value) {
  const size_t equals = value.find('=');
  const std::string host = value.substr(0, equals);
  const std::string url = equals == std::string::npos ? "" : value.substr(equals + 1);
  const std::string example = " (e.g. localhost:32000=http://127.0.0.1:32000)";
  if (equals == std::string::npos) {
    return Status(Code::kInvalidArgument,
                  "registry mirror '" + value + "' is not HOST=URL" + example);
  }
  if (!ValidRegistryHost(host)) {
    return Status(Code::kInvalidArgument, "registry mirror '" + value + "': '" + host +
                                              "' is not a registry host[:port]" + example);
  }
  if (url.find_first_of(" \t\n\"'") != std::string::npos || !RegistryHostsToml(url).ok()) {
    return Status(Code::kInvalidArgument, "registry mirror '" + value + "': '" + url +
                                              "' is not an http:// or https:// URL" + example);
  }
  return std::pair{host, url};
}

Containerd::Containerd(ContainerdOptions options)
    : options_(std::move(options)),
      socket_(ContainerdPaths(options_.state_dir).socket),
      pid_file_(ContainerdPaths(options_.state_dir).pid_file),
      config_file_(ContainerdPaths(options_.state_dir).config_file) {}

Result<std::unique_ptr<Containerd>> Containerd::Start(ContainerdOptions options) {
  if (options.state_dir.empty() || options.state_dir[0] != '/') {
    return Status(
        Code::kInvalidArgument,
        "containerd: the state folder must be an absolute path, got '" + options.state_dir + "'");
  }
  if (options.runc_binary.empty()) options.runc_binary = DefaultRuncBinary();
  if (options.containerd_binary.empty()) options.containerd_binary = DefaultContainerdBinary();
  if (options.cni_bin_dir.empty()) options.cni_bin_dir = DefaultCniBinDir();
  const ContainerdPaths paths(options.state_dir);
  if (options.log_file.empty()) options.log_file = paths.log_file;
  for (const auto& [binary, package] :
       {std::pair{options.containerd_binary, "containerd"}, {options.runc_binary, "runc"}}) {
    if (::access(binary.c_str(), X_OK) != 0) {
      return Status(Code::kNotFound, binary + " not found or not executable: install the " +
                                         package + " package (apt-get install " + package + ")");
    }
  }
  ContainerdConfigOptions config_options;
  config_options.state_dir = options.state_dir;
  config_options.cni_bin_dir = options.cni_bin_dir;
  config_options.cni_conf_dir = options.cni_conf_dir;
  config_options.runc_binary = options.runc_binary;
  config_options.sandbox_image = options.sandbox_image;
  config_options.log_level = options.log_level;
  auto config = ContainerdConfigToml(config_options);
  if (!config.ok()) return config.status();

  std::error_code ec;
  for (const auto& dir : {paths.dir, options.cni_conf_dir, paths.certs_d,
                          fs::path(options.log_file).parent_path().string()}) {
    fs::create_directories(dir, ec);
    if (ec) return Status(Code::kInternal, "cannot create " + dir + ": " + ec.message());
  }
  ::chmod(paths.dir.c_str(), 0711);
  for (const auto& [host, url] : options.registry_mirrors) {
    if (auto st = WriteRegistryMirror(paths.certs_d, host, url); !st.ok()) return st;
  }
  RemoveStaleMirrors(paths.certs_d, options.registry_mirrors);

  std::unique_ptr<Containerd> self(new Containerd(options));
  const bool config_changed = ReadFile(paths.config_file) != *config;
  if (config_changed) {
    if (auto st = WriteFileAtomic(paths.config_file, *config, 0600); !st.ok()) return st;
  }
  // A containerd of an earlier mk8sd with the same config is adopted; one with another config is
  // restarted (its pods survive: they belong to their shims).
  if (!config_changed && self->TryAdopt()) {
    self->adopted_ = true;
  } else {
    const pid_t old = ReadPidFile(paths.pid_file);
    if (old > 0 && ProcessAlive(old) && IsOurContainerd(old, paths.config_file)) {
      spdlog::info("containerd: restarting pid {} for a changed config", old);
      Terminate(old, /*own_child=*/false, std::chrono::seconds(10));
    }
    if (auto st = self->Launch(options.ready_timeout); !st.ok()) return st;
  }
  self->stop_event_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (self->stop_event_ < 0) {
    return Status(Code::kInternal, std::string("eventfd: ") + std::strerror(errno));
  }
  self->monitor_ = std::thread([raw = self.get()] { raw->Monitor(); });
  return self;
}

Containerd::~Containerd() {
  StopMonitor();
  if (stop_event_ >= 0) ::close(stop_event_);
}

pid_t Containerd::pid() const {
  std::lock_guard lock(mu_);
  return pid_;
}

void Containerd::SetPid(pid_t pid, bool own_child) {
  std::lock_guard lock(mu_);
  pid_ = pid;
  own_child_ = own_child;
}

bool Containerd::TryAdopt() {
  const pid_t pid = ReadPidFile(pid_file_);
  if (pid <= 0 || !ProcessAlive(pid) || !IsOurContainerd(pid, config_file_)) return false;
  if (auto st = WaitReady(pid, /*own_child=*/false, options_.ready_timeout); !st.ok()) {
    spdlog::warn("containerd: pid {} of an earlier mk8sd does not answer ({}): replacing it", pid,
                 st.message());
    Terminate(pid, /*own_child=*/false, std::chrono::seconds(5));
    return false;
  }
  SetPid(pid, /*own_child=*/false);
  spdlog::info("containerd: adopted pid {} started by an earlier mk8sd ({})", pid, socket_);
  return true;
}

Status Containerd::Launch(std::chrono::seconds ready_timeout) {
  ::unlink(socket_.c_str());
  ::unlink((socket_ + ".ttrpc").c_str());
  const auto started = SteadyClock::now();
  auto pid =
      SpawnDetached({options_.containerd_binary, "--config", config_file_}, options_.log_file);
  if (!pid.ok()) return pid.status();
  SetPid(*pid, /*own_child=*/true);
  if (auto st = WriteFileAtomic(pid_file_, std::to_string(*pid) + "\n"); !st.ok()) {
    Terminate(*pid, true, std::chrono::seconds(5));
    return st;
  }
  if (auto st = WaitReady(*pid, /*own_child=*/true, ready_timeout); !st.ok()) return st;
  spdlog::info(
      "containerd: pid {} ready in {} ms ({})", *pid,
      std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - started).count(),
      socket_);
  return {};
}

Status Containerd::WaitReady(pid_t pid, bool own_child, std::chrono::seconds timeout) {
  auto client = CriClient::Connect(socket_);
  if (!client.ok()) return client.status();
  const auto deadline = SteadyClock::now() + timeout;
  auto pause = std::chrono::milliseconds(10);
  std::string last_error = "no answer yet";
  for (;;) {
    if (own_child) {
      int status = 0;
      if (::waitpid(pid, &status, WNOHANG) == pid) {
        {
          std::lock_guard lock(mu_);
          if (pid_ == pid) pid_ = -1;
        }
        return Status(Code::kUnavailable,
                      "containerd " + DescribeExit(status) + " while starting; last lines of " +
                          options_.log_file + ":\n" + FileTail(options_.log_file, kLogTailLines));
      }
    } else if (!ProcessAlive(pid)) {
      return Status(Code::kUnavailable, "containerd (pid " + std::to_string(pid) + ") is gone");
    }
    if (::access(socket_.c_str(), F_OK) == 0) {
      auto status = (*client)->Status();
      if (status.ok()) {
        for (const auto& c : status->status().conditions()) {
          if (c.type() == "RuntimeReady" && c.status()) return {};
          if (c.type() == "RuntimeReady") last_error = "RuntimeReady is false: " + c.message();
        }
      } else {
        last_error = status.status().message();
      }
    }
    if (stopping_.load()) return Status(Code::kUnavailable, "containerd: stopping");
    if (SteadyClock::now() >= deadline) {
      if (own_child) Terminate(pid, true, std::chrono::seconds(2));
      return Status(Code::kDeadlineExceeded,
                    "containerd did not become ready within " + std::to_string(timeout.count()) +
                        " s (" + last_error + "); last lines of " + options_.log_file + ":\n" +
                        FileTail(options_.log_file, kLogTailLines));
    }
    std::this_thread::sleep_for(pause);
    pause = std::min(pause * 2, std::chrono::milliseconds(200));
  }
}

void Containerd::Monitor() {
  auto next_backoff = options_.restart_backoff_initial;  // doubles while restarts do not last
  auto up_since = SteadyClock::now();
  for (;;) {
    pid_t pid;
    bool own;
    {
      std::lock_guard lock(mu_);
      pid = pid_;
      own = own_child_;
    }
    const int pidfd = pid > 0 ? PidfdOpen(pid) : -1;
    if (pidfd >= 0) {
      pollfd fds[2] = {{pidfd, POLLIN, 0}, {stop_event_, POLLIN, 0}};
      int n;
      do {
        n = ::poll(fds, 2, -1);
      } while (n < 0 && errno == EINTR);
      ::close(pidfd);
      if (stopping_.load() || (fds[1].revents & POLLIN) != 0) return;
    }
    if (stopping_.load()) return;
    std::string how = "is gone";
    if (own && pid > 0) {
      int status = 0;
      if (::waitpid(pid, &status, 0) == pid) how = DescribeExit(status);
    }
    if (SteadyClock::now() - up_since >= kStableUptime) {
      next_backoff = options_.restart_backoff_initial;
    }
    auto backoff = next_backoff;
    next_backoff = std::min(next_backoff * 2, options_.restart_backoff_max);
    spdlog::warn("containerd (pid {}) {}: restarting in {} ms; last lines of {}:\n{}", pid, how,
                 backoff.count(), options_.log_file, FileTail(options_.log_file, 5));
    // Wait out the back-off (or a stop), then relaunch until it works or we are stopped.
    for (;;) {
      pollfd stop{stop_event_, POLLIN, 0};
      if (::poll(&stop, 1, static_cast<int>(backoff.count())) > 0 || stopping_.load()) return;
      const auto restarted = SteadyClock::now();
      auto st = Launch(options_.ready_timeout);
      if (st.ok()) {
        restarts_.fetch_add(1);
        up_since = SteadyClock::now();
        spdlog::info(
            "containerd restarted (pid {}) in {} ms", this->pid(),
            std::chrono::duration_cast<std::chrono::milliseconds>(up_since - restarted).count());
        break;
      }
      if (stopping_.load()) return;
      backoff = std::min(backoff * 2, options_.restart_backoff_max);
      spdlog::error("containerd restart failed: {}; retrying in {} ms", st.message(),
                    backoff.count());
    }
  }
}

void Containerd::StopMonitor() {
  stopping_.store(true);
  if (stop_event_ >= 0) {
    const uint64_t one = 1;
    (void)!::write(stop_event_, &one, sizeof(one));
  }
  if (monitor_.joinable()) monitor_.join();
}

Status Containerd::Stop(std::chrono::seconds grace) {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return {};
    stopped_ = true;
  }
  StopMonitor();
  pid_t pid;
  bool own;
  {
    std::lock_guard lock(mu_);
    pid = pid_;
    own = own_child_;
    pid_ = -1;
  }
  Status result;
  if (pid > 0 && (own || IsOurContainerd(pid, config_file_))) {
    const auto started = SteadyClock::now();
    if (!Terminate(pid, own, grace)) {
      result = Status(Code::kInternal,
                      "containerd (pid " + std::to_string(pid) + ") did not exit after SIGKILL");
    } else {
      spdlog::info(
          "containerd (pid {}) stopped in {} ms", pid,
          std::chrono::duration_cast<std::chrono::milliseconds>(SteadyClock::now() - started)
              .count());
    }
  }
  ::unlink(pid_file_.c_str());
  return result;
}

}  // namespace mk8s::runtime
