// The CRI container log format and its rendering for clients.
//
// A CRI log line is `<RFC3339Nano time> <stdout|stderr> <F|P> <text>`; P marks a partial line
// whose text continues in the next line, up to the one tagged F. LogFormatter turns raw lines
// into what `kubectl logs` prints, applying the timestamps, sinceTime and limitBytes options.
// Pure value types; not thread-safe (one formatter per stream).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "kubelet/server/log_options.h"

namespace mk8s::kubelet {

struct CriLogLine {
  std::chrono::system_clock::time_point time;
  std::string_view stream;   // "stdout" or "stderr"
  bool partial = false;      // tag P
  std::string_view content;  // the text after the tag (no trailing newline)
};

// Parses one line (without its '\n'). False when it is not in CRI format.
bool ParseCriLogLine(std::string_view line, CriLogLine* out);

// "2026-11-27T03:04:05.123456789Z": UTC with nine fractional digits, as upstream prints.
std::string FormatRfc3339Nano(std::chrono::system_clock::time_point time);

class LogFormatter {
 public:
  explicit LogFormatter(const LogOptions& options);

  // Appends the rendering of one raw line (without its '\n') to `out`. Lines that do not parse
  // are skipped, as upstream does. Once limitBytes is reached nothing more is appended.
  void AddLine(std::string_view raw, std::string* out);
  // True once limitBytes output bytes were produced: the stream should end.
  bool limit_reached() const { return remaining_bytes_ && *remaining_bytes_ <= 0; }

 private:
  void Emit(std::string_view text, std::string* out);

  const bool timestamps_;
  const std::optional<std::chrono::system_clock::time_point> since_;
  std::optional<int64_t> remaining_bytes_;
  bool line_start_ = true;  // false inside a partial (P) line: no timestamp prefix there
};

}  // namespace mk8s::kubelet
