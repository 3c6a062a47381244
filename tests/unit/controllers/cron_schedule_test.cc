// The CronJob schedule language (common/cron_schedule.h) and time zones (common/time_zone.h):
// parsing every field form, the errors users see, next-activation arithmetic (month ends, leap
// years, day-of-month/day-of-week semantics) and civil time across daylight saving changes.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/cron_schedule.h"
#include "common/time_format.h"
#include "common/time_zone.h"

namespace mk8s {
namespace {

using std::chrono::seconds;
using TimePoint = CronSchedule::TimePoint;

uint64_t Bits(std::initializer_list<int> values) {
  uint64_t bits = 0;
  for (int v : values) bits |= uint64_t{1} << v;
  return bits;
}

uint64_t Range(int first, int last, int step = 1) {
  uint64_t bits = 0;
  for (int v = first; v <= last; v += step) bits |= uint64_t{1} << v;
  return bits;
}

TimePoint At(const char* rfc3339) {
  auto parsed = ParseRfc3339(rfc3339);
  EXPECT_TRUE(parsed.has_value()) << rfc3339;
  return parsed.value_or(TimePoint());
}

CronSchedule MustParse(const std::string& spec) {
  Result<CronSchedule> parsed = CronSchedule::Parse(spec);
  EXPECT_TRUE(parsed.ok()) << spec << ": " << parsed.status().ToString();
  return parsed.ok() ? *parsed : *CronSchedule::Parse("* * * * *");
}

// Next activation after `after` in UTC as RFC 3339, or "never".
std::string NextUtc(const std::string& spec, const char* after) {
  auto next = MustParse(spec).Next(At(after), TimeZone::Utc());
  return next ? FormatRfc3339(*next) : "never";
}

std::string ParseError(const std::string& spec) {
  Result<CronSchedule> parsed = CronSchedule::Parse(spec);
  if (parsed.ok()) return "parsed";
  EXPECT_EQ(parsed.status().code(), Code::kInvalidArgument);
  return parsed.status().message();
}

TEST(CronScheduleTest, FieldForms) {
  CronSchedule s = MustParse("*/15 0-23/6 1,15 jan-MAR mon-fri");
  EXPECT_EQ(s.minutes(), Bits({0, 15, 30, 45}));
  EXPECT_EQ(s.hours(), Bits({0, 6, 12, 18}));
  EXPECT_EQ(s.days_of_month(), Bits({1, 15}));
  EXPECT_EQ(s.months(), Bits({1, 2, 3}));
  EXPECT_EQ(s.days_of_week(), Range(1, 5));

  s = MustParse("5/20 1-10/3 ? * sun,SAT");
  EXPECT_EQ(s.minutes(), Bits({5, 25, 45}));  // "a/n" means a-max/n
  EXPECT_EQ(s.hours(), Bits({1, 4, 7, 10}));
  EXPECT_EQ(s.days_of_month(), Range(1, 31));
  EXPECT_EQ(s.months(), Range(1, 12));
  EXPECT_EQ(s.days_of_week(), Bits({0, 6}));

  s = MustParse("  1,2,5-6  3  * dec 0  ");  // extra spaces are fine
  EXPECT_EQ(s.minutes(), Bits({1, 2, 5, 6}));
  EXPECT_EQ(s.months(), Bits({12}));
  EXPECT_EQ(s.days_of_week(), Bits({0}));
  EXPECT_FALSE(s.every().has_value());
}

TEST(CronScheduleTest, Descriptors) {
  const std::pair<const char*, const char*> cases[] = {
      {"@yearly", "0 0 1 1 *"},  {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
      {"@weekly", "0 0 * * 0"},  {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
      {"@hourly", "0 * * * *"},
  };
  for (const auto& [descriptor, expansion] : cases) {
    const CronSchedule a = MustParse(descriptor), b = MustParse(expansion);
    EXPECT_EQ(a.minutes(), b.minutes()) << descriptor;
    EXPECT_EQ(a.hours(), b.hours()) << descriptor;
    EXPECT_EQ(a.days_of_month(), b.days_of_month()) << descriptor;
    EXPECT_EQ(a.months(), b.months()) << descriptor;
    EXPECT_EQ(a.days_of_week(), b.days_of_week()) << descriptor;
  }
  EXPECT_EQ(MustParse("@every 1h30m").every(), seconds(5400));
  EXPECT_EQ(MustParse("@every 1500ms").every(), seconds(1));  // whole seconds
  EXPECT_EQ(MustParse("@every 10ms").every(), seconds(1));    // at least one
}

TEST(CronScheduleTest, ErrorsNameTheProblem) {
  EXPECT_EQ(ParseError(""), "empty spec string");
  EXPECT_EQ(ParseError("   "), "empty spec string");
  EXPECT_EQ(ParseError("* * * *"), "expected exactly 5 fields, found 4: * * * *");
  EXPECT_EQ(ParseError("0 * * * * *"), "expected exactly 5 fields, found 6: 0 * * * * *");
  EXPECT_EQ(ParseError("60 * * * *"), "end of range (60) above maximum (59): 60");
  EXPECT_EQ(ParseError("* 24 * * *"), "end of range (24) above maximum (23): 24");
  EXPECT_EQ(ParseError("* * 0 * *"), "beginning of range (0) below minimum (1): 0");
  EXPECT_EQ(ParseError("* * 32 * *"), "end of range (32) above maximum (31): 32");
  EXPECT_EQ(ParseError("* * * 13 *"), "end of range (13) above maximum (12): 13");
  EXPECT_EQ(ParseError("* * * * 7"), "end of range (7) above maximum (6): 7");
  EXPECT_EQ(ParseError("5-1 * * * *"), "beginning of range (5) beyond end of range (1): 5-1");
  EXPECT_EQ(ParseError("*/0 * * * *"), "step of range should be a positive number: */0");
  EXPECT_EQ(ParseError("1-2-3 * * * *"), "too many hyphens: 1-2-3");
  EXPECT_EQ(ParseError("*/2/3 * * * *"), "too many slashes: */2/3");
  EXPECT_EQ(ParseError("x * * * *"), "failed to parse int from x");
  EXPECT_EQ(ParseError("-1 * * * *"), "failed to parse int from ");
  EXPECT_EQ(ParseError("1,,2 * * * *"), "failed to parse int from ");
  EXPECT_EQ(ParseError("* * * foo *"), "failed to parse int from foo");
  EXPECT_EQ(ParseError("*-5 * * * *"), "a range cannot start with *: *-5");
  EXPECT_EQ(ParseError("@reboot"), "unrecognized descriptor: @reboot");
  EXPECT_EQ(ParseError("@every 1x"), "failed to parse duration @every 1x: invalid duration \"1x\"");
  EXPECT_EQ(ParseError("TZ=UTC * * * * *"),
            "cannot use TZ or CRON_TZ in schedule, use timeZone field instead");
  EXPECT_EQ(ParseError("CRON_TZ=Europe/Berlin 0 * * * *"),
            "cannot use TZ or CRON_TZ in schedule, use timeZone field instead");
}

TEST(CronScheduleTest, NextIsStrictlyAfter) {
  EXPECT_EQ(NextUtc("* * * * *", "2025-01-01T00:00:00Z"), "2025-01-01T00:01:00Z");
  EXPECT_EQ(NextUtc("* * * * *", "2025-01-01T00:00:30Z"), "2025-01-01T00:01:00Z");
  EXPECT_EQ(NextUtc("0 * * * *", "2025-01-01T00:00:00Z"), "2025-01-01T01:00:00Z");
  EXPECT_EQ(NextUtc("30 2 * * *", "2025-01-01T02:30:00Z"), "2025-01-02T02:30:00Z");
  EXPECT_EQ(NextUtc("*/5 * * * *", "2025-01-01T00:07:59Z"), "2025-01-01T00:10:00Z");
}

TEST(CronScheduleTest, CalendarArithmetic) {
  EXPECT_EQ(NextUtc("0 0 1 * *", "2025-12-15T00:00:00Z"), "2026-01-01T00:00:00Z");  // year end
  EXPECT_EQ(NextUtc("0 0 31 * *", "2025-01-31T00:00:00Z"), "2025-03-31T00:00:00Z"); // no Feb 31
  EXPECT_EQ(NextUtc("0 0 29 2 *", "2025-01-01T00:00:00Z"), "2028-02-29T00:00:00Z"); // leap day
  EXPECT_EQ(NextUtc("0 0 30 2 *", "2025-01-01T00:00:00Z"), "never");
  EXPECT_EQ(NextUtc("@yearly", "2025-06-01T00:00:00Z"), "2026-01-01T00:00:00Z");
  EXPECT_EQ(NextUtc("@weekly", "2025-01-01T00:00:00Z"), "2025-01-05T00:00:00Z");  // a Sunday
  EXPECT_EQ(NextUtc("0 12 * feb mon", "2025-01-01T00:00:00Z"), "2025-02-03T12:00:00Z");
}

TEST(CronScheduleTest, DayOfMonthAndDayOfWeek) {
  // 2025-01-01 is a Wednesday. Both restricted: either matches.
  EXPECT_EQ(NextUtc("0 0 13 * 5", "2025-01-01T00:00:00Z"), "2025-01-03T00:00:00Z");
  EXPECT_EQ(NextUtc("0 0 2 * 5", "2025-01-01T00:00:00Z"), "2025-01-02T00:00:00Z");
  // One of them starts with "*": both must match.
  EXPECT_EQ(NextUtc("0 0 13 * *", "2025-01-01T00:00:00Z"), "2025-01-13T00:00:00Z");
  EXPECT_EQ(NextUtc("0 0 * * 1", "2025-01-01T00:00:00Z"), "2025-01-06T00:00:00Z");
  EXPECT_EQ(NextUtc("0 0 */1 * 1", "2025-01-01T00:00:00Z"), "2025-01-06T00:00:00Z");
  // A step > 1 makes the field a restriction: then either matches.
  EXPECT_EQ(NextUtc("0 0 */2 * 1", "2025-01-01T00:00:00Z"), "2025-01-03T00:00:00Z");
}

TEST(CronScheduleTest, EveryIsAFixedInterval) {
  const CronSchedule every = MustParse("@every 90m");
  EXPECT_EQ(FormatRfc3339(*every.Next(At("2025-01-01T00:00:10.5Z"), TimeZone::Utc())),
            "2025-01-01T01:30:10Z");
}

TEST(GoDurationTest, Parses) {
  EXPECT_EQ(ParseGoDuration("1h30m"), std::chrono::minutes(90));
  EXPECT_EQ(ParseGoDuration("1.5h"), std::chrono::minutes(90));
  EXPECT_EQ(ParseGoDuration("300ms"), std::chrono::milliseconds(300));
  EXPECT_EQ(ParseGoDuration("2us"), std::chrono::microseconds(2));
  EXPECT_EQ(ParseGoDuration("-1m"), std::chrono::minutes(-1));
  EXPECT_EQ(ParseGoDuration("0"), std::chrono::nanoseconds(0));
  EXPECT_FALSE(ParseGoDuration(""));
  EXPECT_FALSE(ParseGoDuration("5"));
  EXPECT_FALSE(ParseGoDuration("1d"));
  EXPECT_FALSE(ParseGoDuration("h"));
  EXPECT_FALSE(ParseGoDuration("99999999999h"));
}

TEST(TimeZoneTest, NamesAreCheckedBeforeFiles) {
  for (const char* bad : {"", "Local", "../etc/passwd", "/etc/localtime", "Europe/Berlin "}) {
    Result<TimeZone> zone = TimeZone::Load(bad);
    ASSERT_FALSE(zone.ok()) << bad;
    EXPECT_EQ(zone.status().code(), Code::kInvalidArgument) << bad;
  }
  Result<TimeZone> missing = TimeZone::Load("Mars/Olympus_Mons");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), Code::kNotFound);
  EXPECT_NE(missing.status().message().find("unknown time zone Mars/Olympus_Mons"), std::string::npos);
  // UTC needs no tzdata.
  Result<TimeZone> utc = TimeZone::Load("Etc/UTC", "/nonexistent");
  ASSERT_TRUE(utc.ok());
  EXPECT_EQ(utc->OffsetAt(1735689600), 0);
}

TEST(TimeZoneTest, RejectsFilesThatAreNotTzif) {
  const std::string dir = ::testing::TempDir() + "/zoneinfo-test";
  std::filesystem::create_directories(dir + "/Bad");
  { std::ofstream(dir + "/Bad/Zone") << "not a tzif file"; }
  Result<TimeZone> zone = TimeZone::Load("Bad/Zone", dir);
  ASSERT_FALSE(zone.ok());
  EXPECT_EQ(zone.status().code(), Code::kInvalidArgument);
  std::filesystem::remove_all(dir);
}

class BerlinTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // tzdata is a build/test dependency (scripts/install-deps.sh).
    Result<TimeZone> loaded = TimeZone::Load("Europe/Berlin");
    ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
    berlin_ = *loaded;
  }
  std::string Next(const std::string& spec, const char* after) {
    auto next = MustParse(spec).Next(At(after), berlin_);
    return next ? FormatRfc3339(*next) : "never";
  }
  TimeZone berlin_ = TimeZone::Utc();
};

