// Soft eviction thresholds (--eviction-soft, --eviction-soft-grace-period,
// --eviction-max-pod-grace-period) and PID-pressure ranking by process count: flag parsing, the
// grace-period timer on a fake clock, the eviction manager's passes over fake signals, the
// grace period an evicted pod gets, and pids.current read from a fake cgroup tree.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "kubelet/eviction.h"
#include "kubelet/eviction_manager.h"
#include "kubelet/node_pressure.h"
#include "kubelet/node_status.h"

namespace mk8s::kubelet {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;
using std::chrono::seconds;
constexpr int64_t kMi = 1024 * 1024;

json Pod(const std::string& name, int64_t priority = 0,
         std::optional<int64_t> grace = std::nullopt) {
  json pod = {{"metadata", {{"name", name}, {"namespace", "default"}, {"uid", "uid-" + name}}},
              {"spec",
               {{"containers", json::array({{{"name", "app"}, {"image", "busybox"}}})},
                {"priority", priority}}},
              {"status", {{"phase", "Running"}}}};
  if (grace) pod["spec"]["terminationGracePeriodSeconds"] = *grace;
  return pod;
}

std::string SoftError(std::string_view thresholds, std::string_view grace) {
  auto parsed = ParseEvictionSoft(thresholds, grace);
  return parsed.ok() ? "" : parsed.status().message();
}

// --- flags ---

TEST(SoftEvictionFlagsTest, GoDurations) {
  auto ms = [](std::string_view text) {
    auto d = ParseGoDuration(text);
    EXPECT_TRUE(d.ok()) << text << ": " << d.status().message();
    return d.ok() ? d->count() : -1;
  };
  EXPECT_EQ(ms("1m30s"), 90000);
  EXPECT_EQ(ms("90s"), 90000);
  EXPECT_EQ(ms("1h"), 3600000);
  EXPECT_EQ(ms("1.5m"), 90000);
  EXPECT_EQ(ms("500ms"), 500);
  EXPECT_EQ(ms("0s"), 0);
  EXPECT_EQ(ms("0"), 0);
  for (const char* bad : {"", "90", "1m30", "-1m", "1d", "m", "1..5s", "1m 30s"}) {
    EXPECT_FALSE(ParseGoDuration(bad).ok()) << bad;
  }
  EXPECT_NE(ParseGoDuration("1d").status().message().find("unknown unit \"d\""), std::string::npos);
}

TEST(SoftEvictionFlagsTest, ThresholdsTakeTheirGracePeriods) {
  auto parsed =
      ParseEvictionSoft("memory.available<1.5Gi, nodefs.available<10%",
                        "memory.available=1m30s,nodefs.available=2m,imagefs.available=1m");
  ASSERT_TRUE(parsed.ok()) << parsed.status().message();
  ASSERT_EQ(parsed->size(), 2u);
  EXPECT_EQ((*parsed)[0].signal, "memory.available");
  EXPECT_EQ((*parsed)[0].quantity, 1536 * kMi);
  EXPECT_TRUE((*parsed)[0].soft);
  EXPECT_EQ((*parsed)[0].grace_period, milliseconds(90000));
  ASSERT_TRUE((*parsed)[1].percent.has_value());
  EXPECT_EQ((*parsed)[1].grace_period, milliseconds(120000));
  // No soft thresholds: nothing, whatever the grace periods say (upstream ignores them).
  auto none = ParseEvictionSoft("", "memory.available=1m");
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE(none->empty());
}

TEST(SoftEvictionFlagsTest, ErrorsNameTheItem) {
  EXPECT_EQ(SoftError("memory.available<1Gi", ""),
            "soft eviction threshold memory.available has no grace period (add "
            "memory.available=DURATION to --eviction-soft-grace-period, e.g. "
            "memory.available=1m30s)");
  EXPECT_NE(SoftError("memory.available<1Gi,nodefs.available<1Gi", "memory.available=1m")
                .find("nodefs.available has no grace period"),
            std::string::npos);
  EXPECT_NE(
      SoftError("memory.available<1Gi", "memory.available=soon")
          .find("eviction grace period \"memory.available=soon\": \"soon\" is not a duration"),
      std::string::npos);
  EXPECT_NE(SoftError("memory.available<1Gi", "memory.available=-1m").find("negative"),
            std::string::npos);
  EXPECT_NE(SoftError("memory.available<1Gi", "memory.available").find("expected SIGNAL=DURATION"),
            std::string::npos);
  EXPECT_NE(
      SoftError("memory.available<1Gi", "memory.free=1m").find("unknown signal \"memory.free\""),
      std::string::npos);
  EXPECT_NE(SoftError("memory.free<1Gi", "memory.free=1m").find("unknown signal \"memory.free\""),
            std::string::npos);
  EXPECT_NE(SoftError("memory.available<1Gi", "memory.available=1m,memory.available=2m")
                .find("given twice"),
            std::string::npos);
  EXPECT_NE(SoftError("memory.available<1Gi,memory.available<2Gi", "memory.available=1m")
                .find("given twice"),
            std::string::npos);
}

// --- the timer ---

MetThreshold Soft(const std::string& signal, milliseconds grace) {
  MetThreshold m;
  m.signal = signal;
  m.soft = true;
  m.grace_period = grace;
  return m;
}

TEST(SoftThresholdTimerTest, CountsOnlyAfterTheGracePeriodAndStartsOverWhenNotMet) {
  SoftThresholdTimer timer;
  const auto t0 = std::chrono::steady_clock::time_point() + std::chrono::hours(1);
  const MetThreshold memory = Soft("memory.available", seconds(60));
  MetThreshold hard;
  hard.signal = "nodefs.available";
  EXPECT_EQ(timer.Update({memory, hard}, t0).size(), 1u);  // the hard one only, at once
  EXPECT_TRUE(timer.Update({memory}, t0 + seconds(59)).empty());
  EXPECT_EQ(timer.FirstMet("memory.available"), t0);
  ASSERT_EQ(timer.Update({memory}, t0 + seconds(60)).size(), 1u);
  // A pass that finds it not met starts the run over.
  EXPECT_TRUE(timer.Update({}, t0 + seconds(70)).empty());
  EXPECT_FALSE(timer.FirstMet("memory.available").has_value());
  EXPECT_TRUE(timer.Update({memory}, t0 + seconds(80)).empty());
  EXPECT_TRUE(timer.Update({memory}, t0 + seconds(139)).empty());
  EXPECT_EQ(timer.Update({memory}, t0 + seconds(140)).size(), 1u);
}

TEST(SoftThresholdTimerTest, HardBeatsSoftOnTheSameSignal) {
  MetThreshold hard;
  hard.signal = "memory.available";
  const auto picked = ThresholdToReclaim({Soft("memory.available", seconds(0)), hard});
  ASSERT_TRUE(picked.has_value());
  EXPECT_FALSE(picked->soft);
  // Memory still goes before disk, soft or not.
  const auto memory_first =
      ThresholdToReclaim({MetThreshold{"nodefs.available"}, Soft("memory.available", seconds(0))});
  EXPECT_EQ(memory_first->signal, "memory.available");
}

// --- the grace period of the kill ---

TEST(SoftEvictionGraceTest, MinOfThePodsAndTheMaximum) {
  const MetThreshold soft = Soft("memory.available", seconds(30));
  MetThreshold hard;
  hard.signal = "memory.available";
  EXPECT_EQ(EvictionGraceSeconds(hard, Pod("p", 0, 60), 600), kHardEvictionGraceSeconds);
  EXPECT_EQ(EvictionGraceSeconds(soft, Pod("p", 0, 60), 20), 20);
  EXPECT_EQ(EvictionGraceSeconds(soft, Pod("p", 0, 10), 20), 10);
  EXPECT_EQ(EvictionGraceSeconds(soft, Pod("p"), 45), 30);         // unset: the API's default 30
  EXPECT_EQ(EvictionGraceSeconds(soft, Pod("p", 0, 60), 0), 0);    // upstream's default: at once
  EXPECT_EQ(EvictionGraceSeconds(soft, Pod("p", 0, 60), -1), 60);  // negative: the pod's own
}

// --- the manager on a fake clock ---

class SoftEvictionManagerTest : public ::testing::Test {
 protected:
  std::unique_ptr<EvictionManager> Make(int64_t max_pod_grace) {
    EvictionManagerOptions options;
    options.thresholds = {{"memory.available", 100 * kMi, std::nullopt},
                          {"memory.available", 500 * kMi, std::nullopt, true, seconds(60)}};
    options.max_pod_grace_seconds = max_pod_grace;
    EvictionHooks hooks;
    hooks.observe = [this] {
      NodeSignals s;
      s.memory_available = available_;
      s.memory_capacity = 4096 * kMi;
      return s;
    };
    hooks.list_pods = [this] {
      return std::vector<std::shared_ptr<const json>>(pods_.begin(), pods_.end());
    };
    hooks.read_usage = [] {
      std::map<std::string, PodUsage> usage;
      usage["uid-calm"].container_memory["app"] = 10 * kMi;
      usage["uid-hungry"].container_memory["app"] = 300 * kMi;
      return usage;
    };
    hooks.evict = [this](const json& pod, const std::string& message, int64_t grace) {
      evicted_.push_back(pod["metadata"]["name"].get<std::string>() + " " + std::to_string(grace));
      messages_.push_back(message);
    };
    hooks.now = [this] { return now_; };
    return std::make_unique<EvictionManager>(options, hooks);
  }

