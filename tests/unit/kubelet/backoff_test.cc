#include "kubelet/backoff.h"

#include <gtest/gtest.h>

namespace mk8s::kubelet {
namespace {

using std::chrono::minutes;
using std::chrono::seconds;

TEST(BackoffTest, FirstRestartIsImmediateThenDoublesToFiveMinutes) {
  Backoff backoff;
  const auto t0 = Backoff::Clock::time_point() + std::chrono::hours(1);
  EXPECT_FALSE(backoff.IsInBackOffSince("uid/c", t0, t0));
  backoff.Next("uid/c", t0);
  EXPECT_EQ(backoff.Get("uid/c"), seconds(10));
  // Exited again 1 s after the restart: 10 s to wait from the exit.
  EXPECT_TRUE(backoff.IsInBackOffSince("uid/c", t0 + seconds(1), t0 + seconds(5)));
  EXPECT_FALSE(backoff.IsInBackOffSince("uid/c", t0 + seconds(1), t0 + seconds(11)));
  auto t = t0;
  for (int i = 0; i < 10; ++i) {
    t += seconds(1);
    backoff.Next("uid/c", t);
  }
  EXPECT_EQ(backoff.Get("uid/c"), minutes(5));
  EXPECT_EQ(backoff.Get("other"), Backoff::Duration{});
}

TEST(BackoffTest, ResetsAfterTenMinutesWithoutRestart) {
  Backoff backoff;
  const auto t0 = Backoff::Clock::time_point() + std::chrono::hours(1);
  backoff.Next("k", t0);
  backoff.Next("k", t0 + seconds(20));
  EXPECT_EQ(backoff.Get("k"), seconds(20));
  const auto later = t0 + seconds(20) + minutes(11);
  EXPECT_FALSE(backoff.IsInBackOffSince("k", later, later));
  backoff.Next("k", later);
  EXPECT_EQ(backoff.Get("k"), seconds(10));
}

TEST(BackoffTest, ForgetPrefixDropsOnePodsEntries) {
  Backoff backoff;
  const auto t0 = Backoff::Clock::time_point() + std::chrono::hours(1);
  backoff.Next("a/x", t0);
  backoff.Next("a/y", t0);
  backoff.Next("b/x", t0);
  backoff.ForgetPrefix("a/");
  EXPECT_EQ(backoff.Get("a/x"), Backoff::Duration{});
  EXPECT_EQ(backoff.Get("a/y"), Backoff::Duration{});
  EXPECT_EQ(backoff.Get("b/x"), seconds(10));
}

TEST(BackoffTest, GoDurationFormat) {
  EXPECT_EQ(FormatGoDuration(seconds(10)), "10s");
  EXPECT_EQ(FormatGoDuration(seconds(80)), "1m20s");
  EXPECT_EQ(FormatGoDuration(minutes(5)), "5m0s");
}

}  // namespace
}  // namespace mk8s::kubelet
