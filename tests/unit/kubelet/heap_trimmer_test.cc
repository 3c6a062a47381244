#include "kubelet/heap_trimmer.h"

#include <gtest/gtest.h>

namespace mk8s::kubelet {
namespace {

using std::chrono::milliseconds;

struct Fixture {
  int trims = 0;
  HeapTrimmer trimmer{milliseconds(10000), [this] { ++trims; }};
  HeapTrimmer::Clock::time_point t0 = HeapTrimmer::Clock::now();
};

TEST(HeapTrimmerTest, NoWorkNeverTrims) {
  Fixture f;
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(f.trimmer.Tick(f.t0 + milliseconds(i * 1000), true));
  EXPECT_EQ(f.trims, 0);
}

TEST(HeapTrimmerTest, TrimsOnceAfterAQuietTick) {
  Fixture f;
  f.trimmer.NoteWork();
  EXPECT_FALSE(f.trimmer.Tick(f.t0, true));  // work happened during this tick: not quiet yet
  EXPECT_TRUE(f.trimmer.Tick(f.t0 + milliseconds(1000), true));
  EXPECT_FALSE(f.trimmer.Tick(f.t0 + milliseconds(2000), true));  // nothing new since
  EXPECT_EQ(f.trims, 1);
}

TEST(HeapTrimmerTest, WaitsWhileBusyOrNotIdle) {
  Fixture f;
  f.trimmer.NoteWork();
  EXPECT_FALSE(f.trimmer.Tick(f.t0, true));
  f.trimmer.NoteWork();
  EXPECT_FALSE(f.trimmer.Tick(f.t0 + milliseconds(1000), true));   // still working
  EXPECT_FALSE(f.trimmer.Tick(f.t0 + milliseconds(2000), false));  // queue not empty
  EXPECT_TRUE(f.trimmer.Tick(f.t0 + milliseconds(3000), true));
  EXPECT_EQ(f.trims, 1);
}

TEST(HeapTrimmerTest, AtMostOncePerInterval) {
  Fixture f;
  f.trimmer.NoteWork();
  f.trimmer.Tick(f.t0, true);
  EXPECT_TRUE(f.trimmer.Tick(f.t0 + milliseconds(1000), true));
  f.trimmer.NoteWork();
  f.trimmer.Tick(f.t0 + milliseconds(2000), true);
  EXPECT_FALSE(f.trimmer.Tick(f.t0 + milliseconds(3000), true));  // 2 s after the last trim
  EXPECT_TRUE(f.trimmer.Tick(f.t0 + milliseconds(11000), true));  // pending work, interval over
  EXPECT_EQ(f.trims, 2);
}

}  // namespace
}  // namespace mk8s::kubelet
