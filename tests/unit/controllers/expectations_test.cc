// Expectations (controllers/common): pending creates/deletes per key, lowered by observations or
// LowerExpectations, and forgotten after 5 minutes on the controller's clock.
#include <gtest/gtest.h>

#include <chrono>

#include "client/clock.h"
#include "controllers/common/expectations.h"

namespace mk8s::controllers::test {
namespace {

using namespace std::chrono_literals;

TEST(ExpectationsTest, ObservedAndLoweredExpectationsAreSatisfied) {
  client::FakeClock clock;
  Expectations expectations(&clock);
  EXPECT_TRUE(expectations.Satisfied("ns/a")) << "nothing expected yet";
  expectations.Expect("ns/a", 1, 3);
  EXPECT_FALSE(expectations.Satisfied("ns/a"));
  expectations.CreationObserved("ns/a");
  expectations.DeletionObserved("ns/a");
  EXPECT_FALSE(expectations.Satisfied("ns/a"));
  expectations.LowerExpectations("ns/a", 0, 5);  // more than pending: clamps at zero
  EXPECT_TRUE(expectations.Satisfied("ns/a"));
  expectations.LowerExpectations("ns/b", 1, 1);  // nothing pending: no effect
  EXPECT_TRUE(expectations.Satisfied("ns/b"));
}

TEST(ExpectationsTest, ExpireAfterFiveMinutesOfTheGivenClock) {
  client::FakeClock clock;
  Expectations expectations(&clock);
  expectations.Expect("ns/a", 2, 0);
  clock.Advance(5min);
  EXPECT_FALSE(expectations.Satisfied("ns/a"));
  clock.Advance(1s);
  EXPECT_TRUE(expectations.Satisfied("ns/a"));
}

}  // namespace
}  // namespace mk8s::controllers::test
