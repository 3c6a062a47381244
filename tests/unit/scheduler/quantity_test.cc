#include <gtest/gtest.h>

#include "scheduler/quantity.h"
#include "scheduler/resources.h"

namespace mk8s::scheduler {
namespace {

TEST(QuantityTest, MilliValues) {
  EXPECT_EQ(ParseQuantityMilli("100m"), 100);
  EXPECT_EQ(ParseQuantityMilli("1"), 1000);
  EXPECT_EQ(ParseQuantityMilli("1.5"), 1500);
  EXPECT_EQ(ParseQuantityMilli("0.1"), 100);
  EXPECT_EQ(ParseQuantityMilli("2e3"), 2000000);
  EXPECT_EQ(ParseQuantityMilli("1E-3"), 1);
  EXPECT_EQ(ParseQuantityMilli("+2"), 2000);
  EXPECT_EQ(ParseQuantityMilli("1k"), 1000000);
  EXPECT_EQ(ParseQuantityMilli("1Ki"), 1024000);
  EXPECT_EQ(ParseQuantityMilli("500u"), 1);  // rounds up
  EXPECT_EQ(ParseQuantityMilli("1n"), 1);
  EXPECT_EQ(ParseQuantityMilli("0"), 0);
  EXPECT_EQ(ParseQuantityMilli("-1"), -1000);
}

TEST(QuantityTest, ByteValues) {
  EXPECT_EQ(ParseQuantityValue("1Gi"), int64_t{1} << 30);
  EXPECT_EQ(ParseQuantityValue("500Mi"), int64_t{500} << 20);
  EXPECT_EQ(ParseQuantityValue("1.5Gi"), int64_t{3} << 29);
  EXPECT_EQ(ParseQuantityValue("128974848"), 128974848);
  EXPECT_EQ(ParseQuantityValue("129e6"), 129000000);
  EXPECT_EQ(ParseQuantityValue("129M"), 129000000);
  EXPECT_EQ(ParseQuantityValue("123Mi"), 128974848);
  EXPECT_EQ(ParseQuantityValue("100m"), 1);  // Value() rounds up
  EXPECT_EQ(ParseQuantityValue("1Ti"), int64_t{1} << 40);
  EXPECT_EQ(ParseQuantityValue("2E"), 2000000000000000000);
}

TEST(QuantityTest, Saturates) {
  EXPECT_EQ(ParseQuantityMilli("8Ei"), INT64_MAX);
  EXPECT_EQ(ParseQuantityValue("100E"), INT64_MAX);
  EXPECT_EQ(ParseQuantityMilli("-100E"), INT64_MIN);
}

TEST(QuantityTest, Malformed) {
  for (const char* s : {"", "m", "1.2.3", "1x", "1Gb", "Gi", "1e", "1 Gi", "--1", "1e99999"}) {
    EXPECT_FALSE(ParseQuantityMilli(s).has_value()) << s;
  }
}

TEST(QuantityTest, JsonForms) {
  EXPECT_EQ(JsonQuantityMilli(nlohmann::json("250m")), 250);
  EXPECT_EQ(JsonQuantityMilli(nlohmann::json(2)), 2000);
  EXPECT_EQ(JsonQuantityMilli(nlohmann::json(0.5)), 500);
  EXPECT_EQ(JsonQuantityMilli(nlohmann::json("junk")), 0);
  EXPECT_EQ(JsonQuantityValue(nlohmann::json::array()), 0);
}

TEST(ResourcesTest, PodRequestsSumContainersMaxInitAddOverhead) {
  nlohmann::json spec = nlohmann::json::parse(R"({
    "containers": [
      {"name": "a", "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
      {"name": "b", "resources": {"limits": {"cpu": "1", "nvidia.com/gpu": "2"}}},
      {"name": "c"}
    ],
    "initContainers": [
      {"name": "i1", "resources": {"requests": {"cpu": "3", "memory": "100Mi"}}},
      {"name": "sidecar", "restartPolicy": "Always",
       "resources": {"requests": {"cpu": "100m", "memory": "50Mi"}}}
    ],
    "overhead": {"cpu": "10m", "memory": "1Mi"}
  })");
  PodRequests r = ComputePodRequests(spec);
  // containers 1.5 cpu + sidecar 0.1 = 1.6 < init 3 -> 3, plus overhead 10m.
  EXPECT_EQ(r.requests.milli_cpu, 3010);
  EXPECT_EQ(r.requests.memory, (int64_t{1} << 30) + (50 << 20) + (1 << 20));
  EXPECT_EQ(r.requests.Scalar("nvidia.com/gpu"), 2);
  // Container c requests nothing: defaults 100m / 200Mi count for scoring only.
  EXPECT_EQ(r.non_zero_milli_cpu, 3010);
  EXPECT_EQ(r.non_zero_memory,
            (int64_t{1} << 30) + kDefaultMemoryRequest * 2 + (50 << 20) + (1 << 20));
}

}  // namespace
}  // namespace mk8s::scheduler
