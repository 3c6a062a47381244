// Image garbage collection's choices (which unused images go, in which order) and its flag checks;
// the collector against a real containerd is covered by tests/e2e/kubelet/pressure_test.py.
#include "kubelet/image_gc.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace mk8s::kubelet {
namespace {

using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

TrackedImage Image(std::string id, uint64_t size, Clock::time_point first_seen,
                   Clock::time_point last_used) {
  TrackedImage image;
  image.id = std::move(id);
  image.size = size;
  image.first_seen = first_seen;
  image.last_used = last_used;
  return image;
}

TEST(ImageGcTest, UnusedImagesGoLeastRecentlyUsedFirstUntilEnoughIsFreed) {
  const Clock::time_point t0 = Clock::time_point{} + std::chrono::hours(10);
  const Clock::time_point now = t0 + std::chrono::hours(1);
  std::vector<TrackedImage> images = {
      Image("sha256:recent", 100, t0, now - seconds(10)),
      Image("sha256:old", 100, t0, t0 + seconds(5)),
      Image("sha256:older-big", 300, t0, t0),
      Image("sha256:older-small", 50, t0, t0),
      Image("sha256:young", 500, now - seconds(30), now - seconds(30)),  // below minimum age
      Image("sha256:running", 900, t0, now),
      Image("sha256:pause", 900, t0, t0),
  };
  images[5].in_use = true;
  images[6].protected_image = true;
  EXPECT_EQ(ChooseImagesToRemove(images, 350, now, seconds(120)),
            (std::vector<std::string>{"sha256:older-big", "sha256:older-small"}));
  EXPECT_EQ(ChooseImagesToRemove(images, 10'000, now, seconds(120)),
            (std::vector<std::string>{"sha256:older-big", "sha256:older-small", "sha256:old",
                                      "sha256:recent"}));
  EXPECT_TRUE(ChooseImagesToRemove(images, 0, now, seconds(120)).empty());
  // With no minimum age the young image may go too, but never the used or protected ones.
  const auto all = ChooseImagesToRemove(images, 10'000, now, seconds(0));
  EXPECT_EQ(all.size(), 5u);
  EXPECT_EQ(std::count(all.begin(), all.end(), "sha256:running"), 0);
  EXPECT_EQ(std::count(all.begin(), all.end(), "sha256:pause"), 0);
}

TEST(ImageGcTest, ThresholdsAreChecked) {
  ImageGcOptions options;
  EXPECT_TRUE(ValidateImageGcOptions(options).ok());
  options.low_threshold_percent = 90;
  EXPECT_NE(ValidateImageGcOptions(options).message().find("must not be above --image-gc-high-threshold"),
            std::string::npos);
  options.low_threshold_percent = 80;
  options.high_threshold_percent = 101;
  EXPECT_NE(ValidateImageGcOptions(options).message().find("--image-gc-high-threshold must be within 0-100"),
            std::string::npos);
  options.high_threshold_percent = 85;
  options.low_threshold_percent = -1;
  EXPECT_FALSE(ValidateImageGcOptions(options).ok());
}

}  // namespace
}  // namespace mk8s::kubelet
