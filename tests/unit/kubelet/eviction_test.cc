// The kubelet's eviction policy (ranking, messages, admission under pressure) and the eviction
// manager's passes over fake signals, pods and usage.
#include "kubelet/eviction.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "kubelet/eviction_manager.h"

namespace mk8s::kubelet {
namespace {

using nlohmann::json;
constexpr int64_t kMi = 1024 * 1024;

json Pod(const std::string& name, json requests = json::object(), int64_t priority = 0) {
  json container = {{"name", "app"}, {"image", "busybox"}};
  if (!requests.empty()) container["resources"] = {{"requests", requests}};
  return {{"metadata", {{"name", name}, {"namespace", "default"}, {"uid", "uid-" + name}}},
          {"spec", {{"containers", json::array({container})}, {"priority", priority}}},
          {"status", {{"phase", "Running"}}}};
}

EvictionCandidate Candidate(const json& pod, int64_t memory, int64_t storage = 0) {
  EvictionCandidate c;
  c.pod = &pod;
  c.usage.container_memory["app"] = memory;
  c.usage.container_storage["app"] = storage;
  return c;
}

TEST(EvictionPolicyTest, ActsOnMemoryBeforeDiskBeforePids) {
  EXPECT_FALSE(ThresholdToReclaim({}).has_value());
  auto chosen = ThresholdToReclaim({{"pid.available", 10, 100},
                                    {"imagefs.available", 1, 2},
                                    {"nodefs.available", 1, 2},
                                    {"memory.available", 5 * kMi, 100 * kMi}});
  ASSERT_TRUE(chosen.has_value());
  EXPECT_EQ(chosen->signal, "memory.available");
  chosen = ThresholdToReclaim({{"imagefs.available", 1, 2}, {"nodefs.inodesFree", 1, 2}});
  EXPECT_EQ(chosen->signal, "nodefs.inodesFree");
  EXPECT_EQ(ResourceOfSignal("nodefs.inodesFree"), EvictionResource::kEphemeralStorage);
  EXPECT_EQ(ResourceOfSignal("memory.available"), EvictionResource::kMemory);
  EXPECT_EQ(ResourceOfSignal("pid.available"), EvictionResource::kPids);
}

TEST(EvictionPolicyTest, MemoryRankingPutsPodsAboveTheirRequestsFirstThenPriorityThenExcess) {
  const json under = Pod("under", {{"memory", "500Mi"}});          // uses 400Mi of 500Mi
  const json best_effort_small = Pod("be-small");                  // uses 10Mi, asks nothing
  const json best_effort_big = Pod("be-big");                      // uses 300Mi
  const json important = Pod("important", json::object(), 1000);   // uses 900Mi, priority 1000
  std::vector<EvictionCandidate> candidates = {
      Candidate(under, 400 * kMi), Candidate(best_effort_small, 10 * kMi),
      Candidate(best_effort_big, 300 * kMi), Candidate(important, 900 * kMi)};
  const auto order = RankForEviction(EvictionResource::kMemory, candidates);
  ASSERT_EQ(order.size(), 4u);
  EXPECT_EQ(order[0], 2u);  // over its request, priority 0, 300Mi above
  EXPECT_EQ(order[1], 1u);  // over its request, priority 0, 10Mi above
  EXPECT_EQ(order[2], 3u);  // over its request but priority 1000
  EXPECT_EQ(order[3], 0u);  // within its request: last
}

TEST(EvictionPolicyTest, StorageRankingUsesEphemeralStorageAndVolumes) {
  const json writer = Pod("writer", {{"ephemeral-storage", "1Gi"}});
  const json small = Pod("small");
  std::vector<EvictionCandidate> candidates = {Candidate(writer, 0, 900 * kMi),
                                               Candidate(small, 0, 1 * kMi)};
  candidates[0].usage.volume_storage = 200 * kMi;  // 1100Mi in all: above its 1Gi request
  auto order = RankForEviction(EvictionResource::kEphemeralStorage, candidates);
  EXPECT_EQ(order[0], 0u);
  candidates[0].usage.volume_storage = 0;  // 900Mi: within its request now
  order = RankForEviction(EvictionResource::kEphemeralStorage, candidates);
  EXPECT_EQ(order[0], 1u);
}

TEST(EvictionPolicyTest, EffectiveRequestTakesTheLargestInitContainer) {
  json pod = Pod("p", {{"memory", "100Mi"}});
  pod["spec"]["initContainers"] = json::array(
      {{{"name", "init"}, {"resources", {{"limits", {{"memory", "300Mi"}}}}}}});
  EXPECT_EQ(PodRequest(pod, EvictionResource::kMemory), 300 * kMi);
  EXPECT_EQ(PodRequest(pod, EvictionResource::kEphemeralStorage), 0);
  EXPECT_EQ(PodRequest(Pod("bad", {{"memory", "lots"}}), EvictionResource::kMemory), 0);
}

TEST(EvictionPolicyTest, MessageNamesTheResourceThresholdAndHungryContainers) {
  const json pod = Pod("p", {{"memory", "100Mi"}});
  const MetThreshold met{"memory.available", 80 * kMi, 100 * kMi};
  EXPECT_EQ(EvictionMessage(met, Candidate(pod, 120 * kMi)),
            "The node was low on resource: memory. Threshold quantity: 100Mi, available: 80Mi. "
            "Container app was using 120Mi, request is 100Mi, has larger consumption of memory. ");
  // A container within its request is not named.
  EXPECT_EQ(EvictionMessage(met, Candidate(pod, 50 * kMi)),
            "The node was low on resource: memory. Threshold quantity: 100Mi, available: 80Mi. ");
  const MetThreshold disk{"nodefs.available", 512 * kMi, 1024 * kMi};
  EXPECT_EQ(EvictionMessage(disk, Candidate(Pod("q"), 0, 4096)),
            "The node was low on resource: ephemeral-storage. Threshold quantity: 1024Mi, "
            "available: 512Mi. Container app was using 4Ki, request is 0, has larger consumption "
            "of ephemeral-storage. ");
}

TEST(EvictionPolicyTest, CriticalPodsAreNeverCandidatesAndAlwaysAdmitted) {
  json critical = Pod("dns", json::object(), 2000000000);
  EXPECT_TRUE(IsCriticalPod(critical));
  json mirror = Pod("static");
  mirror["metadata"]["annotations"] = {{"kubernetes.io/config.mirror", "abc"}};
  EXPECT_TRUE(IsCriticalPod(mirror));
  EXPECT_FALSE(IsCriticalPod(Pod("user", json::object(), 1000000000)));
  NodePressure all;
  all.memory = all.disk = all.pid = true;
  EXPECT_FALSE(RejectUnderPressure(critical, all).has_value());
}

TEST(EvictionPolicyTest, AdmissionUnderPressure) {
  const json best_effort = Pod("be");
  const json burstable = Pod("burst", {{"memory", "10Mi"}});
  json tolerant = Pod("tolerant");
  tolerant["spec"]["tolerations"] = json::array(
      {{{"key", "node.kubernetes.io/memory-pressure"}, {"operator", "Exists"},
        {"effect", "NoSchedule"}}});
  EXPECT_FALSE(RejectUnderPressure(best_effort, NodePressure{}).has_value());

  NodePressure memory;
  memory.memory = true;
  EXPECT_EQ(RejectUnderPressure(best_effort, memory).value_or(""),
            "The node had condition: [MemoryPressure]. ");
  EXPECT_FALSE(RejectUnderPressure(burstable, memory).has_value());
  EXPECT_FALSE(RejectUnderPressure(tolerant, memory).has_value());

  NodePressure disk;
  disk.disk = true;
  EXPECT_EQ(RejectUnderPressure(burstable, disk).value_or(""),
            "The node had condition: [DiskPressure]. ");
  NodePressure both = disk;
  both.memory = true;
  EXPECT_EQ(RejectUnderPressure(tolerant, both).value_or(""),
            "The node had condition: [MemoryPressure DiskPressure]. ");
}

// The eviction manager over fakes: a node whose nodefs is short until images are freed or a
// pod is gone.
class EvictionManagerTest : public ::testing::Test {
 protected:
  EvictionManagerTest() {
    pods_ = {std::make_shared<json>(Pod("small")), std::make_shared<json>(Pod("big")),
             std::make_shared<json>(Pod("dns", json::object(), 2000000000))};
    usage_["uid-small"].container_storage["app"] = 1 * kMi;
    usage_["uid-big"].container_storage["app"] = 50 * kMi;
    usage_["uid-dns"].container_storage["app"] = 500 * kMi;
  }