TEST_F(BerlinTest, OffsetsFollowDaylightSaving) {
  EXPECT_EQ(berlin_.OffsetAt(At("2025-01-15T12:00:00Z").time_since_epoch() / seconds(1)), 3600);
  EXPECT_EQ(berlin_.OffsetAt(At("2025-07-15T12:00:00Z").time_since_epoch() / seconds(1)), 7200);
  // The 2025 spring change is at 01:00 UTC on March 30.
  EXPECT_EQ(berlin_.OffsetAt(At("2025-03-30T00:59:59Z").time_since_epoch() / seconds(1)), 3600);
  EXPECT_EQ(berlin_.OffsetAt(At("2025-03-30T01:00:00Z").time_since_epoch() / seconds(1)), 7200);
}

TEST_F(BerlinTest, SchedulesRunInCivilTime) {
  EXPECT_EQ(Next("0 9 * * *", "2025-01-01T00:00:00Z"), "2025-01-01T08:00:00Z");
  EXPECT_EQ(Next("0 9 * * *", "2025-07-01T00:00:00Z"), "2025-07-01T07:00:00Z");
  // 02:30 does not exist on 2025-03-30 (02:00 -> 03:00): it fires at 03:30 local (01:30 UTC).
  EXPECT_EQ(Next("30 2 * * *", "2025-03-29T12:00:00Z"), "2025-03-30T01:30:00Z");
  EXPECT_EQ(Next("30 2 * * *", "2025-03-30T01:30:00Z"), "2025-03-31T00:30:00Z");
  // 02:30 happens twice on 2025-10-26 (03:00 -> 02:00): it fires once.
  EXPECT_EQ(Next("30 2 * * *", "2025-10-25T12:00:00Z"), "2025-10-26T00:30:00Z");
  EXPECT_EQ(Next("30 2 * * *", "2025-10-26T00:30:00Z"), "2025-10-27T01:30:00Z");
}

}  // namespace
}  // namespace mk8s
