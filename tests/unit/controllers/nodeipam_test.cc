// Node IPAM controller: a distinct /24 per node out of 10.1.0.0/16, released when the node is
// deleted; exhaustion leaves the node waiting (with a CIDRNotAvailable event) until one is free.
#include <arpa/inet.h>

#include <atomic>
#include <functional>
#include <set>

#include "controllers/nodeipam/node_ipam_controller.h"
#include "fixture.h"

namespace mk8s::controllers::test {
namespace {

// Passes requests on; the first PATCH of a node runs `before` first (on the sending worker's
// thread, so it may make blocking calls through another client) and records the answer's code.
class PatchHookTransport final : public client::Transport {
 public:
  PatchHookTransport(std::shared_ptr<client::Transport> inner, std::function<void()> before)
      : inner_(std::move(inner)), before_(std::move(before)) {}
  std::atomic<int> patches{0};
  std::atomic<int> first_answer{0};

  void Send(client::Request request, client::ResponseCallback done) override {
    if (request.method != "PATCH" || request.path.find("/nodes/") == std::string::npos) {
      return inner_->Send(std::move(request), std::move(done));
    }
    if (patches.fetch_add(1) > 0) return inner_->Send(std::move(request), std::move(done));
    before_();
    inner_->Send(std::move(request), [this, done = std::move(done)](client::Response response) {
      first_answer = response.status;
      done(std::move(response));
    });
  }
  std::shared_ptr<client::StreamHandle> Stream(client::Request request,
                                               client::StreamCallbacks callbacks) override {
    return inner_->Stream(std::move(request), std::move(callbacks));
  }
  std::string Describe() const override { return inner_->Describe(); }

