#include "kubelet/node_status.h"

#include <gtest/gtest.h>

namespace mk8s::kubelet {
namespace {

using nlohmann::json;

NodeOptions Options() {
  NodeOptions options;
  options.node_name = "n1";
  options.node_ips = {"10.200.0.1"};
  options.kubelet_port = 10250;
  options.extended_resources = {{"nvidia.com/gpu", "1"}};
  return options;
}

MachineFacts Facts() {
  MachineFacts facts;
  facts.cpus = 2;
  facts.memory_bytes = 4LL << 30;
  facts.ephemeral_storage_bytes = 100LL << 30;
  facts.kernel_version = "6.1.0";
  facts.os_image = "Debian GNU/Linux 12 (bookworm)";
  return facts;
}

std::string ReadyOf(const json& status, std::string* reason = nullptr) {
  for (const json& c : status["conditions"]) {
    if (c["type"] == "Ready") {
      if (reason) *reason = c["reason"];
      return c["status"];
    }
  }
  return "";
}

TEST(NodeStatusTest, CapacityAddressesAndInfo) {
  RuntimeReadiness runtime{true, true, "containerd://1.6.20", ""};
  const json status = BuildNodeStatus(Options(), Facts(), runtime, true, json::object(), "T0");
  EXPECT_EQ(status["capacity"]["cpu"], "2");
  EXPECT_EQ(status["capacity"]["memory"], "4194304Ki");
  EXPECT_EQ(status["capacity"]["pods"], "110");
  EXPECT_EQ(status["capacity"]["nvidia.com/gpu"], "1");
  EXPECT_EQ(status["allocatable"], status["capacity"]);
  EXPECT_EQ(status["addresses"][0], json({{"type", "InternalIP"}, {"address", "10.200.0.1"}}));
  EXPECT_EQ(status["addresses"][1], json({{"type", "Hostname"}, {"address", "n1"}}));
  EXPECT_EQ(status["nodeInfo"]["containerRuntimeVersion"], "containerd://1.6.20");
  EXPECT_EQ(status["nodeInfo"]["kubeletVersion"], "v1.32.4");
  EXPECT_EQ(status["daemonEndpoints"]["kubeletEndpoint"]["Port"], 10250);
  std::string reason;
  EXPECT_EQ(ReadyOf(status, &reason), "True");
  EXPECT_EQ(reason, "KubeletReady");
  EXPECT_EQ(status["conditions"].size(), 4u);
}

TEST(NodeStatusTest, NotReadyWithoutPodCidrOrRuntime) {
  RuntimeReadiness runtime{true, false, "containerd://1.6.20", ""};
  json status = BuildNodeStatus(Options(), Facts(), runtime, false, json::object(), "T0");
  std::string reason;
  EXPECT_EQ(ReadyOf(status, &reason), "False");
  EXPECT_EQ(reason, "KubeletNotReady");
  for (const json& c : status["conditions"]) {
    if (c["type"] == "Ready") {
      EXPECT_NE(c["message"].get<std::string>().find("no pod CIDR"), std::string::npos);
    }
  }
  runtime.runtime_ready = false;
  status = BuildNodeStatus(Options(), Facts(), runtime, true, json::object(), "T0");
  EXPECT_EQ(ReadyOf(status), "False");
}

TEST(NodeStatusTest, TransitionTimeKeptHeartbeatMoves) {
  RuntimeReadiness runtime{true, true, "containerd://1.6.20", ""};
  const json first = BuildNodeStatus(Options(), Facts(), runtime, true, json::object(), "T0");
  const json second = BuildNodeStatus(Options(), Facts(), runtime, true, first, "T1");
  for (const json& c : second["conditions"]) {
    EXPECT_EQ(c["lastTransitionTime"], "T0");
    EXPECT_EQ(c["lastHeartbeatTime"], "T1");
  }
  runtime.runtime_ready = false;
  const json third = BuildNodeStatus(Options(), Facts(), runtime, true, second, "T2");
  for (const json& c : third["conditions"]) {
    if (c["type"] == "Ready") {
      EXPECT_EQ(c["lastTransitionTime"], "T2");
    }
  }
}

TEST(NodeStatusTest, NodeObjectLabels) {
  const json node = NewNodeObject(Options());
  EXPECT_EQ(node["metadata"]["name"], "n1");
  EXPECT_EQ(node["metadata"]["labels"]["kubernetes.io/hostname"], "n1");
  EXPECT_EQ(node["metadata"]["labels"]["kubernetes.io/os"], "linux");
}

}  // namespace
}  // namespace mk8s::kubelet
