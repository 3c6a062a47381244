// TimeZone: UTC offsets of an IANA time zone, read from the system's TZif files
// (/usr/share/zoneinfo, Debian's tzdata package), for CronJob spec.timeZone. GCC 12's libstdc++
// has no std::chrono::tzdb, and TZ=+localtime_r is process-global, so we read the files ourselves.
//
// Limits: offsets come from the file's explicit transitions (Debian ships "fat" files with
// transitions through 2037); after the last one the last offset stays in force (the POSIX TZ
// footer rule is not evaluated). Immutable after Load(); thread-safe; cheap to copy.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace mk8s {

class TimeZone {
 public:
  static constexpr const char* kDefaultZoneInfoDir = "/usr/share/zoneinfo";

  // "UTC" (always available, even without tzdata).
  static TimeZone Utc();
  // An IANA name such as "Europe/Berlin" or "Etc/UTC". kInvalidArgument for names that are not
  // zone names ("Local", "", absolute paths, ".."), kNotFound when no such zone is installed.
  static Result<TimeZone> Load(std::string_view name,
                               const std::string& zoneinfo_dir = kDefaultZoneInfoDir);

  const std::string& name() const { return name_; }
  // Seconds east of UTC in force at `utc_seconds` (seconds since the Unix epoch).
  int64_t OffsetAt(int64_t utc_seconds) const;

 private:
  std::string name_;
  int32_t initial_offset_ = 0;         // before the first transition
  std::vector<int64_t> transitions_;   // UTC seconds, ascending
  std::vector<int32_t> offsets_;       // offsets_[i] is in force from transitions_[i]
};

}  // namespace mk8s
