// The query parameters of the kubelet's GET /containerLogs/{namespace}/{pod}/{container}, as
// upstream's PodLogOptions: follow, previous, timestamps, tailLines, limitBytes, sinceSeconds,
// sinceTime. Pure functions; thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"

namespace mk8s::kubelet {

struct LogOptions {
  bool follow = false;                 // keep streaming lines as they are written
  bool previous = false;               // the log of the previous restartCount
  bool timestamps = false;             // prefix each line with its RFC3339Nano time
  std::optional<int64_t> tail_lines;   // only the last N lines of the file
  std::optional<int64_t> limit_bytes;  // stop after N bytes of output
  std::optional<std::chrono::system_clock::time_point> since;  // skip older lines
};

// Parses and validates a raw query string ("follow=true&tailLines=2"). `now` anchors
// sinceSeconds. kInvalidArgument with upstream's validation message on bad input.
Result<LogOptions> ParseLogOptions(std::string_view query,
                                   std::chrono::system_clock::time_point now);

}  // namespace mk8s::kubelet
