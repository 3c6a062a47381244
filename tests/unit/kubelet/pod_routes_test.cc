#include "kubelet/pod_routes.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

namespace mk8s::kubelet {
namespace {

nlohmann::json Node(const std::string& name, const std::string& cidr, const std::string& ip) {
  nlohmann::json node = {{"metadata", {{"name", name}}}, {"spec", nlohmann::json::object()}};
  if (!cidr.empty()) node["spec"]["podCIDR"] = cidr;
  if (!ip.empty()) {
    node["status"]["addresses"] = {{{"type", "Hostname"}, {"address", name}},
                                   {{"type", "InternalIP"}, {"address", ip}}};
  }
  return node;
}

TEST(PodRoutesTest, PodRangeAcceptsOnlySubnetsOfTheClusterRange) {
  EXPECT_TRUE(InClusterPodRange("10.1.0.0/24"));
  EXPECT_TRUE(InClusterPodRange("10.1.255.0/24"));
  EXPECT_TRUE(InClusterPodRange("10.1.0.0/16"));
  EXPECT_FALSE(InClusterPodRange("10.0.0.0/8"));
  EXPECT_FALSE(InClusterPodRange("10.2.0.0/24"));
  EXPECT_FALSE(InClusterPodRange("10.152.183.0/24"));
  EXPECT_FALSE(InClusterPodRange("10.1.0.1/24"));  // host bits
  EXPECT_FALSE(InClusterPodRange("10.1.0.0"));
  EXPECT_FALSE(InClusterPodRange("10.1.0.0/"));
  EXPECT_FALSE(InClusterPodRange("10.1.0.0/33"));
  EXPECT_FALSE(InClusterPodRange("10.1.0.0/2x"));
  EXPECT_FALSE(InClusterPodRange("garbage/24"));
  EXPECT_FALSE(InClusterPodRange(""));
}

TEST(PodRoutesTest, DesiredRoutesSkipSelfAndIncompleteNodes) {
  const std::vector<nlohmann::json> nodes = {Node("cp", "10.1.0.0/24", "10.202.1.1"),
                                             Node("worker", "10.1.1.0/24", "10.202.1.2"),
                                             Node("no-cidr", "", "10.202.1.3"),
                                             Node("no-ip", "10.1.3.0/24", ""),
                                             Node("outside", "192.168.0.0/24", "10.202.1.5"),
                                             nlohmann::json("not an object"),
                                             Node("bad-ip", "10.1.6.0/24", "not-an-ip")};
  const RouteTable desired = DesiredPodRoutes(nodes, "cp");
  EXPECT_EQ(desired, (RouteTable{{"10.1.1.0/24", "10.202.1.2"}}));
  EXPECT_EQ(DesiredPodRoutes(nodes, "worker"), (RouteTable{{"10.1.0.0/24", "10.202.1.1"}}));
}

TEST(PodRoutesTest, DiffReplacesMissingAndChangedAndRemovesGone) {
  const RouteTable current = {
      {"10.1.1.0/24", "10.202.1.2"}, {"10.1.2.0/24", "10.202.1.3"}, {"10.1.3.0/24", "10.202.1.4"}};
  const RouteTable desired = {{"10.1.1.0/24", "10.202.1.2"},   // unchanged
                              {"10.1.2.0/24", "10.202.1.9"},   // moved
                              {"10.1.4.0/24", "10.202.1.5"}};  // new
  const RouteDiff diff = DiffPodRoutes(current, desired);
  EXPECT_EQ(diff.replace,
            (RouteTable{{"10.1.2.0/24", "10.202.1.9"}, {"10.1.4.0/24", "10.202.1.5"}}));
  EXPECT_EQ(diff.remove, (std::vector<std::string>{"10.1.3.0/24"}));
  const RouteDiff none = DiffPodRoutes(desired, desired);
  EXPECT_TRUE(none.replace.empty());
  EXPECT_TRUE(none.remove.empty());
}

TEST(PodRoutesTest, ParsesOnlyGatewayRoutesInThePodRange) {
  const std::string output =
      "10.1.0.0/24 dev mk8s1234 proto kernel scope link src 10.1.0.1\n"
      "10.1.1.0/24 via 10.202.7.2 dev veth-a\n"
      "10.152.183.0/24 dev veth-a scope link\n"
      "default via 192.168.1.1 dev eth0\n"
      "10.1.9.0/24 via bogus dev veth-a\n"
      "\n"
      "10.202.7.0/24 dev veth-a proto kernel scope link src 10.202.7.1\n";
  EXPECT_EQ(ParseRouteTable(output), (RouteTable{{"10.1.1.0/24", "10.202.7.2"}}));
}

}  // namespace
}  // namespace mk8s::kubelet
