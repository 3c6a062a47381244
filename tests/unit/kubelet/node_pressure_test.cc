// The kubelet's pressure signals: --eviction-hard parsing, threshold evaluation, the transition
// period, and what the node status reports (conditions, allocatable).
#include "kubelet/node_pressure.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "kubelet/node_status.h"

namespace mk8s::kubelet {
namespace {

using nlohmann::json;
constexpr int64_t kMi = 1024 * 1024;

std::vector<EvictionThreshold> Parse(std::string_view text) {
  auto parsed = ParseEvictionHard(text);
  EXPECT_TRUE(parsed.ok()) << parsed.status().message();
  return parsed.ok() ? *parsed : std::vector<EvictionThreshold>{};
}

std::string ParseError(std::string_view text) {
  auto parsed = ParseEvictionHard(text);
  return parsed.ok() ? "" : parsed.status().message();
}

TEST(EvictionHardTest, ParsesQuantitiesAndPercentages) {
  const auto thresholds = Parse(kDefaultEvictionHard);
  ASSERT_EQ(thresholds.size(), 3u);
  EXPECT_EQ(thresholds[0].signal, "memory.available");
  EXPECT_EQ(thresholds[0].quantity, 100 * kMi);
  EXPECT_EQ(thresholds[2].signal, "imagefs.available");
  EXPECT_EQ(thresholds[2].quantity, 1024 * kMi);
  const auto mixed = Parse(" nodefs.available<10% , nodefs.inodesFree<5%,pid.available<1k,");
  ASSERT_EQ(mixed.size(), 3u);
  ASSERT_TRUE(mixed[0].percent.has_value());
  EXPECT_DOUBLE_EQ(*mixed[0].percent, 10.0);
  EXPECT_EQ(mixed[2].quantity, 1000);
  EXPECT_TRUE(Parse("").empty());
}

TEST(EvictionHardTest, BadItemsAreNamed) {
  EXPECT_NE(ParseError("memory.free<1Gi").find("unknown signal \"memory.free\""), std::string::npos);
  EXPECT_NE(ParseError("memory.available>1Gi").find("expected SIGNAL<VALUE"), std::string::npos);
  EXPECT_NE(ParseError("memory.available").find("expected SIGNAL<VALUE"), std::string::npos);
  EXPECT_NE(ParseError("nodefs.available<150%").find("within 0-100%"), std::string::npos);
  EXPECT_NE(ParseError("nodefs.available<lots").find("not a quantity"), std::string::npos);
  EXPECT_NE(ParseError("nodefs.available<-1Gi").find("not a quantity"), std::string::npos);
}

TEST(EvictionHardTest, ThresholdsMetSetTheirPressure) {
  NodeSignals signals;
  signals.memory_available = 80 * kMi;
  signals.memory_capacity = 4096 * kMi;
  signals.nodefs_available = 5 * 1024 * kMi;
  signals.nodefs_capacity = 100 * 1024 * kMi;  // 5% free
  signals.pid_available = -1;                  // not observed: never fires
  NodePressure pressure =
      EvaluatePressure(Parse("memory.available<100Mi,nodefs.available<10%,pid.available<100"), signals);
  EXPECT_TRUE(pressure.memory);
  EXPECT_TRUE(pressure.disk);
  EXPECT_FALSE(pressure.pid);
  ASSERT_EQ(pressure.reasons.size(), 2u);
  EXPECT_EQ(pressure.reasons[0], "memory.available 80Mi < 100Mi");
  signals.memory_available = 100 * kMi;  // at the threshold is not below it
  signals.nodefs_available = 20 * 1024 * kMi;
  pressure = EvaluatePressure(Parse("memory.available<100Mi,nodefs.available<10%"), signals);
  EXPECT_FALSE(pressure.memory || pressure.disk || pressure.pid);
  EXPECT_TRUE(pressure.reasons.empty());
}

TEST(EvictionHardTest, PressureStaysForTheTransitionPeriod) {
  PressureTracker tracker(std::chrono::seconds(300));
  const auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  NodePressure seen;
  seen.disk = true;
  EXPECT_TRUE(tracker.Update(seen, t0).disk);
  EXPECT_TRUE(tracker.Update(NodePressure{}, t0 + std::chrono::seconds(299)).disk);
  EXPECT_FALSE(tracker.Update(NodePressure{}, t0 + std::chrono::seconds(300)).disk);
  PressureTracker immediate(std::chrono::seconds(0));
  EXPECT_TRUE(immediate.Update(seen, t0).disk);
  EXPECT_FALSE(immediate.Update(NodePressure{}, t0).disk);
}

TEST(EvictionHardTest, TheMachineIsObserved) {
  const NodeSignals signals = ObserveNodeSignals("/", "/");
  EXPECT_GT(signals.memory_available, 0);
  EXPECT_GE(signals.memory_capacity, signals.memory_available);
  EXPECT_GT(signals.nodefs_capacity, 0);
  EXPECT_EQ(signals.imagefs_capacity, signals.nodefs_capacity);
  EXPECT_GT(signals.pid_max, 0);
  EXPECT_GT(signals.pid_available, 0);
  // A threshold above everything there is always fires; one of zero never does.
  EXPECT_TRUE(EvaluatePressure(Parse("nodefs.available<100%"), signals).disk);
  EXPECT_FALSE(EvaluatePressure(Parse("nodefs.available<0"), signals).disk);
  const NodeSignals missing = ObserveNodeSignals("/no/such/folder", "");
  EXPECT_EQ(missing.nodefs_available, -1);
  EXPECT_FALSE(EvaluatePressure(Parse("nodefs.available<100%"), missing).disk);
}

std::string ConditionOf(const json& status, const std::string& type, std::string* reason) {
  for (const json& c : status["conditions"]) {
    if (c["type"] == type) {
      *reason = c["reason"];
      return c["status"];
    }
  }
  return "";
}

TEST(EvictionHardTest, NodeStatusReportsPressureAndAllocatable) {
  NodeOptions options;
  options.node_name = "n1";
  options.eviction_hard = Parse("memory.available<100Mi,nodefs.available<10%");
  MachineFacts facts;
  facts.memory_bytes = 4096 * kMi;
  facts.ephemeral_storage_bytes = 100 * 1024 * kMi;
  RuntimeReadiness runtime{true, true, "containerd://1.6.20", ""};
  NodePressure pressure;
  pressure.memory = true;
  const json status = BuildNodeStatus(options, facts, runtime, true, json::object(), "T0", pressure);
  std::string reason;
  EXPECT_EQ(ConditionOf(status, "MemoryPressure", &reason), "True");
  EXPECT_EQ(reason, "KubeletHasInsufficientMemory");
  EXPECT_EQ(ConditionOf(status, "DiskPressure", &reason), "False");
  EXPECT_EQ(reason, "KubeletHasNoDiskPressure");
  EXPECT_EQ(ConditionOf(status, "Ready", &reason), "True");  // pressure alone keeps it Ready
  EXPECT_EQ(status["capacity"]["memory"], std::to_string(4096 * 1024) + "Ki");
  EXPECT_EQ(status["allocatable"]["memory"], std::to_string(3996 * 1024) + "Ki");
  EXPECT_EQ(status["allocatable"]["ephemeral-storage"],
            std::to_string(90LL * 1024 * 1024) + "Ki");  // 90% of 100 GiB
}

}  // namespace
}  // namespace mk8s::kubelet
