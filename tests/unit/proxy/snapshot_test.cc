// BuildSnapshot: Services + EndpointSlices -> service ports with their endpoints.
#include <gtest/gtest.h>

#include "fixtures.h"
#include "proxy/service_snapshot.h"

namespace mk8s::proxy {
namespace {

using namespace testing;  // NOLINT

TEST(SnapshotTest, NamedTargetPortsResolveThroughTheSlicePorts) {
  json ports = json::array({Port(80, 0, "http"), Port(9090, 0, "metrics")});
  ports[0]["targetPort"] = "web";
  ports[1]["targetPort"] = "prom";
  const Objects services = {Service("app", "10.152.183.20", ports)};
  const Objects slices = {Slice("app", {Ep("10.1.0.2"), Ep("10.1.0.3")},
                                {SlicePort(8080, "http"), SlicePort(9100, "metrics")})};
  const ServiceSnapshot snapshot = BuildSnapshot(services, slices);
  ASSERT_EQ(snapshot.ports.size(), 2u);
  EXPECT_EQ(snapshot.ports[0].Name(), "default/app:http");
  ASSERT_EQ(snapshot.ports[0].endpoints.size(), 2u);
  EXPECT_EQ(snapshot.ports[0].endpoints[0].ip, "10.1.0.2");
  EXPECT_EQ(snapshot.ports[0].endpoints[0].port, 8080);
  EXPECT_EQ(snapshot.ports[1].Name(), "default/app:metrics");
  EXPECT_EQ(snapshot.ports[1].endpoints[1].port, 9100);
}

TEST(SnapshotTest, ReadinessAndTerminatingFallback) {
  const Objects services = {Service("app", "10.152.183.20", {Port(80, 8080)})};
  json absent = {{"addresses", {"10.1.0.4"}}};  // no conditions: ready
  json terminating = {{"addresses", {"10.1.0.5"}},
                      {"conditions", {{"ready", false}, {"serving", true}, {"terminating", true}}}};
  const Objects slices = {Slice("app", {Ep("10.1.0.2"), Ep("10.1.0.3", false), absent, terminating},
                                {SlicePort(8080)})};
  ServiceSnapshot snapshot = BuildSnapshot(services, slices);
  ASSERT_EQ(snapshot.ports.size(), 1u);
  EXPECT_EQ(snapshot.ports[0].endpoints.size(), 4u);
  std::vector<Endpoint> usable = UsableEndpoints(snapshot.ports[0]);
  ASSERT_EQ(usable.size(), 2u);
  EXPECT_EQ(usable[0].ip, "10.1.0.2");
  EXPECT_EQ(usable[1].ip, "10.1.0.4");

  // Nothing ready: the serving-while-terminating endpoints carry the traffic.
  const Objects draining = {Slice("app", {Ep("10.1.0.3", false), terminating}, {SlicePort(8080)})};
  snapshot = BuildSnapshot(services, draining);
  usable = UsableEndpoints(snapshot.ports[0]);
  ASSERT_EQ(usable.size(), 1u);
  EXPECT_EQ(usable[0].ip, "10.1.0.5");
}

TEST(SnapshotTest, SlicesMatchByServiceNamespaceAndAddressType) {
  const Objects services = {Service("app", "10.152.183.20", {Port(80, 8080)})};
  json other_ns = *Slice("app", {Ep("10.1.0.9")}, {SlicePort(8080)});
  other_ns["metadata"]["namespace"] = "other";
  json ipv6 = *Slice("app", {Ep("fd00::1")}, {SlicePort(8080)}, "v6");
  ipv6["addressType"] = "IPv6";
  json unlabeled = *Slice("app", {Ep("10.1.0.8")}, {SlicePort(8080)}, "x");
  unlabeled["metadata"].erase("labels");
  const Objects slices = {
      Slice("app", {Ep("10.1.0.2")}, {SlicePort(8080)}, "a"),
      Slice("app", {Ep("10.1.0.2"), Ep("10.1.0.3")}, {SlicePort(8080)}, "b"),  // a duplicate
      std::make_shared<const json>(other_ns),
      std::make_shared<const json>(ipv6),
      std::make_shared<const json>(unlabeled),
      Slice("other", {Ep("10.1.0.7")}, {SlicePort(8080)})};
  const ServiceSnapshot snapshot = BuildSnapshot(services, slices);
  ASSERT_EQ(snapshot.ports.size(), 1u);
  ASSERT_EQ(snapshot.ports[0].endpoints.size(), 2u);
  EXPECT_EQ(snapshot.ports[0].endpoints[0].ip, "10.1.0.2");
  EXPECT_EQ(snapshot.ports[0].endpoints[1].ip, "10.1.0.3");
}

TEST(SnapshotTest, TypesAffinityAndSkippedServices) {
  json node_port = Port(80, 8080);
  node_port["nodePort"] = 30080;
  const Objects services = {
      Service("np", "10.152.183.30", {node_port}, {{"type", "NodePort"}}),
      Service("cip", "10.152.183.31", {node_port}),  // a nodePort on a ClusterIP is ignored
      Service("headless", "None", {Port(80, 80)}),
      Service("ext", "", {Port(80, 80)}, {{"type", "ExternalName"}, {"externalName", "x.org"}}),
      Service("sticky", "10.152.183.32", {Port(80, 80)},
              {{"sessionAffinity", "ClientIP"},
               {"sessionAffinityConfig", {{"clientIP", {{"timeoutSeconds", 60}}}}}}),
      Service("bad", "10.152.183.33", {Port(80, 80, "", "ICMP")}),
      Service("v6", "fd00::10", {Port(80, 80)}),
  };
  const ServiceSnapshot snapshot = BuildSnapshot(services, {});
  ASSERT_EQ(snapshot.ports.size(), 3u);
  EXPECT_EQ(snapshot.ports[0].service, "cip");
  EXPECT_EQ(snapshot.ports[0].node_port, 0);
  EXPECT_EQ(snapshot.ports[1].service, "np");
  EXPECT_EQ(snapshot.ports[1].node_port, 30080);
  EXPECT_EQ(snapshot.ports[2].service, "sticky");
  EXPECT_TRUE(snapshot.ports[2].affinity_client_ip);
  EXPECT_EQ(snapshot.ports[2].affinity_timeout_seconds, 60);
  EXPECT_EQ(snapshot.skipped.size(), 2u);  // ICMP, IPv6
}

TEST(SnapshotTest, LoadBalancerIngressIpsActAsExternalIps) {
  json port = Port(80, 8080);
  port["nodePort"] = 30081;
  json lb = *Service("lb", "10.152.183.50", {port},
                     {{"type", "LoadBalancer"}, {"externalIPs", {"192.0.2.1"}}});
  lb["status"] = {
      {"loadBalancer",
       {{"ingress",
         {{{"ip", "192.0.2.7"}}, {{"hostname", "lb.example"}}, {{"ip", "192.0.2.1"}}}}}}};
  const ServiceSnapshot snapshot = BuildSnapshot({std::make_shared<const json>(lb)}, {});
  ASSERT_EQ(snapshot.ports.size(), 1u);
  EXPECT_EQ(snapshot.ports[0].node_port, 30081);
  EXPECT_EQ(snapshot.ports[0].external_ips, (std::vector<std::string>{"192.0.2.1", "192.0.2.7"}));
}

TEST(SnapshotTest, MalformedObjectsAreIgnoredNotFatal) {
  const Objects services = {
      std::make_shared<const json>(json::array()),
      std::make_shared<const json>(json{{"metadata", 5}, {"spec", "x"}}),
      Service("ports-not-list", "10.152.183.40", json("80")),
      Service("port-string", "10.152.183.41", json::array({json{{"port", "80"}}})),
      nullptr,
  };
  const Objects slices = {
      std::make_shared<const json>(
          json{{"metadata", {{"labels", {{"kubernetes.io/service-name", 3}}}}}}),
      Slice("port-string", json("x"), json::array({json{{"port", -1}}})),
      std::make_shared<const json>(json::object()),
  };
  const ServiceSnapshot snapshot = BuildSnapshot(services, slices);
  EXPECT_TRUE(snapshot.ports.empty());
}

}  // namespace
}  // namespace mk8s::proxy
