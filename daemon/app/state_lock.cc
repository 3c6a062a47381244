#include "app/state_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>

namespace mk8s::app {
namespace {

std::string ReadOwnerPid(int fd) {
  char buffer[32] = {};
  ssize_t n = pread(fd, buffer, sizeof(buffer) - 1, 0);
  if (n <= 0) return "unknown";
  std::string pid(buffer, static_cast<size_t>(n));
  while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
  return pid.empty() ? "unknown" : pid;
}

}  // namespace

Result<std::unique_ptr<StateLock>> StateLock::Acquire(const std::string& state_dir,
                                                      const std::string& pid_file) {
  std::error_code error;
  std::filesystem::create_directories(state_dir, error);
  if (error) {
    return Status(Code::kInternal, "cannot create state folder " + state_dir + ": " +
                                       error.message() + " (run as root or pick --state-dir)");
  }
  chmod(state_dir.c_str(), 0750);
  int fd = open(pid_file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return Status(Code::kInternal,
                  "cannot open " + pid_file + ": " + std::strerror(errno) +
                      " (run as root or pick another --state-dir)");
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    std::string owner = ReadOwnerPid(fd);
    close(fd);
    return Status(Code::kUnavailable,
                  "state folder " + state_dir + " is in use by another mk8sd (pid " + owner +
                      "): stop it with 'mk8s stop --state-dir " + state_dir +
                      "' or choose another --state-dir");
  }
  std::string pid = std::to_string(getpid()) + "\n";
  if (ftruncate(fd, 0) != 0 || pwrite(fd, pid.data(), pid.size(), 0) != static_cast<ssize_t>(pid.size())) {
    close(fd);
    return Status(Code::kInternal, "cannot write " + pid_file + ": " + std::strerror(errno));
  }
  return std::unique_ptr<StateLock>(new StateLock(fd, pid_file));
}

StateLock::~StateLock() {
  unlink(path_.c_str());
  close(fd_);  // releases the flock
}

}  // namespace mk8s::app
