#include "common/cron_schedule.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <set>
#include <vector>

namespace mk8s {
namespace {

struct Bounds {
  int min;
  int max;
  const char* const* names;  // names[i] means min + i; nullptr = numbers only
  int name_count;
};

constexpr const char* kMonthNames[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                       "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr const char* kDayNames[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};
constexpr Bounds kMinute{0, 59, nullptr, 0};
constexpr Bounds kHour{0, 23, nullptr, 0};
constexpr Bounds kDayOfMonth{1, 31, nullptr, 0};
constexpr Bounds kMonth{1, 12, kMonthNames, 12};
constexpr Bounds kDayOfWeek{0, 6, kDayNames, 7};

Status Invalid(const std::string& message) { return Status(Code::kInvalidArgument, message); }

std::vector<std::string> Split(std::string_view text, char separator) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    const size_t end = text.find(separator, start);
    parts.emplace_back(text.substr(start, end == std::string_view::npos ? end : end - start));
    if (end == std::string_view::npos) return parts;
    start = end + 1;
  }
}

std::vector<std::string> Fields(std::string_view text) {
  std::vector<std::string> fields;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    const size_t start = i;
    while (i < text.size() && !std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    if (i > start) fields.emplace_back(text.substr(start, i - start));
  }
  return fields;
}

Result<int> ParseNumber(const std::string& text) {
  if (text.empty() || text.size() > 9 ||
      !std::all_of(text.begin(), text.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); })) {
    return Invalid("failed to parse int from " + text);
  }
  return std::stoi(text);
}

Result<int> ParseValue(const std::string& text, const Bounds& bounds) {
  if (bounds.names != nullptr) {
    std::string lower;
    for (char c : text) lower.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    for (int i = 0; i < bounds.name_count; ++i) {
      if (lower == bounds.names[i]) return bounds.min + i;
    }
  }
  return ParseNumber(text);
}

// One element of a comma list: "*", "?", "a", "a-b", with an optional "/step".
Status ParseRange(const std::string& expr, const Bounds& bounds, uint64_t* bits, bool* star) {
  const std::vector<std::string> range_and_step = Split(expr, '/');
  if (range_and_step.size() > 2) return Invalid("too many slashes: " + expr);
  const std::vector<std::string> low_high = Split(range_and_step[0], '-');
  if (low_high.size() > 2) return Invalid("too many hyphens: " + expr);
  int start, end, step = 1;
  bool is_star = false;
  if (low_high[0] == "*" || low_high[0] == "?") {
    if (low_high.size() == 2) return Invalid("a range cannot start with " + low_high[0] + ": " + expr);
    start = bounds.min;
    end = bounds.max;
    is_star = true;
  } else {
    Result<int> low = ParseValue(low_high[0], bounds);
    if (!low.ok()) return low.status();
    start = *low;
    end = start;
    if (low_high.size() == 2) {
      Result<int> high = ParseValue(low_high[1], bounds);
      if (!high.ok()) return high.status();
      end = *high;
    }
  }
  if (range_and_step.size() == 2) {
    Result<int> parsed = ParseNumber(range_and_step[1]);
    if (!parsed.ok()) return parsed.status();
    step = *parsed;
    if (low_high.size() == 1) end = bounds.max;  // "a/n" means "a-max/n"
    if (step > 1) is_star = false;
  }
  if (start < bounds.min) {
    return Invalid("beginning of range (" + std::to_string(start) + ") below minimum (" +
                   std::to_string(bounds.min) + "): " + expr);
  }
  if (end > bounds.max) {
    return Invalid("end of range (" + std::to_string(end) + ") above maximum (" +
                   std::to_string(bounds.max) + "): " + expr);
  }
  if (start > end) {
    return Invalid("beginning of range (" + std::to_string(start) + ") beyond end of range (" +
                   std::to_string(end) + "): " + expr);
  }
  if (step == 0) return Invalid("step of range should be a positive number: " + expr);
  for (int value = start; value <= end; value += step) *bits |= uint64_t{1} << value;
  *star = *star || is_star;
  return Status::Ok();
}