 private:
  const std::shared_ptr<client::Transport> inner_;
  const std::function<void()> before_;
};

class NodeIpamTest : public ControllerTest {
 protected:
  std::string PodCidr(const std::string& node) {
    auto got = Get(client::kNodes, "", node);
    return got ? got->value("/spec/podCIDR"_json_pointer, std::string()) : "";
  }
  bool AllHaveCidrs(const std::vector<std::string>& nodes) {
    for (const std::string& node : nodes) {
      if (PodCidr(node).empty()) return false;
    }
    return true;
  }
};

// "10.1.7.0/24" is inside 10.1.0.0/16 and is a /24 network address.
bool IsClusterSubnet(const std::string& cidr) {
  const size_t slash = cidr.find('/');
  if (slash == std::string::npos || cidr.substr(slash) != "/24") return false;
  in_addr address{};
  if (inet_pton(AF_INET, cidr.substr(0, slash).c_str(), &address) != 1) return false;
  const uint32_t value = ntohl(address.s_addr);
  return (value & 0xFFFF0000u) == 0x0A010000u && (value & 0xFFu) == 0;
}

TEST_F(NodeIpamTest, DistinctSubnetPerNode) {
  StartController("node-ipam");
  std::vector<std::string> nodes;
  for (int i = 0; i < 6; ++i) {
    nodes.push_back("node-" + std::to_string(i));
    Create(client::kNodes, MakeNode(nodes.back()));
  }
  ASSERT_TRUE(WaitFor([&] { return AllHaveCidrs(nodes); }, "every node has a podCIDR"));
  std::set<std::string> cidrs;
  for (const std::string& node : nodes) {
    const json got = *Get(client::kNodes, "", node);
    const std::string cidr = got["spec"]["podCIDR"];
    EXPECT_TRUE(IsClusterSubnet(cidr)) << cidr;
    EXPECT_EQ(got["spec"]["podCIDRs"], json::array({cidr}));
    cidrs.insert(cidr);
  }
  EXPECT_EQ(cidrs.size(), nodes.size()) << "two nodes share a subnet";
}

// The API server keeps a podCIDR once set (upstream's node validation): only "" -> a value.
TEST_F(NodeIpamTest, ApiServerKeepsAPodCidrOnceSet) {
  StartController("node-ipam");
  Create(client::kNodes, MakeNode("fixed"));
  ASSERT_TRUE(WaitFor([&] { return !PodCidr("fixed").empty(); }, "fixed gets a podCIDR"));
  const std::string cidr = PodCidr("fixed");
  auto forbidden = [&](const json& spec, const std::string& field) {
    auto patched = api().Patch(client::kNodes, "", "fixed", client::PatchType::kMerge, {{"spec", spec}});
    ASSERT_FALSE(patched.ok()) << spec.dump();
    EXPECT_EQ(patched.error().code, 422);
    EXPECT_NE(patched.error().message.find(field + ": Forbidden: node updates may not change podCIDR"),
              std::string::npos)
        << patched.error().message;
  };
  forbidden({{"podCIDR", "10.1.250.0/24"}}, "spec.podCIDR");
  forbidden({{"podCIDR", nullptr}}, "spec.podCIDR");
  forbidden({{"podCIDRs", json::array({"10.1.250.0/24"})}}, "spec.podCIDRs");
  // The same value, and other spec fields, still go through.
  auto same = api().Patch(client::kNodes, "", "fixed", client::PatchType::kMerge,
                          {{"spec", {{"podCIDR", cidr}, {"unschedulable", true}}}});
  ASSERT_TRUE(same.ok()) << same.error().ToString();
  EXPECT_EQ(PodCidr("fixed"), cidr);
}

TEST_F(NodeIpamTest, SubnetReleasedOnDelete) {
  StartController("node-ipam");
  for (const char* node : {"a", "b", "c"}) Create(client::kNodes, MakeNode(node));
  ASSERT_TRUE(WaitFor([&] { return AllHaveCidrs({"a", "b", "c"}); }, "3 podCIDRs"));
  const std::string freed = PodCidr("b");
  ASSERT_TRUE(DeleteIn(client::kNodes, "", "b"));
  // The informer sees b's deletion before d's creation, and the lowest free /24 is b's.
  Create(client::kNodes, MakeNode("d"));
  ASSERT_TRUE(WaitFor([&] { return !PodCidr("d").empty(); }, "d gets a podCIDR"));
  EXPECT_EQ(PodCidr("d"), freed);
  EXPECT_NE(PodCidr("a"), PodCidr("c"));
}

TEST_F(NodeIpamTest, ExhaustedRangeWaitsForAFreeSubnet) {
  // A /22: four /24s.
  StartController([](const ControllerContext& context) -> std::unique_ptr<Controller> {
    return std::make_unique<NodeIpamController>(context, "10.250.0.0/22");
  });
  const std::vector<std::string> first = {"n0", "n1", "n2", "n3"};
  for (const std::string& node : first) Create(client::kNodes, MakeNode(node));
  ASSERT_TRUE(WaitFor([&] { return AllHaveCidrs(first); }, "4 podCIDRs"));
  std::set<std::string> cidrs;
  for (const std::string& node : first) cidrs.insert(PodCidr(node));
  EXPECT_EQ(cidrs, (std::set<std::string>{"10.250.0.0/24", "10.250.1.0/24", "10.250.2.0/24",
                                          "10.250.3.0/24"}));

  Create(client::kNodes, MakeNode("late"));
  auto not_available = [&] {
    for (const json& event : ListIn(client::kEvents, "default")) {
      if (event.value("reason", "") == "CIDRNotAvailable" &&
          event["involvedObject"].value("name", "") == "late") {
        return true;
      }
    }
    return false;
  };
  ASSERT_TRUE(WaitFor(not_available, "a CIDRNotAvailable event for the fifth node"));
  EXPECT_EQ(PodCidr("late"), "");

  const std::string freed = PodCidr("n2");
  ASSERT_TRUE(DeleteIn(client::kNodes, "", "n2"));
  // Deleting a node with a subnet wakes the waiting node.
  ASSERT_TRUE(AdvanceUntil([&] { return !PodCidr("late").empty(); }, 1s, 120s,
                           "the fifth node gets the freed subnet"));
  EXPECT_EQ(PodCidr("late"), freed);
}

// A new controller instance (a restart) rebuilds its allocations from the nodes' podCIDRs.
TEST_F(NodeIpamTest, RestartKeepsExistingAllocations) {
  StartController("node-ipam");
  for (const char* node : {"r0", "r1"}) Create(client::kNodes, MakeNode(node));
  ASSERT_TRUE(WaitFor([&] { return AllHaveCidrs({"r0", "r1"}); }, "2 podCIDRs"));
  StopControllers();
  StartController("node-ipam");
  Create(client::kNodes, MakeNode("r2"));
  ASSERT_TRUE(WaitFor([&] { return !PodCidr("r2").empty(); }, "r2 gets a podCIDR"));
  EXPECT_NE(PodCidr("r2"), PodCidr("r0"));
  EXPECT_NE(PodCidr("r2"), PodCidr("r1"));
}

// A podCIDR written after the version the controller's cache holds (another writer, or the
// controller's own earlier write on a lagging cache) is never replaced: the patch carries the
// cached resourceVersion and gets 409 Conflict; the node keeps its one subnet.
TEST_F(NodeIpamTest, StaleCacheNeverReplacesAPodCidr) {
  auto hook = std::make_shared<PatchHookTransport>(context().client->transport(), [this] {
    Patch(client::kNodes, "stale", {{"spec", {{"podCIDR", "10.1.200.0/24"},
                                              {"podCIDRs", json::array({"10.1.200.0/24"})}}}});
  });
  context().client = std::make_shared<client::Client>(hook);
  StartController("node-ipam");
  Create(client::kNodes, MakeNode("stale"));
  ASSERT_TRUE(WaitFor([&] { return hook->first_answer != 0; }, "the controller's patch answered"));
  EXPECT_EQ(hook->first_answer, 409) << "the patch was not conditional on the cached version";
  EXPECT_EQ(PodCidr("stale"), "10.1.200.0/24");

  // The retry (after a backoff) sees the podCIDR and leaves it; the subnet it had picked is free.
  for (int i = 0; i < 5; ++i) Advance(1s);
  Create(client::kNodes, MakeNode("next"));
  ASSERT_TRUE(WaitFor([&] { return !PodCidr("next").empty(); }, "next gets a podCIDR"));
  EXPECT_EQ(PodCidr("stale"), "10.1.200.0/24");
  EXPECT_EQ(PodCidr("next"), "10.1.0.0/24");
}

}  // namespace
}  // namespace mk8s::controllers::test
