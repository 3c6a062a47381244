#include "kubelet/pod_status.h"

#include <gtest/gtest.h>

#include "kubelet/qos.h"

namespace mk8s::kubelet {
namespace {

using nlohmann::json;

json Pod(const std::string& policy = "Always") {
  return {{"metadata", {{"name", "p"}, {"namespace", "ns"}, {"uid", "u1"}}},
          {"spec",
           {{"restartPolicy", policy},
            {"containers", json::array({{{"name", "a"}, {"image", "img:1"}}})}}},
          {"status",
           {{"phase", "Pending"},
            {"conditions", json::array({{{"type", "PodScheduled"},
                                         {"status", "True"},
                                         {"lastTransitionTime", "2026-01-01T00:00:00Z"}}})}}}};
}

ContainerInfo Instance(const std::string& name, int restarts, ContainerState state,
                       int exit_code = 0) {
  ContainerInfo c;
  c.id = name + std::to_string(restarts);
  c.sandbox_id = "s1";
  c.name = name;
  c.restart_count = restarts;
  c.state = state;
  c.created_at_ns = 1000 + restarts;
  c.started_at_ns = 1'700'000'000'000'000'000 + restarts;
  c.finished_at_ns = state == ContainerState::kExited ? 1'700'000'100'000'000'000 : 0;
  c.exit_code = exit_code;
  c.image_ref = "sha256:abc";
  return c;
}

PodRuntimeState Runtime(std::vector<ContainerInfo> containers) {
  PodRuntimeState state;
  SandboxInfo sandbox;
  sandbox.id = "s1";
  sandbox.ready = true;
  sandbox.ips = {"10.1.0.5"};
  state.sandboxes.push_back(sandbox);
  state.containers = std::move(containers);
  return state;
}

json Compute(const json& pod, const PodRuntimeState& runtime,
             std::map<std::string, Waiting> waiting = {}) {
  StatusInputs in;
  in.pod = &pod;
  in.runtime = &runtime;
  in.waiting = std::move(waiting);
  in.host_ips = {"10.200.0.1"};
  in.now = "2026-11-27T00:00:00Z";
  return ComputePodStatus(in);
}

std::map<std::string, std::string> Conditions(const json& status) {
  std::map<std::string, std::string> out;
  for (const json& c : status["conditions"]) out[c["type"]] = c["status"];
  return out;
}

TEST(PodStatusTest, RunningContainerMakesThePodRunningAndReady) {
  const json pod = Pod();
  const json status = Compute(pod, Runtime({Instance("a", 0, ContainerState::kRunning)}));
  EXPECT_EQ(status["phase"], "Running");
  EXPECT_EQ(status["podIP"], "10.1.0.5");
  EXPECT_EQ(status["podIPs"], json::array({{{"ip", "10.1.0.5"}}}));
  EXPECT_EQ(status["hostIP"], "10.200.0.1");
  EXPECT_EQ(status["qosClass"], "BestEffort");
  const json& cs = status["containerStatuses"][0];
  EXPECT_EQ(cs["containerID"], "containerd://a0");
  EXPECT_TRUE(cs["ready"]);
  EXPECT_TRUE(cs["started"]);
  EXPECT_TRUE(cs["state"].contains("running"));
  auto conditions = Conditions(status);
  EXPECT_EQ(conditions["Ready"], "True");
  EXPECT_EQ(conditions["ContainersReady"], "True");
  EXPECT_EQ(conditions["Initialized"], "True");
  EXPECT_EQ(conditions["PodReadyToStartContainers"], "True");
  EXPECT_EQ(conditions["PodScheduled"], "True");
  // PodScheduled keeps the scheduler's transition time.
  for (const json& c : status["conditions"]) {
    if (c["type"] == "PodScheduled") {
      EXPECT_EQ(c["lastTransitionTime"], "2026-01-01T00:00:00Z");
    }
  }
}

TEST(PodStatusTest, NoInstanceYetIsContainerCreating) {
  const json status = Compute(Pod(), Runtime({}));
  EXPECT_EQ(status["phase"], "Pending");
  EXPECT_EQ(status["containerStatuses"][0]["state"]["waiting"]["reason"], "ContainerCreating");
  EXPECT_EQ(Conditions(status)["Ready"], "False");
}

TEST(PodStatusTest, CrashLoopShowsWaitingWithLastTerminated) {
  const json pod = Pod();
  const json status = Compute(
      pod,
      Runtime({Instance("a", 0, ContainerState::kExited, 1),
               Instance("a", 1, ContainerState::kExited, 1)}),
      {{"a", {"CrashLoopBackOff", "back-off 10s restarting failed container=a pod=p_ns(u1)"}}});
  const json& cs = status["containerStatuses"][0];
  EXPECT_EQ(cs["state"]["waiting"]["reason"], "CrashLoopBackOff");
  EXPECT_EQ(cs["lastState"]["terminated"]["exitCode"], 1);
  EXPECT_EQ(cs["lastState"]["terminated"]["reason"], "Error");
  EXPECT_EQ(cs["lastState"]["terminated"]["containerID"], "containerd://a1");
  EXPECT_EQ(cs["restartCount"], 1);
  EXPECT_EQ(status["phase"], "Running");  // restartPolicy Always keeps it running
}

TEST(PodStatusTest, RestartedContainerCarriesLastState) {
  const json status = Compute(Pod(), Runtime({Instance("a", 0, ContainerState::kExited, 137),
                                              Instance("a", 1, ContainerState::kRunning)}));
  const json& cs = status["containerStatuses"][0];
  EXPECT_EQ(cs["restartCount"], 1);
  EXPECT_TRUE(cs["state"].contains("running"));
  EXPECT_EQ(cs["lastState"]["terminated"]["exitCode"], 137);
}

TEST(PodStatusTest, PhaseRules) {
  json ok_exit = Pod("Never");
  EXPECT_EQ(Compute(ok_exit, Runtime({Instance("a", 0, ContainerState::kExited, 0)}))["phase"],
            "Succeeded");
  EXPECT_EQ(Compute(ok_exit, Runtime({Instance("a", 0, ContainerState::kExited, 2)}))["phase"],
            "Failed");
  json on_failure = Pod("OnFailure");
  EXPECT_EQ(Compute(on_failure, Runtime({Instance("a", 0, ContainerState::kExited, 0)}))["phase"],
            "Succeeded");
  EXPECT_EQ(Compute(on_failure, Runtime({Instance("a", 0, ContainerState::kExited, 2)}))["phase"],
            "Running");
  const json terminated = Compute(ok_exit, Runtime({Instance("a", 0, ContainerState::kExited, 0)}));
  EXPECT_EQ(terminated["containerStatuses"][0]["state"]["terminated"]["reason"], "Completed");
  EXPECT_EQ(Conditions(terminated)["Ready"], "False");
  // A terminal phase never goes back.
  json finished = Pod("Always");
  finished["status"]["phase"] = "Failed";
  EXPECT_EQ(Compute(finished, Runtime({Instance("a", 0, ContainerState::kRunning)}))["phase"],
            "Failed");
}

TEST(PodStatusTest, InitContainersGateThePod) {
  json pod = Pod("Always");
  pod["spec"]["initContainers"] = json::array({{{"name", "init"}, {"image", "img:1"}}});
  json status = Compute(pod, Runtime({Instance("init", 0, ContainerState::kRunning)}));
  EXPECT_EQ(status["phase"], "Pending");
  EXPECT_EQ(Conditions(status)["Initialized"], "False");
  EXPECT_EQ(status["containerStatuses"][0]["state"]["waiting"]["reason"], "PodInitializing");
  for (const json& c : status["conditions"]) {
    if (c["type"] == "Initialized") {
      EXPECT_EQ(c["message"], "containers with incomplete status: [init]");
    }
  }
  status = Compute(pod, Runtime({Instance("init", 0, ContainerState::kExited, 0),
                                 Instance("a", 0, ContainerState::kRunning)}));
  EXPECT_EQ(status["phase"], "Running");
  EXPECT_EQ(Conditions(status)["Initialized"], "True");
  json never = pod;
  never["spec"]["restartPolicy"] = "Never";
  status = Compute(never, Runtime({Instance("init", 0, ContainerState::kExited, 1)}));
  EXPECT_EQ(status["phase"], "Failed");
}

TEST(PodStatusTest, TransitionTimesKeptWhileUnchanged) {
  json pod = Pod();
  const auto runtime = Runtime({Instance("a", 0, ContainerState::kRunning)});
  pod["status"] = Compute(pod, runtime);
  StatusInputs in;
  in.pod = &pod;
  in.runtime = &runtime;
  in.host_ips = {"10.200.0.1"};
  in.now = "2030-01-01T00:00:00Z";
  EXPECT_FALSE(StatusChanged(pod["status"], ComputePodStatus(in)));
}

TEST(QosTest, Classes) {
  json pod = Pod();
  EXPECT_EQ(QosClass(pod), "BestEffort");
  EXPECT_EQ(PodCgroupParent(pod), "/mk8s/besteffort/podu1");
  pod["spec"]["containers"][0]["resources"] = {{"requests", {{"cpu", "100m"}}}};
  EXPECT_EQ(QosClass(pod), "Burstable");
  EXPECT_EQ(PodCgroupParent(pod), "/mk8s/burstable/podu1");
  pod["spec"]["containers"][0]["resources"] = {{"limits", {{"cpu", "1"}, {"memory", "1Gi"}}}};
  EXPECT_EQ(QosClass(pod), "Guaranteed");
  EXPECT_EQ(PodCgroupParent(pod), "/mk8s/podu1");
  EXPECT_EQ(OomScoreAdj(pod, pod["spec"]["containers"][0], 8LL << 30), -997);
  pod["spec"]["containers"][0]["resources"] = {{"requests", {{"memory", "4Gi"}}}};
  EXPECT_EQ(OomScoreAdj(pod, pod["spec"]["containers"][0], 8LL << 30), 500);
}

}  // namespace
}  // namespace mk8s::kubelet

