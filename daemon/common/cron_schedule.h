// CronSchedule: the schedule language of Kubernetes CronJobs (the "standard" cron parser that
// kube-controller-manager uses), shared by the API server's validation and the CronJob
// controller.
//
//   "<minute> <hour> <day-of-month> <month> <day-of-week>"
//     each field: "*" or "?", a value, a range "a-b", a step "*/n", "a-b/n" or "a/n" (= a-max/n),
//     or a comma-separated list of those. Months accept jan..dec, days of week sun..sat
//     (case-insensitive). Bounds: 0-59, 0-23, 1-31, 1-12, 0-6 (7 is not Sunday here).
//     Day-of-month and day-of-week: when either field starts with "*" or "?" (without a step
//     > 1) both must match; otherwise either may match (classic cron).
//   "@yearly" "@annually" "@monthly" "@weekly" "@daily" "@midnight" "@hourly"
//   "@every <Go duration>"  e.g. "@every 1h30m": fixed intervals (at least 1 s, whole seconds).
//
// "TZ=" / "CRON_TZ=" prefixes are refused: CronJobs name their zone in spec.timeZone.
// Immutable after Parse(); thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "common/time_zone.h"

namespace mk8s {

class CronSchedule {
 public:
  using TimePoint = std::chrono::system_clock::time_point;

  // kInvalidArgument with a message fit for a field error ("expected exactly 5 fields, found
  // 4: ...").
  static Result<CronSchedule> Parse(std::string_view spec);

  // The first activation strictly after `after`, in `zone`'s civil time. nullopt if the schedule
  // never fires within 5 years (e.g. "0 0 30 2 *").
  //
  // Daylight saving: fields match civil time. A civil time skipped by a jump forward fires at the
  // instant the same UTC distance past the jump (02:30 on a 02:00->03:00 day fires at 03:30); in a
  // repeated hour each civil minute fires once.
  std::optional<TimePoint> Next(TimePoint after, const TimeZone& zone) const;

  // Field bits (bit n = value n); tests read them.
  uint64_t minutes() const { return minutes_; }
  uint64_t hours() const { return hours_; }
  uint64_t days_of_month() const { return dom_; }
  uint64_t months() const { return months_; }
  uint64_t days_of_week() const { return dow_; }
  std::optional<std::chrono::seconds> every() const { return every_; }

 private:
  bool DayMatches(int day_of_month, int day_of_week) const;

  uint64_t minutes_ = 0, hours_ = 0, dom_ = 0, months_ = 0, dow_ = 0;
  bool dom_star_ = false, dow_star_ = false;
  std::optional<std::chrono::seconds> every_;
};

// A Go duration string ("1h30m", "90s", "1.5h", "300ms") in nanoseconds; nullopt if malformed.
std::optional<std::chrono::nanoseconds> ParseGoDuration(std::string_view text);

}  // namespace mk8s
