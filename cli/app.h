// The mk8s command-line entry point.
#pragma once

namespace mk8s::cli {

// Parses the command line, runs one command and returns the process exit code: 0 on success,
// 1 when the command failed, 2 for a usage error. Never throws; every error is printed as one line
// on stderr that says what to do next. `mk8s kubectl` does not return (it execs kubectl).
int Run(int argc, char** argv);

}  // namespace mk8s::cli