namespace mk8s::kubelet {
namespace {

TEST(PodStatusProbesTest, ReadinessProbeGatesReady) {
  json pod = Pod();
  pod["spec"]["containers"][0]["readinessProbe"] = {{"httpGet", {{"port", 80}}}};
  const auto runtime = Runtime({Instance("a", 0, ContainerState::kRunning)});
  StatusInputs in;
  in.pod = &pod;
  in.runtime = &runtime;
  in.now = "T";
  json status = ComputePodStatus(in);
  EXPECT_FALSE(status["containerStatuses"][0]["ready"]);  // no result yet
  EXPECT_TRUE(status["containerStatuses"][0]["started"]);
  EXPECT_EQ(Conditions(status)["Ready"], "False");
  in.probes["a0"].ready = true;
  status = ComputePodStatus(in);
  EXPECT_TRUE(status["containerStatuses"][0]["ready"]);
  EXPECT_EQ(Conditions(status)["Ready"], "True");
  pod["spec"]["containers"][0]["startupProbe"] = {{"exec", {{"command", {"true"}}}}};
  in.probes["a0"].started = false;
  status = ComputePodStatus(in);
  EXPECT_FALSE(status["containerStatuses"][0]["started"]);
  EXPECT_FALSE(status["containerStatuses"][0]["ready"]);
}

}  // namespace
}  // namespace mk8s::kubelet
