#include "proxy/iptables.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <tuple>

namespace mk8s::proxy {
namespace {

std::string Resolve(const std::string& name) {
  if (name.find('/') != std::string::npos) return name;
  std::string dirs = std::getenv("PATH") ? std::getenv("PATH") : "";
  dirs += ":/usr/sbin:/sbin:/usr/bin:/bin";
  std::stringstream list(dirs);
  for (std::string dir; std::getline(list, dir, ':');) {
    if (dir.empty()) continue;
    const std::string candidate = dir + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

std::string Join(const std::vector<std::string>& argv) {
  std::string text;
  for (const std::string& word : argv) text += (text.empty() ? "" : " ") + word;
  return text;
}

// A tool's stderr for an error message: trailing newlines and blanks dropped.
std::string Trim(std::string text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  return text;
}

void CloseIfOpen(int* fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

}  // namespace

Result<ProcessOutput> RunProcess(const std::vector<std::string>& argv, const std::string& input,
                                 std::chrono::milliseconds timeout) {
  if (argv.empty()) return Status(Code::kInvalidArgument, "no program to run");
  const std::string path = Resolve(argv[0]);
  if (path.empty()) {
    return Status(Code::kNotFound, argv[0] +
                                       " not found in $PATH, /usr/sbin or /sbin: install "
                                       "iptables or pass its path");
  }
  std::vector<char*> args;
  for (const std::string& word : argv) args.push_back(const_cast<char*>(word.c_str()));
  args.push_back(nullptr);

  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) != 0) return Status(Code::kInternal, std::strerror(errno));
  if (pipe2(out, O_CLOEXEC) != 0) {
    close(in[0]), close(in[1]);
    return Status(Code::kInternal, std::strerror(errno));
  }
  if (pipe2(err, O_CLOEXEC) != 0) {
    close(in[0]), close(in[1]), close(out[0]), close(out[1]);
    return Status(Code::kInternal, std::strerror(errno));
  }
  // posix_spawn (vfork-like: cheap even from a large multi-threaded daemon): the pipes become
  // stdin/stdout/stderr, every other descriptor is closed, signals are unblocked (the daemon
  // blocks its stop signals) and SIGPIPE is back to its default.
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err[1], STDERR_FILENO);
  posix_spawn_file_actions_addclosefrom_np(&actions, 3);
  posix_spawnattr_t attributes;
  posix_spawnattr_init(&attributes);
  sigset_t none, defaults;
  sigemptyset(&none);
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigmask(&attributes, &none);
  posix_spawnattr_setsigdefault(&attributes, &defaults);
  posix_spawnattr_setflags(&attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
  pid_t pid = -1;
  const int spawned = posix_spawn(&pid, path.c_str(), &actions, &attributes, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attributes);
  if (spawned != 0) {
    for (int fd : {in[0], in[1], out[0], out[1], err[0], err[1]}) close(fd);
    return Status(Code::kInternal, "cannot run " + path + ": " + std::strerror(spawned));
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  int to_child = in[1], from_out = out[0], from_err = err[0];
  fcntl(to_child, F_SETFL, O_NONBLOCK);
  if (input.empty()) CloseIfOpen(&to_child);

  ProcessOutput result;
  size_t written = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  bool timed_out = false;
  while (from_out >= 0 || from_err >= 0 || to_child >= 0) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      timed_out = true;
      break;
    }
    pollfd fds[3] = {{to_child, POLLOUT, 0}, {from_out, POLLIN, 0}, {from_err, POLLIN, 0}};
    const int ready = poll(fds, 3, static_cast<int>(left.count()));
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    if (to_child >= 0 && (fds[0].revents & (POLLOUT | POLLERR | POLLHUP))) {
      const ssize_t n = write(to_child, input.data() + written, input.size() - written);
      if (n > 0) written += static_cast<size_t>(n);
      if ((n < 0 && errno != EAGAIN && errno != EINTR) || written == input.size()) {
        CloseIfOpen(&to_child);  // done, or the child stopped reading (EPIPE)
      }
    }
    for (auto [index, fd, sink] :
         {std::tuple{1, &from_out, &result.out}, std::tuple{2, &from_err, &result.err}}) {
      if (*fd < 0 || !(fds[index].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      char buffer[8192];
      const ssize_t n = read(*fd, buffer, sizeof(buffer));
      if (n > 0) {
        sink->append(buffer, static_cast<size_t>(n));
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        CloseIfOpen(fd);
      }
    }
  }
  CloseIfOpen(&to_child);
  CloseIfOpen(&from_out);
  CloseIfOpen(&from_err);
  if (timed_out) kill(pid, SIGKILL);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (timed_out) {
    return Status(Code::kDeadlineExceeded,
                  Join(argv) + " did not finish within " + std::to_string(timeout.count()) + " ms");
  }
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  return result;
}

Result<ProcessOutput> Iptables::Iptable(const std::string& table,
                                        const std::vector<std::string>& args) const {
  std::vector<std::string> argv = {paths_.iptables, "-w", "5", "-t", table};
  argv.insert(argv.end(), args.begin(), args.end());
  return RunProcess(argv, "", paths_.timeout);
}

Status Iptables::Restore(const std::string& input) const {
  Result<ProcessOutput> run =
      RunProcess({paths_.iptables_restore, "-w", "5", "--noflush"}, input, paths_.timeout);
  if (!run.ok()) return run.status();
  if (run->exit_code != 0) {
    return Status(Code::kInternal, "iptables-restore failed (exit " +
                                       std::to_string(run->exit_code) + "): " + Trim(run->err));
  }
  return Status::Ok();
}

Result<std::string> Iptables::Save(const std::string& table) const {
  Result<ProcessOutput> run = RunProcess({paths_.iptables_save, "-t", table}, "", paths_.timeout);
  if (!run.ok()) return run.status();
  if (run->exit_code != 0) {
    return Status(Code::kInternal, "iptables-save -t " + table + " failed (exit " +
                                       std::to_string(run->exit_code) + "): " + Trim(run->err));
  }
  return std::move(run->out);
}

Result<bool> Iptables::Exists(const std::string& table, const std::string& chain,
                              const std::vector<std::string>& args) const {
  std::vector<std::string> full = {"-C", chain};
  full.insert(full.end(), args.begin(), args.end());
  Result<ProcessOutput> run = Iptable(table, full);
  if (!run.ok()) return run.status();
  if (run->exit_code == 0) return true;
  // 1: no such rule; 2 with these messages: its target chain does not exist (so neither does it).
  if (run->exit_code == 1) return false;
  if (run->err.find("does not exist") != std::string::npos ||
      run->err.find("Couldn't load target") != std::string::npos) {
    return false;
  }
  return Status(Code::kInternal, "iptables -C " + chain + " failed: " + Trim(run->err));
}

Status Iptables::Insert(const std::string& table, const std::string& chain,
                        const std::vector<std::string>& args) const {
  std::vector<std::string> full = {"-I", chain, "1"};
  full.insert(full.end(), args.begin(), args.end());
  Result<ProcessOutput> run = Iptable(table, full);
  if (!run.ok()) return run.status();
  if (run->exit_code != 0) {
    return Status(Code::kInternal,
                  "iptables -t " + table + " -I " + chain + " failed: " + Trim(run->err));
  }
  return Status::Ok();
}

Status Iptables::Delete(const std::string& table, const std::string& chain,
                        const std::vector<std::string>& args) const {
  std::vector<std::string> full = {"-D", chain};
  full.insert(full.end(), args.begin(), args.end());
  Result<ProcessOutput> run = Iptable(table, full);
  if (!run.ok()) return run.status();
  if (run->exit_code != 0) {
    return Status(Code::kInternal,
                  "iptables -t " + table + " -D " + chain + " failed: " + Trim(run->err));
  }
  return Status::Ok();
}

Status Iptables::EnsureChain(const std::string& table, const std::string& chain) const {
  Result<ProcessOutput> run = Iptable(table, {"-N", chain});
  if (!run.ok()) return run.status();
  if (run->exit_code == 0 || run->err.find("exists") != std::string::npos) return Status::Ok();
  return Status(Code::kInternal,
                "iptables -t " + table + " -N " + chain + " failed: " + Trim(run->err));
}

}  // namespace mk8s::proxy
