// Exclusive ownership of a state folder: a pid file held under flock() for the daemon's lifetime.
#pragma once

#include <memory>
#include <string>

#include "common/status.h"

namespace mk8s::app {

class StateLock {
 public:
  // Creates the folder if needed, then locks `pid_file` and writes our pid into it. Fails with
  // kUnavailable, naming the owner's pid, when another live daemon holds it.
  static Result<std::unique_ptr<StateLock>> Acquire(const std::string& state_dir,
                                                    const std::string& pid_file);
  ~StateLock();  // removes the pid file and releases the lock
  StateLock(const StateLock&) = delete;
  StateLock& operator=(const StateLock&) = delete;

 private:
  StateLock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  int fd_;
  std::string path_;
};

}  // namespace mk8s::app
