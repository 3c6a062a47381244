// StaleUdpFlows: which conntrack entries to delete after the endpoints of UDP services change.
#include <gtest/gtest.h>

#include <algorithm>

#include "fixtures.h"
#include "proxy/conntrack.h"

namespace mk8s::proxy {
namespace {

using namespace testing;  // NOLINT
using Args = std::vector<std::string>;

bool Has(const std::vector<Args>& all, const Args& one) {
  return std::find(all.begin(), all.end(), one) != all.end();
}

TEST(ConntrackTest, RemovedUdpEndpointsLoseTheirFlows) {
  json dns = Port(53, 53, "dns", "UDP");
  dns["nodePort"] = 30053;
  const Objects services = {Service("dns", "10.152.183.10", {dns},
                                    {{"type", "NodePort"}, {"externalIPs", {"192.0.2.9"}}}),
                            Service("web", "10.152.183.20", {Port(80, 8080)})};
  const ServiceSnapshot before = BuildSnapshot(
      services, {Slice("dns", {Ep("10.1.0.2"), Ep("10.1.0.3")}, {SlicePort(5353, "dns", "UDP")}),
                 Slice("web", {Ep("10.1.0.4")}, {SlicePort(8080)})});
  const ServiceSnapshot after = BuildSnapshot(
      services,
      {Slice("dns", {Ep("10.1.0.2"), Ep("10.1.0.3", false)}, {SlicePort(5353, "dns", "UDP")})});
  const std::vector<Args> flows = StaleUdpFlows(before, after);
  EXPECT_TRUE(
      Has(flows, {"-D", "-p", "udp", "--orig-dst", "10.152.183.10", "--dst-nat", "10.1.0.3"}));
  EXPECT_TRUE(Has(flows, {"-D", "-p", "udp", "--orig-dst", "192.0.2.9", "--dst-nat", "10.1.0.3"}));
  EXPECT_TRUE(Has(flows, {"-D", "-p", "udp", "--dport", "30053", "--dst-nat", "10.1.0.3"}));
  EXPECT_EQ(flows.size(), 3u);  // nothing for the TCP service, nothing for 10.1.0.2
  EXPECT_TRUE(StaleUdpFlows(after, after).empty());
}

TEST(ConntrackTest, UdpServiceGettingEndpointsDropsItsRejectedFlows) {
  const Objects services = {Service("dns", "10.152.183.10", {Port(53, 53, "dns", "UDP")})};
  const ServiceSnapshot none = BuildSnapshot(services, {});
  const ServiceSnapshot some =
      BuildSnapshot(services, {Slice("dns", {Ep("10.1.0.2")}, {SlicePort(5353, "dns", "UDP")})});
  EXPECT_EQ(StaleUdpFlows(none, some),
            (std::vector<Args>{{"-D", "-p", "udp", "--orig-dst", "10.152.183.10"}}));
  // A deleted service: flows to its old endpoint go.
  EXPECT_EQ(StaleUdpFlows(some, BuildSnapshot({}, {})),
            (std::vector<Args>{
                {"-D", "-p", "udp", "--orig-dst", "10.152.183.10", "--dst-nat", "10.1.0.2"}}));
}

}  // namespace
}  // namespace mk8s::proxy