Status ParseField(const std::string& field, const Bounds& bounds, uint64_t* bits, bool* star) {
  *bits = 0;
  *star = false;
  for (const std::string& part : Split(field, ',')) {
    if (Status status = ParseRange(part, bounds, bits, star); !status.ok()) return status;
  }
  return Status::Ok();
}

// Howard Hinnant's civil-date algorithms (proleptic Gregorian, days since 1970-01-01).
int64_t DaysFromCivil(int64_t y, int m, int d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;
  const int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

struct Civil {
  int64_t year;
  int month, day, hour, minute, weekday;  // weekday 0 = Sunday
  int64_t days;                           // since the epoch
};

int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

Civil ToCivil(int64_t local_seconds) {
  Civil c{};
  c.days = FloorDiv(local_seconds, 86400);
  const int64_t of_day = local_seconds - c.days * 86400;
  c.hour = static_cast<int>(of_day / 3600);
  c.minute = static_cast<int>(of_day % 3600 / 60);
  c.weekday = static_cast<int>(((c.days % 7) + 11) % 7);  // 1970-01-01 was a Thursday (4)
  const int64_t z = c.days + 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  c.day = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  c.month = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  c.year = yoe + era * 400 + (c.month <= 2);
  return c;
}

bool Bit(uint64_t bits, int value) { return (bits >> value) & 1; }

// The UTC instant of civil time `local` in `zone` that is later than `after`, or nullopt.
std::optional<int64_t> ToUtc(int64_t local, int64_t after, const TimeZone& zone) {
  std::set<int64_t> offsets = {zone.OffsetAt(local - 86400), zone.OffsetAt(local),
                               zone.OffsetAt(local + 86400)};
  std::optional<int64_t> best;
  for (int64_t offset : offsets) {
    const int64_t utc = local - offset;
    if (zone.OffsetAt(utc) == offset && utc > after && (!best || utc < *best)) best = utc;
  }
  if (best) return best;
  // A civil time skipped by a jump forward: the offset before the jump places it after the jump.
  const int64_t utc = local - zone.OffsetAt(local - 86400);
  if (utc > after && zone.OffsetAt(utc) != zone.OffsetAt(local - 86400)) return utc;
  return std::nullopt;
}

}  // namespace

std::optional<std::chrono::nanoseconds> ParseGoDuration(std::string_view text) {
  if (text.empty()) return std::nullopt;
  bool negative = false;
  if (text[0] == '-' || text[0] == '+') {
    negative = text[0] == '-';
    text.remove_prefix(1);
  }
  if (text == "0") return std::chrono::nanoseconds(0);
  if (text.empty()) return std::nullopt;
  long double total = 0;
  while (!text.empty()) {
    size_t i = 0;
    long double value = 0;
    bool digits = false;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      value = value * 10 + (text[i++] - '0');
      digits = true;
    }
    if (i < text.size() && text[i] == '.') {
      ++i;
      long double scale = 0.1L;
      while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
        value += (text[i++] - '0') * scale;
        scale /= 10;
        digits = true;
      }
    }
    if (!digits) return std::nullopt;
    size_t unit_end = i;
    while (unit_end < text.size() && !std::isdigit(static_cast<unsigned char>(text[unit_end])) &&
           text[unit_end] != '.') {
      ++unit_end;
    }
    const std::string_view unit = text.substr(i, unit_end - i);
    long double scale;
    if (unit == "ns") scale = 1;
    else if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") scale = 1e3L;
    else if (unit == "ms") scale = 1e6L;
    else if (unit == "s") scale = 1e9L;
    else if (unit == "m") scale = 60e9L;
    else if (unit == "h") scale = 3600e9L;
    else return std::nullopt;
    total += value * scale;
    if (total > 9.2e18L) return std::nullopt;  // Go's int64 nanoseconds overflow
    text.remove_prefix(unit_end);
  }
  const auto nanos = static_cast<int64_t>(total);
  return std::chrono::nanoseconds(negative ? -nanos : nanos);
}

