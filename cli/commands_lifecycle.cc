// mk8s start / stop / status / reset: the daemon's lifecycle as the user sees it.
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "cli/commands.h"
#include "cli/daemon_client.h"
#include "cli/format.h"
#include "cli/os.h"
#include "common/paths.h"

namespace mk8s::cli {
namespace {

using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

constexpr std::chrono::milliseconds kPollInterval{100};
constexpr std::chrono::milliseconds kStatusPollInterval{500};
constexpr std::chrono::milliseconds kProbeDeadline{2000};
constexpr size_t kLogTailLines = 20;
constexpr const char* kDaemonName = "mk8sd";
constexpr const char* kUnit = "mk8sd.service";
// The state folder the installed unit runs mk8sd with (daemon/mk8sd.service.in).
constexpr const char* kUnitStateDir = "/var/lib/mk8s";

// True when mk8sd should be started and stopped through systemd: systemd is the init system,
// the mk8sd unit is installed, the state folder is the unit's, and MK8S_NO_SYSTEMD is unset.
// Otherwise mk8s launches and stops the daemon itself (containers, tests, other state folders).
bool UseSystemd(const StatePaths& paths) {
  if (std::getenv("MK8S_NO_SYSTEMD") != nullptr) return false;
  if (paths.state_dir != kUnitStateDir || !fs::is_directory("/run/systemd/system")) return false;
  for (const char* dir :
       {"/etc/systemd/system", "/run/systemd/system", "/usr/local/lib/systemd/system",
        "/lib/systemd/system", "/usr/lib/systemd/system"}) {
    if (fs::exists(std::string(dir) + "/" + kUnit)) return true;
  }
  return false;
}

// `systemctl VERB mk8sd.service` (which waits for the job); kExitOk or one printed error line.
int Systemctl(const std::string& verb) {
  std::string stderr_text;
  const Result<int> code = RunAndWait({"systemctl", verb, kUnit}, &stderr_text);
  if (!code.ok()) return PrintError("cannot run systemctl: " + code.status().message());
  if (*code == 0) return kExitOk;
  for (char& c : stderr_text) {
    if (c == '\n') c = ' ';
  }
  return PrintError("systemctl " + verb + " " + kUnit + " failed: " + stderr_text +
                    " Check 'journalctl -u mk8sd'.");
}

// "Starting mk8s... 3s" rewritten in place on a terminal; silent otherwise. Clears itself when
// destroyed, so scope it to the wait loop and print results after it.
class ProgressLine {
 public:
  explicit ProgressLine(std::string label)
      : label_(std::move(label)), enabled_(IsTerminal(STDERR_FILENO)) {}
  ~ProgressLine() {
    if (shown_) std::cerr << "\r\033[K" << std::flush;
  }
  void Update() {
    if (!enabled_) return;
    const auto elapsed =
        std::chrono::duration_cast<std::chrono::seconds>(Clock::now() - started_).count();
    std::cerr << '\r' << label_ << "... " << elapsed << "s" << std::flush;
    shown_ = true;
  }

