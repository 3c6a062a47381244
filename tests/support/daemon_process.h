// Test support: run a real mk8sd in a temp state folder and talk to it over its control socket.
// Used by integration tests and benchmarks. Not thread-safe; owned by one test thread.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace grpc {
class Channel;
}

namespace mk8s::testing {

// A fresh folder under $TMPDIR (or /tmp), removed with its contents on destruction.
class TempDir {
 public:
  explicit TempDir(const std::string& prefix = "mk8s-test");
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Path of the mk8sd binary under test: $MK8SD_BIN, else the build tree's (compiled in).
std::string DaemonBinary();

class DaemonProcess {
 public:
  DaemonProcess(std::string state_dir, std::vector<std::string> extra_args = {});
  ~DaemonProcess();  // SIGKILLs a daemon still running

  // Launches mk8sd (stdout/stderr appended to <state>/daemon.out) and waits until its control
  // socket answers Status, or the deadline passes / the process exits. Returns false on failure.
  bool Start(std::chrono::milliseconds deadline = std::chrono::seconds(30));
  void Kill9();                          // SIGKILL and reap
  int Terminate(std::chrono::milliseconds deadline = std::chrono::seconds(30));  // SIGTERM; exit code
  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  std::string socket() const { return state_dir_ + "/mk8sd.sock"; }
  std::shared_ptr<grpc::Channel> Channel() const;
  // Resident set size in bytes, read from /proc/<pid>/status (0 if unknown).
  long ResidentBytes() const;
  std::string OutputTail() const;  // the last lines the daemon printed, for failure messages

 private:
  std::string state_dir_;
  std::vector<std::string> extra_args_;
  pid_t pid_ = -1;
};

}  // namespace mk8s::testing
