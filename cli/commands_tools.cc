// mk8s version / config / kubectl / inspect: tools around a running (or stopped) daemon.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "cli/commands.h"
#include "cli/daemon_client.h"
#include "cli/format.h"
#include "cli/os.h"
#include "common/paths.h"
#include "common/version.h"

namespace mk8s::cli {
namespace {

namespace fs = std::filesystem;

std::string ClientVersionLine() {
  return std::string("mk8s (client) ") + kVersion + ", git " + kGitCommit + ", Kubernetes " +
         kKubernetesVersion;
}

// One line describing the daemon's version, or why it is unknown.
std::string DaemonVersionLine(const std::string& state_dir) {
  DaemonClient client(state_dir);
  v1::VersionResponse version;
  const CallStatus call = client.Version(&version);
  if (call.code == CallCode::kNotRunning) return "mk8sd (daemon): not running";
  if (!call.ok()) return "mk8sd (daemon): unknown (" + call.message + ")";
  return "mk8sd (daemon) " + version.version() + ", git " + version.git_commit() + ", Kubernetes " +
         version.kubernetes_version();
}

// "20240131-235959" in UTC, for file names.
std::string Timestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y%m%d-%H%M%S", &utc);
  return buffer;
}

bool IsPrivateKey(const fs::path& path) { return path.extension() == ".key"; }

// Writes "mode size path" for every entry under `root` (names only: no file is read).
void WriteStateListing(const fs::path& root, std::ostream& out) {
  std::error_code error;
  auto it =
      fs::recursive_directory_iterator(root, fs::directory_options::skip_permission_denied, error);
  if (error) {
    out << "cannot list " << root.string() << ": " << error.message() << '\n';
    return;
  }
  for (; it != fs::recursive_directory_iterator(); it.increment(error)) {
    if (error) break;
    const fs::directory_entry& entry = *it;
    struct stat st {};
    if (::lstat(entry.path().c_str(), &st) != 0) continue;
    char mode[16];
    std::snprintf(mode, sizeof(mode), "%04o", static_cast<unsigned>(st.st_mode & 07777));
    const char* kind = S_ISDIR(st.st_mode)    ? "dir "
                       : S_ISSOCK(st.st_mode) ? "sock"
                       : S_ISLNK(st.st_mode)  ? "link"
                                              : "file";
    out << kind << ' ' << mode << ' ' << st.st_size << ' '
        << fs::relative(entry.path(), root, error).string() << '\n';
  }
}

// Copies the daemon's log files (regular files only, never keys) into `target`.
void CopyLogs(const fs::path& log_dir, const fs::path& target, std::ostream& notes) {
  std::error_code error;
  fs::create_directories(target, error);
  for (const fs::directory_entry& entry : fs::directory_iterator(log_dir, error)) {
    if (!entry.is_regular_file() || IsPrivateKey(entry.path())) continue;
    std::error_code copy_error;
    fs::copy_file(entry.path(), target / entry.path().filename(), copy_error);
    if (copy_error)
      notes << "cannot copy " << entry.path().string() << ": " << copy_error.message() << '\n';
  }
  if (error) notes << "cannot list " << log_dir.string() << ": " << error.message() << '\n';
}

// Removes a temporary folder when the scope ends.
class TempDir {
 public:
  static Result<TempDir> Create(const std::string& prefix) {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern =
        std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/" + prefix + "XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) {
      return Status(Code::kInternal, "cannot create a temporary folder: " + ErrnoText(errno));
    }
    return TempDir(pattern);
  }
  TempDir(TempDir&& other) noexcept : path_(std::move(other.path_)) { other.path_.clear(); }
  TempDir& operator=(TempDir&&) = delete;
  ~TempDir() {
    std::error_code ignored;
    if (!path_.empty()) fs::remove_all(path_, ignored);
  }
  const fs::path& path() const { return path_; }