 private:
  std::string label_;
  bool enabled_;
  bool shown_ = false;
  Clock::time_point started_ = Clock::now();
};

// Polls Status until the daemon reports ready or `deadline` passes. Returns kExitOk when ready;
// otherwise prints one line (not running, or which components are not ready) and returns 1.
// Keeps polling while the daemon is not (yet) answering.
int WaitUntilReady(const std::string& state_dir, Clock::time_point deadline, int timeout_seconds,
                   v1::StatusResponse* last) {
  CallStatus call;
  {
    ProgressLine progress("Waiting for mk8s to be ready");
    for (;;) {
      DaemonClient client(state_dir);
      client.set_deadline(kProbeDeadline);
      call = client.Status(last);
      if (call.ok() && last->ready()) break;
      const bool retryable = call.ok() || call.code == CallCode::kNotRunning ||
                             call.code == CallCode::kDeadlineExceeded;
      if (!retryable || Clock::now() >= deadline) break;
      progress.Update();
      std::this_thread::sleep_for(kStatusPollInterval);
    }
  }
  if (call.ok() && last->ready()) return kExitOk;
  if (!call.ok()) return PrintError(call.message);
  return PrintError("mk8s is not ready after " + std::to_string(timeout_seconds) +
                    "s: " + NotReadySummary(*last));
}

// Says why a just-spawned daemon exited: its own stderr (for example "state folder in use")
// first, as one line, then the end of its log.
int ReportEarlyExit(const StatePaths& paths, int exit_code, const std::string& stderr_file,
                    std::streamoff stderr_offset) {
  std::string stderr_text;
  {
    std::ifstream file(stderr_file);
    file.seekg(stderr_offset);
    for (std::string line; std::getline(file, line);) {
      if (!line.empty()) stderr_text = line;  // the last non-empty line is the reason
    }
  }
  std::string message =
      "mk8sd exited during start-up (exit code " + std::to_string(exit_code) + ")";
  if (!stderr_text.empty()) message += ": " + stderr_text;
  PrintError(message);
  const std::vector<std::string> tail = TailLines(paths.log_file, kLogTailLines);
  if (!tail.empty()) {
    std::cerr << "Last lines of " << paths.log_file << ":\n";
    for (const std::string& line : tail) std::cerr << "  " << line << '\n';
  }
  return kExitFailure;
}

// Asks the daemon to stop and waits for its process to end. `quiet` skips the progress notices
// ("mk8s is not running", "Stopped."). Returns an exit code; errors are printed.
int StopDaemon(const StatePaths& paths, int timeout_seconds, bool quiet) {
  if (UseSystemd(paths)) {
    if (const int code = Systemctl("stop"); code != kExitOk) return code;
    if (!quiet) std::cout << "Stopped.\n";
    return kExitOk;
  }
  const std::optional<pid_t> pid = ReadPidFile(paths.pid_file);
  DaemonClient client(paths.state_dir);
  const CallStatus call = client.Stop();
  if (call.code == CallCode::kNotRunning) {
    if (pid && ProcessAliveNamed(*pid, kDaemonName)) {
      return PrintError("mk8sd (pid " + std::to_string(*pid) +
                        ") is running but not answering on " + paths.socket +
                        ": wait for it to start, or end it with 'kill " + std::to_string(*pid) +
                        "'");
    }
    if (!quiet) std::cout << "mk8s is not running\n";
    return kExitOk;
  }
  if (!call.ok()) return PrintError(call.message);

  const auto deadline = Clock::now() + std::chrono::seconds(timeout_seconds);
  const auto stopped = [&] {
    if (pid) return !ProcessAliveNamed(*pid, kDaemonName);
    return !fs::exists(paths.socket);  // no pid file: the socket goes away on clean shutdown
  };
  bool done = false;
  {
    ProgressLine progress("Stopping mk8s");
    while (!(done = stopped()) && Clock::now() < deadline) {
      progress.Update();
      std::this_thread::sleep_for(kPollInterval);
    }
  }
  if (!done) {
    return PrintError("mk8sd is still shutting down after " + std::to_string(timeout_seconds) +
                      "s: check " + paths.log_file +
                      (pid ? ", or end it with 'kill " + std::to_string(*pid) + "'" : ""));
  }
  if (!quiet) std::cout << "Stopped.\n";
  return kExitOk;
}

// Reads one answer from the terminal; true for y/yes (any case).
bool Confirm(const std::string& question) {
  std::cout << question << " [y/N] " << std::flush;
  std::string answer;
  if (!std::getline(std::cin, answer)) return false;
  return answer == "y" || answer == "Y" || answer == "yes" || answer == "Yes" || answer == "YES";
}

// `mk8s start` when the unit is installed: systemctl starts it, then we wait for the socket
// (and readiness with --wait-ready) as for a directly launched daemon.
int StartWithSystemd(const StatePaths& paths, const StartOptions& options,
                     Clock::time_point deadline) {
  if (const int code = Systemctl("start"); code != kExitOk) return code;
  CallStatus call;
  {
    ProgressLine progress("Starting mk8s");
    for (;;) {
      DaemonClient probe(paths.state_dir);
      probe.set_deadline(kProbeDeadline);
      v1::VersionResponse version;
      call = probe.Version(&version);
      if (call.ok() || call.code == CallCode::kPermissionDenied || Clock::now() >= deadline) break;
      progress.Update();
      std::this_thread::sleep_for(kPollInterval);
    }
  }
  if (!call.ok()) {
    return PrintError(call.code == CallCode::kPermissionDenied
                          ? call.message
                          : std::string(kUnit) + " did not answer on " + paths.socket + " within " +
                                std::to_string(options.timeout_seconds) +
                                "s: check 'systemctl status mk8sd' and 'journalctl -u mk8sd'");
  }
  if (options.wait_ready) {
    v1::StatusResponse status;
    if (const int code =
            WaitUntilReady(paths.state_dir, deadline, options.timeout_seconds, &status);
        code != kExitOk) {
      return code;
    }
  }
  std::cout << "Started mk8s (" << kUnit << ")\n";
  return kExitOk;
}

}  // namespace

int RunStart(const GlobalOptions& global, const StartOptions& options) {
  const StatePaths paths(global.state_dir);
  const auto deadline = Clock::now() + std::chrono::seconds(options.timeout_seconds);
  {
    DaemonClient probe(paths.state_dir);
    probe.set_deadline(kProbeDeadline);
    v1::VersionResponse version;
    const CallStatus call = probe.Version(&version);
    if (call.ok()) {
      std::cout << "mk8s is already running\n";
      if (!options.wait_ready) return kExitOk;
      v1::StatusResponse status;
      return WaitUntilReady(paths.state_dir, deadline, options.timeout_seconds, &status);
    }
    if (call.code != CallCode::kNotRunning) return PrintError(call.message);
  }

  if (UseSystemd(paths)) return StartWithSystemd(paths, options, deadline);

  const std::string binary = FindDaemonBinary();
  if (binary.empty()) {
    return PrintError(
        "cannot find mk8sd next to mk8s or in PATH: reinstall mk8s, or set MK8SD_BIN");
  }
  std::error_code error;
  fs::create_directories(paths.log_dir, error);
  if (error) {
    return PrintError("cannot create " + paths.log_dir + ": " + error.message() +
                      ": run as root or pick another --state-dir");
  }
  // The daemon logs to its own file; its stderr only carries start-up failures and crashes.
  const std::string stderr_file = paths.log_dir + "/mk8sd.stderr";
  const std::streamoff stderr_offset =
      fs::exists(stderr_file) ? static_cast<std::streamoff>(fs::file_size(stderr_file, error)) : 0;
  Result<pid_t> child =
      SpawnDetached({binary, "--state-dir", paths.state_dir, "--no-log-stderr"}, stderr_file);
  if (!child.ok()) return PrintError("cannot start mk8sd: " + child.status().message());

  std::optional<int> exit_code;
  CallStatus call;
  {
    ProgressLine progress("Starting mk8s");
    for (;;) {
      if ((exit_code = ChildExitCode(*child))) break;
      DaemonClient probe(paths.state_dir);
      probe.set_deadline(kProbeDeadline);
      v1::VersionResponse version;
      call = probe.Version(&version);
      if (call.ok() || call.code == CallCode::kPermissionDenied || Clock::now() >= deadline) break;
      progress.Update();
      std::this_thread::sleep_for(kPollInterval);
    }
  }
  if (exit_code) return ReportEarlyExit(paths, *exit_code, stderr_file, stderr_offset);
  if (call.code == CallCode::kPermissionDenied) return PrintError(call.message);
  if (!call.ok()) {
    return PrintError("mk8sd (pid " + std::to_string(*child) + ") did not answer on " +
                      paths.socket + " within " + std::to_string(options.timeout_seconds) +
                      "s: check " + paths.log_file);
  }
  if (options.wait_ready) {
    v1::StatusResponse status;
    if (const int code =
            WaitUntilReady(paths.state_dir, deadline, options.timeout_seconds, &status);
        code != kExitOk) {
      return code;
    }
  }
  std::cout << "Started mk8s (pid " << *child << ")\n";
  return kExitOk;
}

int RunStop(const GlobalOptions& global, const StopOptions& options) {
  const StatePaths paths(global.state_dir);
  return StopDaemon(paths, options.timeout_seconds, /*quiet=*/false);
}

int RunStatus(const GlobalOptions& global, const StatusOptions& options) {
  v1::StatusResponse status;
  if (options.wait_ready) {
    const auto deadline = Clock::now() + std::chrono::seconds(options.timeout_seconds);
    if (const int code =
            WaitUntilReady(global.state_dir, deadline, options.timeout_seconds, &status);
        code != kExitOk) {
      return code;
    }
  } else {
    DaemonClient client(global.state_dir);
    if (const CallStatus call = client.Status(&status); !call.ok()) return PrintError(call.message);
  }

  if (!options.addon.empty()) {
    for (const v1::AddonStatus& addon : status.addons()) {
      if (addon.name() == options.addon) {
        std::cout << (addon.enabled() ? "enabled" : "disabled") << '\n';
        return kExitOk;
      }
    }
    return PrintError("unknown addon '" + options.addon + "': 'mk8s status' lists the addons");
  }
  if (options.format == "yaml") {
    std::cout << FormatStatusYaml(status);
  } else if (options.format == "short") {
    std::cout << FormatStatusShort(status);
  } else {
    std::cout << FormatStatusPretty(status);
  }
  return kExitOk;
}

int RunReset(const GlobalOptions& global, const ResetOptions& options) {
  const StatePaths paths(global.state_dir);
  std::error_code error;
  const fs::path dir = fs::weakly_canonical(paths.state_dir, error);
  if (error || dir == dir.root_path()) {
    return PrintError("refusing to reset '" + paths.state_dir + "': pick a real state folder");
  }
  if (!fs::exists(dir)) {
    std::cout << "Nothing to reset: " << dir.string() << " does not exist\n";
    return kExitOk;
  }
  if (!options.yes) {
    if (!IsTerminal(STDIN_FILENO)) {
      return PrintError("reset needs confirmation and stdin is not a terminal: pass --yes");
    }
    if (!Confirm("This removes every object and all state in " + dir.string() + ". Continue?")) {
      return PrintError("Reset cancelled; nothing was removed.");
    }
  }
  if (const int code = StopDaemon(paths, /*timeout_seconds=*/60, /*quiet=*/true); code != kExitOk) {
    return code;
  }
  size_t failures = 0;
  std::string first_failure;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir, error)) {
    std::error_code remove_error;
    fs::remove_all(entry.path(), remove_error);
    if (remove_error && failures++ == 0) {
      first_failure = entry.path().string() + ": " + remove_error.message();
    }
  }
  if (error) return PrintError("cannot list " + dir.string() + ": " + error.message());
  if (failures > 0) {
    return PrintError("could not remove " + std::to_string(failures) + " entries (first: " +
                      first_failure + "): run as root, then retry 'mk8s reset'");
  }
  std::cout << "Removed all state in " << dir.string() << '\n';
  return kExitOk;
}

}  // namespace mk8s::cli
