// Daemon logging: spdlog's default logger writes to <state>/logs/mk8sd.log (rotated) and stderr.
#pragma once

#include <string>

#include "common/status.h"

namespace mk8s::app {

// Installs the default logger. `level` is one of trace, debug, info, warn, error.
Status SetUpLogging(const std::string& log_file, const std::string& level, bool to_stderr);

}  // namespace mk8s::app