  std::vector<std::shared_ptr<json>> pods_ = {std::make_shared<json>(Pod("calm", 0, 5)),
                                              std::make_shared<json>(Pod("hungry", 0, 120))};
  int64_t available_ = 1024 * kMi;
  std::chrono::steady_clock::time_point now_ =
      std::chrono::steady_clock::time_point() + std::chrono::hours(1);
  std::vector<std::string> evicted_, messages_;
};

TEST_F(SoftEvictionManagerTest, NotBeforeTheGracePeriodThenWithTheCappedPodGrace) {
  auto manager = Make(/*max_pod_grace=*/30);
  available_ = 400 * kMi;  // below the soft 500Mi, above the hard 100Mi
  auto pass = manager->RunOnce();
  EXPECT_FALSE(pass.threshold.has_value());
  EXPECT_EQ(pass.soft_waiting, std::vector<std::string>{"memory.available"});
  now_ += seconds(50);
  pass = manager->RunOnce();
  EXPECT_FALSE(pass.threshold.has_value());
  EXPECT_TRUE(evicted_.empty());
  now_ += seconds(10);  // met in every pass for 60 s
  pass = manager->RunOnce();
  ASSERT_TRUE(pass.threshold.has_value());
  EXPECT_TRUE(pass.threshold->soft);
  EXPECT_EQ(pass.evicted, "default/hungry");
  EXPECT_EQ(pass.grace_seconds, 30);  // min(120, 30)
  EXPECT_EQ(evicted_, std::vector<std::string>{"hungry 30"});
  // The same message as a hard eviction's, with the soft threshold's quantity.
  EXPECT_EQ(messages_[0],
            "The node was low on resource: memory. Threshold quantity: 500Mi, available: 400Mi. "
            "Container app was using 300Mi, request is 0, has larger consumption of memory. ");
}

TEST_F(SoftEvictionManagerTest, ARecoveryInBetweenStartsTheGracePeriodOver) {
  auto manager = Make(/*max_pod_grace=*/30);
  available_ = 400 * kMi;
  manager->RunOnce();
  now_ += seconds(40);
  available_ = 600 * kMi;  // fine again for one pass
  EXPECT_TRUE(manager->RunOnce().soft_waiting.empty());
  now_ += seconds(10);
  available_ = 400 * kMi;
  manager->RunOnce();
  now_ += seconds(59);  // 109 s since the first sighting, 59 s of this run
  EXPECT_TRUE(manager->RunOnce().evicted.empty());
  now_ += seconds(1);
  EXPECT_EQ(manager->RunOnce().evicted, "default/hungry");
}

TEST_F(SoftEvictionManagerTest, TheHardThresholdStillActsAtOnceWithOneSecond) {
  auto manager = Make(/*max_pod_grace=*/30);
  available_ = 50 * kMi;  // both met; the hard one counts now
  auto pass = manager->RunOnce();
  ASSERT_TRUE(pass.threshold.has_value());
  EXPECT_FALSE(pass.threshold->soft);
  EXPECT_EQ(evicted_, std::vector<std::string>{"hungry 1"});
}

TEST_F(SoftEvictionManagerTest, ThePodsOwnGraceWhenShorterThanTheMaximum) {
  auto manager = Make(/*max_pod_grace=*/300);
  (*pods_[1])["spec"]["priority"] = 1000;  // the calm pod goes first now, its grace 5 s
  available_ = 400 * kMi;
  manager->RunOnce();
  now_ += seconds(60);
  EXPECT_EQ(manager->RunOnce().evicted, "default/calm");
  EXPECT_EQ(evicted_, std::vector<std::string>{"calm 5"});
}

TEST(SoftEvictionNodeStatusTest, ASoftThresholdSetsTheConditionAtOnce) {
  // The node status loop evaluates hard and soft thresholds alike: no grace period there.
  auto soft = ParseEvictionSoft("memory.available<500Mi", "memory.available=10m");
  ASSERT_TRUE(soft.ok());
  NodeSignals signals;
  signals.memory_available = 400 * kMi;
  signals.memory_capacity = 4096 * kMi;
  EXPECT_TRUE(EvaluatePressure(*soft, signals).memory);
  // Allocatable subtracts the hard thresholds only.
  NodeOptions options;
  options.node_name = "n";
  options.eviction_soft = *soft;
  MachineFacts facts;
  facts.memory_bytes = 4096 * kMi;
  const json status = BuildNodeStatus(options, facts, {}, true, json::object(), "now");
  EXPECT_EQ(status["allocatable"]["memory"], status["capacity"]["memory"]);
}

// --- PID pressure: process counts ---

TEST(PidRankingTest, LowerPriorityThenMoreProcesses) {
  const json few = Pod("few"), many = Pod("many"), important = Pod("important", 1000);
  std::vector<EvictionCandidate> candidates(3);
  candidates[0].pod = &few;
  candidates[0].usage.processes = 3;
  candidates[0].usage.container_memory["app"] = 900 * kMi;  // memory plays no part
  candidates[1].pod = &important;
  candidates[1].usage.processes = 5000;
  candidates[2].pod = &many;
  candidates[2].usage.processes = 400;
  EXPECT_EQ(RankForEviction(EvictionResource::kPids, candidates), (std::vector<size_t>{2, 0, 1}));
}

TEST(PidRankingTest, ProcessCountsComeFromThePodCgroups) {
  const std::filesystem::path root =
      std::filesystem::temp_directory_path() / ("mk8s-pids-" + std::to_string(::getpid()));
  std::filesystem::remove_all(root);
  // cgroup v1: the pids controller's own hierarchy; v2: the unified tree.
  const json v1 = Pod("v1"), v2 = Pod("v2"), gone = Pod("gone");
  std::filesystem::create_directories(root / "pids/mk8s/besteffort/poduid-v1");
  std::ofstream(root / "pids/mk8s/besteffort/poduid-v1/pids.current") << "42\n";
  std::filesystem::create_directories(root / "mk8s/besteffort/poduid-v2");
  std::ofstream(root / "mk8s/besteffort/poduid-v2/pids.current") << "7\n";
  std::map<std::string, PodUsage> usage;
  usage["uid-v1"].container_memory["app"] = kMi;
  ReadPodProcessCounts(
      root.string(),
      {std::make_shared<json>(v1), std::make_shared<json>(v2), std::make_shared<json>(gone)},
      &usage);
  EXPECT_EQ(usage["uid-v1"].processes, 42);
  EXPECT_EQ(usage["uid-v1"].container_memory["app"], kMi);  // the rest kept
  EXPECT_EQ(usage["uid-v2"].processes, 7);
  EXPECT_EQ(usage.count("uid-gone"), 0u);
  std::filesystem::remove_all(root);
}

}  // namespace
}  // namespace mk8s::kubelet
