// Small POSIX process helpers for the runtime supervisor and image import (fork/exec, no shell).
//
// All functions are thread-safe. Children are started with a clean signal mask and default signal
// dispositions, stdin on /dev/null and every descriptor above 2 closed.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "common/status.h"

namespace mk8s::runtime {

struct CommandOutput {
  int exit_code = 0;   // 128+N when killed by signal N
  std::string output;  // stdout and stderr, interleaved
};

// Runs argv[0] (an absolute path) to completion and captures its output. The child is killed
// (SIGKILL) when `timeout` passes; that returns kDeadlineExceeded with the output so far.
// A non-zero exit code is a successful call.
Result<CommandOutput> RunCommand(const std::vector<std::string>& argv,
                                 std::chrono::milliseconds timeout);

// Starts argv in a new session (setsid) with stdout/stderr appended to log_file, and returns its
// pid. The caller owns reaping it (waitpid) while it is its child; after the caller dies the
// process lives on (re-parented to init), which is the point.
Result<pid_t> SpawnDetached(const std::vector<std::string>& argv, const std::string& log_file);

// A pidfd for pid (pollable: readable once the process has exited); -1 on failure.
// Works for processes that are not our children. The caller closes it.
int PidfdOpen(pid_t pid);

// The process's argv from /proc/<pid>/cmdline; empty if it does not exist.
std::vector<std::string> ProcessCmdline(pid_t pid);

// True while pid exists and is not a zombie.
bool ProcessAlive(pid_t pid);

// The last max_lines lines of a text file (at most the last 64 KiB), "" if unreadable.
std::string FileTail(const std::string& path, int max_lines);

// Writes data to path via a temp file + rename. mode applies to the new file.
Status WriteFileAtomic(const std::string& path, const std::string& data, unsigned mode = 0644);

}  // namespace mk8s::runtime
