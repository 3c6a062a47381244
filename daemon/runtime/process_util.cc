#include "runtime/process_util.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

extern char** environ;

namespace mk8s::runtime {
namespace {

std::string Errno(const std::string& what) { return what + ": " + std::strerror(errno); }

std::vector<char*> ArgvPointers(const std::vector<std::string>& argv) {
  std::vector<char*> out;
  for (const auto& a : argv) out.push_back(const_cast<char*>(a.c_str()));
  out.push_back(nullptr);
  return out;
}

// In the child after fork(): only async-signal-safe calls. Resets signals, closes inherited
// descriptors above 2 and execs. Never returns.
[[noreturn]] void ExecChild(char* const* argv) {
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) signal(sig, SIG_DFL);
  }
  syscall(SYS_close_range, 3U, ~0U, 0U);
  execve(argv[0], argv, environ);
  _exit(127);
}

int ExitCodeOf(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

}  // namespace

Result<CommandOutput> RunCommand(const std::vector<std::string>& argv,
                                 std::chrono::milliseconds timeout) {
  if (argv.empty() || argv[0].empty() || argv[0][0] != '/') {
    return Status(Code::kInvalidArgument, "RunCommand: argv[0] must be an absolute path");
  }
  if (::access(argv[0].c_str(), X_OK) != 0) {
    return Status(Code::kNotFound, Errno("cannot execute " + argv[0]));
  }
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC) != 0) return Status(Code::kInternal, Errno("pipe"));
  const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  auto args = ArgvPointers(argv);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(pipefd[0]);
    ::close(pipefd[1]);
    if (devnull >= 0) ::close(devnull);
    return Status(Code::kInternal, Errno("fork"));
  }
  if (pid == 0) {
    if (devnull >= 0) dup2(devnull, 0);
    dup2(pipefd[1], 1);
    dup2(pipefd[1], 2);
    ExecChild(args.data());
  }
  ::close(pipefd[1]);
  if (devnull >= 0) ::close(devnull);
  CommandOutput result;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false;
  char buf[4096];
  for (;;) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd pfd{pipefd[0], POLLIN, 0};
    const int n = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) continue;  // the loop re-checks the deadline
    const ssize_t got = ::read(pipefd[0], buf, sizeof(buf));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) break;  // EOF: the child closed its output (normally: exited)
    if (result.output.size() < (1u << 20)) result.output.append(buf, static_cast<size_t>(got));
  }
  ::close(pipefd[0]);
  if (timed_out) ::kill(pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  result.exit_code = ExitCodeOf(status);
  if (timed_out) {
    return Status(Code::kDeadlineExceeded, argv[0] + " did not finish within " +
                                               std::to_string(timeout.count()) +
                                               " ms; output: " + result.output);
  }
  return result;
}

Result<pid_t> SpawnDetached(const std::vector<std::string>& argv, const std::string& log_file) {
  if (argv.empty() || argv[0].empty() || argv[0][0] != '/') {
    return Status(Code::kInvalidArgument, "SpawnDetached: argv[0] must be an absolute path");
  }
  if (::access(argv[0].c_str(), X_OK) != 0) {
    return Status(Code::kNotFound, Errno("cannot execute " + argv[0]));
  }
  const int log = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (log < 0) return Status(Code::kInternal, Errno("cannot open " + log_file));
  const int devnull = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  auto args = ArgvPointers(argv);
  const pid_t pid = ::fork();
  if (pid < 0) {
    ::close(log);
    if (devnull >= 0) ::close(devnull);
    return Status(Code::kInternal, Errno("fork"));
  }
  if (pid == 0) {
    setsid();  // own session and process group: terminal signals and our death leave it alone
    if (devnull >= 0) dup2(devnull, 0);
    dup2(log, 1);
    dup2(log, 2);
    ExecChild(args.data());
  }
  ::close(log);
  if (devnull >= 0) ::close(devnull);
  return pid;
}

int PidfdOpen(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

std::vector<std::string> ProcessCmdline(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/cmdline", std::ios::binary);
  std::vector<std::string> out;
  if (!in) return out;
  std::string arg;
  while (std::getline(in, arg, '\0')) out.push_back(arg);
  return out;
}

bool ProcessAlive(pid_t pid) {
  if (pid <= 0) return false;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!in || !std::getline(in, line)) return false;
  const auto close = line.rfind(')');
  if (close == std::string::npos || close + 2 >= line.size()) return false;
  const char state = line[close + 2];
  return state != 'Z' && state != 'X';
}

std::string FileTail(const std::string& path, int max_lines) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return "";
  const std::streamoff size = in.tellg();
  const std::streamoff start = size > 65536 ? size - 65536 : 0;
  in.seekg(start);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  while (!text.empty() && text.back() == '\n') text.pop_back();
  size_t begin = text.size();
  for (int lines = 0; lines < max_lines && begin > 0; ++lines) {
    const size_t newline = text.rfind('\n', begin - 1);
    begin = newline == std::string::npos ? 0 : newline;
    if (newline == std::string::npos) break;
  }
  if (begin < text.size() && text[begin] == '\n') ++begin;
  return text.substr(begin);
}

Status WriteFileAtomic(const std::string& path, const std::string& data, unsigned mode) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
  if (fd < 0) return Status(Code::kInternal, Errno("cannot write " + tmp));
  size_t off = 0;
  while (off < data.size()) {
    const ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      Status st(Code::kInternal, Errno("cannot write " + tmp));
      ::close(fd);
      ::unlink(tmp.c_str());
      return st;
    }
    off += static_cast<size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status st(Code::kInternal, Errno("cannot rename " + tmp + " to " + path));
    ::unlink(tmp.c_str());
    return st;
  }
  return {};
}

}  // namespace mk8s::runtime