  std::unique_ptr<EvictionManager> Make() {
    EvictionManagerOptions options;
    options.thresholds = {{"nodefs.available", 100 * kMi, std::nullopt}};
    EvictionHooks hooks;
    hooks.observe = [this] {
      NodeSignals s;
      s.nodefs_available = available_;
      s.nodefs_capacity = 1000 * kMi;
      return s;
    };
    hooks.list_pods = [this] {
      return std::vector<std::shared_ptr<const json>>(pods_.begin(), pods_.end());
    };
    hooks.read_usage = [this] { return usage_; };
    hooks.reclaim_images = [this]() -> uint64_t {
      ++reclaims_;
      available_ += image_bytes_;
      const uint64_t freed = static_cast<uint64_t>(image_bytes_);
      image_bytes_ = 0;
      return freed;
    };
    hooks.evict = [this](const json& pod, const std::string& message, int64_t) {
      evicted_.push_back(pod["metadata"]["name"].get<std::string>());
      messages_.push_back(message);
    };
    return std::make_unique<EvictionManager>(options, hooks);
  }

  void Finish(const std::string& name) {
    for (auto& pod : pods_) {
      if ((*pod)["metadata"]["name"] == name) {
        auto copy = std::make_shared<json>(*pod);
        (*copy)["status"]["phase"] = "Failed";
        pod = copy;
      }
    }
  }

