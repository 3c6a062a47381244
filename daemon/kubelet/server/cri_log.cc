#include "kubelet/server/cri_log.h"

#include <cstdio>
#include <ctime>

#include "common/time_format.h"

namespace mk8s::kubelet {

bool ParseCriLogLine(std::string_view line, CriLogLine* out) {
  const size_t time_end = line.find(' ');
  if (time_end == std::string_view::npos) return false;
  auto time = ParseRfc3339(line.substr(0, time_end));
  if (!time) return false;
  std::string_view rest = line.substr(time_end + 1);
  const size_t stream_end = rest.find(' ');
  if (stream_end == std::string_view::npos) return false;
  std::string_view stream = rest.substr(0, stream_end);
  if (stream != "stdout" && stream != "stderr") return false;
  rest = rest.substr(stream_end + 1);
  // The tag: "F" or "P" (tags may carry more fields after ':', none are defined yet).
  const size_t tag_end = rest.find(' ');
  std::string_view tag = rest.substr(0, tag_end);
  if (tag.empty() || (tag[0] != 'F' && tag[0] != 'P')) return false;
  out->time = *time;
  out->stream = stream;
  out->partial = tag[0] == 'P';
  // An empty log line is written as "<time> stdout F" with or without the trailing space.
  out->content = tag_end == std::string_view::npos ? std::string_view() : rest.substr(tag_end + 1);
  return true;
}

std::string FormatRfc3339Nano(std::chrono::system_clock::time_point time) {
  const auto since_epoch = time.time_since_epoch();
  auto seconds = std::chrono::floor<std::chrono::seconds>(since_epoch);
  const auto nanos = std::chrono::duration_cast<std::chrono::nanoseconds>(since_epoch - seconds);
  const std::time_t t = static_cast<std::time_t>(seconds.count());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buffer[48];
  std::snprintf(buffer, sizeof(buffer), "%04d-%02d-%02dT%02d:%02d:%02d.%09lldZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<long long>(nanos.count()));
  return buffer;
}

LogFormatter::LogFormatter(const LogOptions& options)
    : timestamps_(options.timestamps),
      since_(options.since),
      remaining_bytes_(options.limit_bytes) {}

void LogFormatter::AddLine(std::string_view raw, std::string* out) {
  if (limit_reached()) return;
  if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
  CriLogLine line;
  if (!ParseCriLogLine(raw, &line)) return;
  if (since_ && line.time < *since_) {
    line_start_ = !line.partial;
    return;
  }
  if (timestamps_ && line_start_) Emit(FormatRfc3339Nano(line.time) + " ", out);
  Emit(line.content, out);
  if (!line.partial) Emit("\n", out);
  line_start_ = !line.partial;
}

void LogFormatter::Emit(std::string_view text, std::string* out) {
  if (remaining_bytes_) {
    if (*remaining_bytes_ <= 0) return;
    if (static_cast<int64_t>(text.size()) > *remaining_bytes_) {
      text = text.substr(0, static_cast<size_t>(*remaining_bytes_));
    }
    *remaining_bytes_ -= static_cast<int64_t>(text.size());
  }
  out->append(text);
}

}  // namespace mk8s::kubelet
