// The few operating-system operations the CLI needs (processes, pid files, terminals), behind
// plain functions so commands read as policy. POSIX only; no heavy headers.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace mk8s::cli {

// Where to find mk8sd, first match wins: $MK8SD_BIN; next to this executable; the build tree's
// ../daemon/mk8sd; then $PATH. Empty when none is executable.
std::string FindDaemonBinary();

// Starts `argv` (argv[0] is the binary path) detached from this terminal: a new session, stdin
// and stdout on /dev/null, stderr appended to `stderr_file` (created 0640 if missing). Returns the
// child's pid; the caller may reap it with ChildExitCode while it waits for start-up.
Result<pid_t> SpawnDetached(const std::vector<std::string>& argv, const std::string& stderr_file);

// If `child` (a child of this process) has exited, reaps it and returns its exit code (128+signal
// when killed). nullopt while it still runs.
std::optional<int> ChildExitCode(pid_t child);

// True if a process with this pid exists and is not a zombie.
bool ProcessAlive(pid_t pid);

// True if `pid` is alive and its command name is `name` (guards against a recycled pid).
bool ProcessAliveNamed(pid_t pid, const std::string& name);

// The pid written in a pid file, or nullopt if the file is missing or does not hold a pid.
std::optional<pid_t> ReadPidFile(const std::string& path);

// Runs `argv` (argv[0] looked up in $PATH) with stdin on /dev/null and waits. Returns its exit
// code; its stderr (up to a few KB) goes to `*stderr_text` when non-null.
Result<int> RunAndWait(const std::vector<std::string>& argv, std::string* stderr_text);

// Replaces this process with `argv` (looked up in $PATH). Returns only on failure, with errno set.
void ExecReplace(const std::vector<std::string>& argv);

// The last `count` lines of a text file; empty if it cannot be read.
std::vector<std::string> TailLines(const std::string& path, size_t count);

// True if `fd` is a terminal (progress lines and prompts are for terminals only).
bool IsTerminal(int fd);

// "strerror(errno)" as a std::string.
std::string ErrnoText(int error);

}  // namespace mk8s::cli
