#include "cli/os.h"

#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <sstream>

namespace mk8s::cli {
namespace {

bool IsExecutableFile(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(path.c_str(), X_OK) == 0;
}

std::string SelfDirectory() {
  char buffer[PATH_MAX];
  const ssize_t n = ::readlink("/proc/self/exe", buffer, sizeof(buffer) - 1);
  if (n <= 0) return "";
  std::string path(buffer, static_cast<size_t>(n));
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? "" : path.substr(0, slash);
}

// argv as the char* array exec wants; the strings must outlive the result.
std::vector<char*> ExecArgv(const std::vector<std::string>& argv) {
  std::vector<char*> result;
  result.reserve(argv.size() + 1);
  for (const std::string& arg : argv) result.push_back(const_cast<char*>(arg.c_str()));
  result.push_back(nullptr);
  return result;
}

}  // namespace

std::string ErrnoText(int error) { return std::strerror(error); }

std::string FindDaemonBinary() {
  if (const char* env = std::getenv("MK8SD_BIN"); env != nullptr && IsExecutableFile(env)) {
    return env;
  }
  if (const std::string self = SelfDirectory(); !self.empty()) {
    for (const std::string& candidate : {self + "/mk8sd", self + "/../daemon/mk8sd"}) {
      if (IsExecutableFile(candidate)) return candidate;
    }
  }
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    if (!dir.empty() && IsExecutableFile(dir + "/mk8sd")) return dir + "/mk8sd";
  }
  return "";
}

Result<pid_t> SpawnDetached(const std::vector<std::string>& argv, const std::string& stderr_file) {
  // Open everything before fork: the child only calls async-signal-safe functions.
  const int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null_fd < 0) return Status(Code::kInternal, "cannot open /dev/null: " + ErrnoText(errno));
  const int err_fd = ::open(stderr_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (err_fd < 0) {
    const int error = errno;
    ::close(null_fd);
    return Status(Code::kInternal, "cannot open " + stderr_file + ": " + ErrnoText(error));
  }
  std::vector<char*> args = ExecArgv(argv);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setsid();
    ::dup2(null_fd, STDIN_FILENO);
    ::dup2(null_fd, STDOUT_FILENO);
    ::dup2(err_fd, STDERR_FILENO);
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  const int fork_error = errno;
  ::close(null_fd);
  ::close(err_fd);
  if (pid < 0) return Status(Code::kInternal, "cannot fork: " + ErrnoText(fork_error));
  return pid;
}

std::optional<int> ChildExitCode(pid_t child) {
  int status = 0;
  const pid_t done = ::waitpid(child, &status, WNOHANG);
  if (done != child) return std::nullopt;
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

bool ProcessAlive(pid_t pid) {
  if (pid <= 0) return false;
  if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
  // A zombie still answers kill(0); its state letter in /proc says it is gone.
  std::ifstream stat_file("/proc/" + std::to_string(pid) + "/stat");
  std::string stat_line;
  if (!std::getline(stat_file, stat_line)) return false;
  const size_t paren = stat_line.rfind(')');
  if (paren == std::string::npos || paren + 2 >= stat_line.size()) return true;
  const char state = stat_line[paren + 2];
  return state != 'Z' && state != 'X';
}

bool ProcessAliveNamed(pid_t pid, const std::string& name) {
  if (!ProcessAlive(pid)) return false;
  std::ifstream comm_file("/proc/" + std::to_string(pid) + "/comm");
  std::string comm;
  std::getline(comm_file, comm);
  return comm == name;
}

std::optional<pid_t> ReadPidFile(const std::string& path) {
  std::ifstream file(path);
  long pid = 0;
  if (!(file >> pid) || pid <= 0) return std::nullopt;
  return static_cast<pid_t>(pid);
}

Result<int> RunAndWait(const std::vector<std::string>& argv, std::string* stderr_text) {
  int pipe_fds[2];
  if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
    return Status(Code::kInternal, "cannot create a pipe: " + ErrnoText(errno));
  }
  const int null_fd = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  std::vector<char*> args = ExecArgv(argv);
  const pid_t pid = ::fork();
  if (pid == 0) {
    if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
    ::dup2(pipe_fds[1], STDERR_FILENO);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  const int fork_error = errno;
  ::close(pipe_fds[1]);
  if (null_fd >= 0) ::close(null_fd);
  if (pid < 0) {
    ::close(pipe_fds[0]);
    return Status(Code::kInternal, "cannot fork: " + ErrnoText(fork_error));
  }
  std::string captured;
  char buffer[4096];
  for (ssize_t n; (n = ::read(pipe_fds[0], buffer, sizeof(buffer))) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (captured.size() < 16384) captured.append(buffer, static_cast<size_t>(n));
  }
  ::close(pipe_fds[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (stderr_text != nullptr) *stderr_text = std::move(captured);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  return 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

void ExecReplace(const std::vector<std::string>& argv) {
  std::vector<char*> args = ExecArgv(argv);
  ::execvp(args[0], args.data());
}

std::vector<std::string> TailLines(const std::string& path, size_t count) {
  std::ifstream file(path);
  std::deque<std::string> lines;
  for (std::string line; std::getline(file, line);) {
    lines.push_back(std::move(line));
    if (lines.size() > count) lines.pop_front();
  }
  return {lines.begin(), lines.end()};
}

bool IsTerminal(int fd) { return ::isatty(fd) == 1; }

}  // namespace mk8s::cli