  std::vector<std::shared_ptr<json>> pods_;
  std::map<std::string, PodUsage> usage_;
  int64_t available_ = 500 * kMi;
  int64_t image_bytes_ = 0;
  int reclaims_ = 0;
  std::vector<std::string> evicted_, messages_;
};

TEST_F(EvictionManagerTest, DoesNothingWhileNoThresholdIsMet) {
  auto manager = Make();
  auto pass = manager->RunOnce();
  EXPECT_FALSE(pass.threshold.has_value());
  EXPECT_EQ(reclaims_, 0);
  EXPECT_TRUE(evicted_.empty());
}

TEST_F(EvictionManagerTest, FreesImagesFirstAndEvictsNobodyWhenThatIsEnough) {
  available_ = 50 * kMi;
  image_bytes_ = 200 * kMi;
  auto manager = Make();
  auto pass = manager->RunOnce();
  ASSERT_TRUE(pass.threshold.has_value());
  EXPECT_EQ(pass.images_freed, static_cast<uint64_t>(200 * kMi));
  EXPECT_EQ(reclaims_, 1);
  EXPECT_TRUE(evicted_.empty());
}

TEST_F(EvictionManagerTest, EvictsOnePodAtATimeLargestUserFirstNeverTheCriticalOne) {
  available_ = 50 * kMi;
  auto manager = Make();
  auto pass = manager->RunOnce();
  EXPECT_EQ(pass.evicted, "default/big");
  ASSERT_EQ(messages_.size(), 1u);
  EXPECT_EQ(messages_[0],
            "The node was low on resource: ephemeral-storage. Threshold quantity: 100Mi, "
            "available: 50Mi. Container app was using 50Mi, request is 0, has larger "
            "consumption of ephemeral-storage. ");
  // Still short, but the evicted pod has not finished yet: nobody else goes.
  pass = manager->RunOnce();
  EXPECT_TRUE(pass.evicted.empty());
  EXPECT_EQ(evicted_.size(), 1u);
  // Once the API shows it Failed, the next one goes; the critical pod never does.
  Finish("big");
  pass = manager->RunOnce();
  EXPECT_EQ(pass.evicted, "default/small");
  Finish("small");
  pass = manager->RunOnce();
  EXPECT_TRUE(pass.evicted.empty());
  EXPECT_EQ(evicted_, (std::vector<std::string>{"big", "small"}));
}

TEST_F(EvictionManagerTest, NoThresholdsMeansNoThread) {
  EvictionManager manager({}, {});
  manager.Start();  // returns at once: nothing to watch
  manager.Stop();
}

}  // namespace
}  // namespace mk8s::kubelet