Result<CronSchedule> CronSchedule::Parse(std::string_view spec) {
  while (!spec.empty() && std::isspace(static_cast<unsigned char>(spec.front()))) spec.remove_prefix(1);
  while (!spec.empty() && std::isspace(static_cast<unsigned char>(spec.back()))) spec.remove_suffix(1);
  if (spec.empty()) return Invalid("empty spec string");
  if (spec.rfind("TZ=", 0) == 0 || spec.rfind("CRON_TZ=", 0) == 0) {
    return Invalid("cannot use TZ or CRON_TZ in schedule, use timeZone field instead");
  }
  std::string text(spec);
  if (text[0] == '@') {
    static const std::array<std::pair<const char*, const char*>, 7> kDescriptors = {{
        {"@yearly", "0 0 1 1 *"},
        {"@annually", "0 0 1 1 *"},
        {"@monthly", "0 0 1 * *"},
        {"@weekly", "0 0 * * 0"},
        {"@daily", "0 0 * * *"},
        {"@midnight", "0 0 * * *"},
        {"@hourly", "0 * * * *"},
    }};
    for (const auto& [name, expansion] : kDescriptors) {
      if (text == name) return Parse(expansion);
    }
    const std::string every = "@every ";
    if (text.rfind(every, 0) == 0) {
      const std::string duration = text.substr(every.size());
      auto parsed = ParseGoDuration(duration);
      if (!parsed) return Invalid("failed to parse duration " + text + ": invalid duration \"" + duration + "\"");
      CronSchedule schedule;
      // Fixed intervals are whole seconds, at least one.
      schedule.every_ = std::max(std::chrono::seconds(1),
                                 std::chrono::duration_cast<std::chrono::seconds>(*parsed));
      return schedule;
    }
    return Invalid("unrecognized descriptor: " + text);
  }
  const std::vector<std::string> fields = Fields(text);
  if (fields.size() != 5) {
    return Invalid("expected exactly 5 fields, found " + std::to_string(fields.size()) + ": " + text);
  }
  CronSchedule schedule;
  bool ignored = false;
  if (Status s = ParseField(fields[0], kMinute, &schedule.minutes_, &ignored); !s.ok()) return s;
  if (Status s = ParseField(fields[1], kHour, &schedule.hours_, &ignored); !s.ok()) return s;
  if (Status s = ParseField(fields[2], kDayOfMonth, &schedule.dom_, &schedule.dom_star_); !s.ok()) return s;
  if (Status s = ParseField(fields[3], kMonth, &schedule.months_, &ignored); !s.ok()) return s;
  if (Status s = ParseField(fields[4], kDayOfWeek, &schedule.dow_, &schedule.dow_star_); !s.ok()) return s;
  return schedule;
}

bool CronSchedule::DayMatches(int day_of_month, int day_of_week) const {
  const bool dom = Bit(dom_, day_of_month);
  const bool dow = Bit(dow_, day_of_week);
  if (dom_star_ || dow_star_) return dom && dow;
  return dom || dow;
}

std::optional<CronSchedule::TimePoint> CronSchedule::Next(TimePoint after, const TimeZone& zone) const {
  const int64_t after_seconds = std::chrono::floor<std::chrono::seconds>(after.time_since_epoch()).count();
  if (every_) return TimePoint(std::chrono::seconds(after_seconds) + *every_);

  const int64_t local_after = after_seconds + zone.OffsetAt(after_seconds);
  int64_t t = FloorDiv(local_after, 60) * 60 + 60;
  const int64_t year_limit = ToCivil(t).year + 5;
  for (;;) {
    const Civil c = ToCivil(t);
    if (c.year > year_limit) return std::nullopt;
    if (!Bit(months_, c.month)) {
      t = DaysFromCivil(c.month == 12 ? c.year + 1 : c.year, c.month == 12 ? 1 : c.month + 1, 1) * 86400;
      continue;
    }
    if (!DayMatches(c.day, c.weekday)) {
      t = (c.days + 1) * 86400;
      continue;
    }
    if (!Bit(hours_, c.hour)) {
      t = c.days * 86400 + (c.hour + 1) * 3600;
      continue;
    }
    if (!Bit(minutes_, c.minute)) {
      t += 60;
      continue;
    }
    if (std::optional<int64_t> utc = ToUtc(t, after_seconds, zone)) {
      return TimePoint(std::chrono::seconds(*utc));
    }
    t += 60;
  }
}

}  // namespace mk8s