 private:
  explicit TempDir(fs::path path) : path_(std::move(path)) {}
  fs::path path_;
};

}  // namespace

int RunVersion(const GlobalOptions& global) {
  std::cout << ClientVersionLine() << '\n' << DaemonVersionLine(global.state_dir) << '\n';
  return kExitOk;
}

int RunConfig(const GlobalOptions& global) {
  DaemonClient client(global.state_dir);
  std::string kubeconfig;
  if (const CallStatus call = client.GetKubeconfig(&kubeconfig); !call.ok()) {
    return PrintError(call.message);
  }
  std::cout << kubeconfig;
  if (!kubeconfig.empty() && kubeconfig.back() != '\n') std::cout << '\n';
  return kExitOk;
}

int RunKubectl(const GlobalOptions& global, const std::vector<std::string>& args) {
  const StatePaths paths(global.state_dir);
  if (::access(paths.kubeconfig.c_str(), R_OK) != 0) {
    if (errno == EACCES) {
      return PrintError("permission denied on " + paths.kubeconfig +
                        ": run as root or join its group");
    }
    return PrintError("the Kubernetes API server is not available yet (no " + paths.kubeconfig +
                      "): is mk8s running? Check with 'mk8s status'");
  }
  std::vector<std::string> argv = {"kubectl", "--kubeconfig=" + paths.kubeconfig};
  argv.insert(argv.end(), args.begin(), args.end());
  std::cout.flush();
  ExecReplace(argv);  // returns only on failure
  if (errno == ENOENT) return PrintError("kubectl is not installed: install it, then retry");
  return PrintError("cannot run kubectl: " + ErrnoText(errno));
}

int RunInspect(const GlobalOptions& global, const InspectOptions& options) {
  const StatePaths paths(global.state_dir);
  const std::string base = "mk8s-inspect-" + Timestamp();
  std::error_code error;
  const fs::path output =
      fs::absolute(options.output.empty() ? base + ".tar.gz" : options.output, error);
  if (fs::exists(output))
    return PrintError(output.string() + " already exists: pick another --output");

  Result<TempDir> temp = TempDir::Create("mk8s-inspect-");
  if (!temp.ok()) return PrintError(temp.status().message());
  const fs::path report = temp->path() / base;
  fs::create_directories(report, error);
  if (error) return PrintError("cannot create " + report.string() + ": " + error.message());

  std::ofstream notes(report / "notes.txt");
  CopyLogs(paths.log_dir, report / "logs", notes);
  {
    std::ofstream status_file(report / "status.yaml");
    DaemonClient client(paths.state_dir);
    v1::StatusResponse status;
    if (const CallStatus call = client.Status(&status); call.ok()) {
      status_file << FormatStatusYaml(status);
    } else {
      status_file << "running: false\nerror: " << YamlQuote(call.message) << '\n';
    }
  }
  {
    std::ofstream version_file(report / "version.txt");
    version_file << ClientVersionLine() << '\n' << DaemonVersionLine(paths.state_dir) << '\n';
  }
  {
    std::ofstream listing(report / "state-files.txt");
    listing << "# " << paths.state_dir << " (names only; no credentials are copied)\n";
    WriteStateListing(paths.state_dir, listing);
  }
  notes.close();
  if (fs::file_size(report / "notes.txt", error) == 0) fs::remove(report / "notes.txt", error);

  std::string tar_errors;
  Result<int> tar =
      RunAndWait({"tar", "-czf", output.string(), "-C", temp->path().string(), base}, &tar_errors);
  if (!tar.ok()) return PrintError("cannot run tar: " + tar.status().message());
  if (*tar != 0) {
    std::istringstream lines(tar_errors);
    std::string first;
    std::getline(lines, first);
    return PrintError("tar failed writing " + output.string() + " (exit " + std::to_string(*tar) +
                      "): " + first);
  }
  std::cout << "Inspection report written to " << output.string() << '\n';
  return kExitOk;
}

}  // namespace mk8s::cli
