#include "kubelet/server/log_options.h"

#include <cctype>
#include <charconv>
#include <utility>
#include <vector>

#include "common/time_format.h"
#include "common/url_encoding.h"

namespace mk8s::kubelet {
namespace {

// Go's strconv.ParseBool.
std::optional<bool> ParseBool(std::string_view text) {
  for (std::string_view t : {"1", "t", "T", "TRUE", "true", "True"})
    if (text == t) return true;
  for (std::string_view f : {"0", "f", "F", "FALSE", "false", "False"})
    if (text == f) return false;
  return std::nullopt;
}

std::optional<int64_t> ParseInt(std::string_view text) {
  int64_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

Status Invalid(std::string_view field, std::string_view value, std::string_view why) {
  return Status(Code::kInvalidArgument, std::string(field) + ": Invalid value: " +
                                            std::string(value) + ": " + std::string(why));
}

}  // namespace

Result<LogOptions> ParseLogOptions(std::string_view query,
                                   std::chrono::system_clock::time_point now) {
  const auto params = common::ParseQuery(query);
  LogOptions options;
  std::optional<int64_t> since_seconds;
  std::optional<std::string> since_time;
  for (const auto& [key, value] : params) {
    if (key == "follow" || key == "previous" || key == "timestamps") {
      std::optional<bool> flag = ParseBool(value);
      if (!flag) return Invalid(key, "\"" + value + "\"", "must be a boolean");
      (key == "follow"     ? options.follow
       : key == "previous" ? options.previous
                           : options.timestamps) = *flag;
    } else if (key == "tailLines" || key == "limitBytes" || key == "sinceSeconds") {
      std::optional<int64_t> number = ParseInt(value);
      if (!number) return Invalid(key, "\"" + value + "\"", "must be an integer");
      if (key == "tailLines") {
        if (*number < 0) return Invalid(key, value, "must be greater than or equal to 0");
        options.tail_lines = *number;
      } else if (key == "limitBytes") {
        if (*number < 1) return Invalid(key, value, "must be greater than 0");
        options.limit_bytes = *number;
      } else {
        if (*number < 1) return Invalid(key, value, "must be greater than 0");
        since_seconds = *number;
      }
    } else if (key == "sinceTime") {
      since_time = value;
    }
    // Other parameters (container, insecureSkipTLSVerifyBackend, ...) are ignored, as upstream.
  }
  if (since_seconds && since_time) {
    return Status(Code::kInvalidArgument,
                  "sinceSeconds: Forbidden: at most one of sinceTime or sinceSeconds may be "
                  "specified");
  }
  if (since_seconds) options.since = now - std::chrono::seconds(*since_seconds);
  if (since_time) {
    auto parsed = ParseRfc3339(*since_time);
    if (!parsed) return Invalid("sinceTime", "\"" + *since_time + "\"", "must be RFC3339");
    options.since = *parsed;
  }
  return options;
}

}  // namespace mk8s::kubelet
