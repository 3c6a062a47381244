// Endpoints controller: Endpoints and EndpointSlices of Services with a selector, from pods' IPs
// and readiness (the test plays the kubelet by writing pod status).
#include <set>

#include "fixture.h"

namespace mk8s::controllers::test {
namespace {

std::set<std::string> Ips(const json& endpoints, const char* field) {
  std::set<std::string> ips;
  for (const json& subset : endpoints.value("subsets", json::array())) {
    for (const json& address : subset.value(field, json::array())) ips.insert(address.value("ip", ""));
  }
  return ips;
}

// EndpointSlice endpoints by IP -> ready condition.
std::map<std::string, bool> SliceReadiness(const json& slice) {
  std::map<std::string, bool> out;
  for (const json& endpoint : slice.value("endpoints", json::array())) {
    out[endpoint["addresses"][0]] = endpoint.value("/conditions/ready"_json_pointer, false);
  }
  return out;
}

class EndpointsTest : public ControllerTest {
 protected:
  void SetUp() override {
    ControllerTest::SetUp();
    if (HasFatalFailure()) return;
    StartController("endpoints");
  }
  json HttpPorts() {
    return json::array({{{"name", "http"}, {"port", 80}, {"targetPort", "http"}}});
  }
  // True when Endpoints `name` has exactly these ready and not-ready IPs.
  bool EndpointsAre(const std::string& name, const std::set<std::string>& ready,
                    const std::set<std::string>& not_ready) {
    auto endpoints = Get(client::kEndpoints, name);
    return endpoints && Ips(*endpoints, "addresses") == ready &&
           Ips(*endpoints, "notReadyAddresses") == not_ready;
  }
};

TEST_F(EndpointsTest, ReadyAndNotReadyAddresses) {
  Create(client::kServices, MakeService("web", {{"app", "web"}}, HttpPorts()));
  for (const char* name : {"p1", "p2", "p3", "no-ip"}) Create(client::kPods, MakePod(name, {{"app", "web"}}));
  Create(client::kPods, MakePod("other", {{"app", "other"}}));
  ASSERT_TRUE(SetPodReady("p1", true, "10.1.0.11"));
  ASSERT_TRUE(SetPodReady("p2", true, "10.1.0.12"));
  ASSERT_TRUE(SetPodReady("p3", false, "10.1.0.13"));
  ASSERT_TRUE(SetPodReady("other", true, "10.1.0.14"));

  ASSERT_TRUE(WaitFor([&] { return EndpointsAre("web", {"10.1.0.11", "10.1.0.12"}, {"10.1.0.13"}); },
                      "2 ready and 1 not-ready address"));
  const json endpoints = *Get(client::kEndpoints, "web");
  ASSERT_EQ(endpoints["subsets"].size(), 1u);
  const json& subset = endpoints["subsets"][0];
  // The named targetPort resolves to the pod's containerPort.
  EXPECT_EQ(subset["ports"], json::parse(R"([{"name":"http","port":8080,"protocol":"TCP"}])"));
  EXPECT_EQ(subset["addresses"][0]["targetRef"]["name"], "p1");
  EXPECT_EQ(subset["addresses"][0]["targetRef"]["kind"], "Pod");

  ASSERT_TRUE(WaitFor([&] {
    auto slice = Get(client::kEndpointSlices, "web-0");
    return slice && SliceReadiness(*slice) == std::map<std::string, bool>{
                        {"10.1.0.11", true}, {"10.1.0.12", true}, {"10.1.0.13", false}};
  }, "EndpointSlice web-0 with readiness"));
  const json slice = *Get(client::kEndpointSlices, "web-0");
  EXPECT_EQ(slice["addressType"], "IPv4");
  EXPECT_EQ(slice["metadata"]["labels"]["kubernetes.io/service-name"], "web");
  EXPECT_EQ(slice["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"],
            "endpointslice-controller.k8s.io");
  EXPECT_EQ(slice["metadata"]["ownerReferences"][0]["kind"], "Service");
  EXPECT_EQ(slice["ports"][0]["port"], 8080);

  // A pod that stops being ready leaves the ready addresses; one that becomes ready joins them.
  ASSERT_TRUE(SetPodReady("p1", false));
  ASSERT_TRUE(SetPodReady("p3", true));
  ASSERT_TRUE(WaitFor([&] { return EndpointsAre("web", {"10.1.0.12", "10.1.0.13"}, {"10.1.0.11"}); },
                      "p1 not ready, p3 ready"));
  // A deleted pod leaves both.
  ASSERT_TRUE(Delete(client::kPods, "p2"));
  ASSERT_TRUE(WaitFor([&] { return EndpointsAre("web", {"10.1.0.13"}, {"10.1.0.11"}); },
                      "p2 gone"));
  ASSERT_TRUE(WaitFor([&] {
    auto s = Get(client::kEndpointSlices, "web-0");
    return s && SliceReadiness(*s) == std::map<std::string, bool>{{"10.1.0.11", false},
                                                                   {"10.1.0.13", true}};
  }, "slice follows"));
}

// Pod updates that cannot change addresses are skipped (upstream's podEndpointsChanged); a label
// change (like an IP or readiness change) still moves its address.
TEST_F(EndpointsTest, LabelChangesMoveAPodBetweenServices) {
  Create(client::kServices, MakeService("web", {{"app", "web"}}, HttpPorts()));
  Create(client::kServices, MakeService("api", {{"app", "api"}}, HttpPorts()));
  Create(client::kPods, MakePod("p1", {{"app", "web"}}));
  ASSERT_TRUE(SetPodReady("p1", true, "10.1.0.31"));
  ASSERT_TRUE(WaitFor([&] { return EndpointsAre("web", {"10.1.0.31"}, {}); }, "p1 in web"));
  // An update that touches nothing the endpoints read changes nothing.
  Patch(client::kPods, "p1", {{"metadata", {{"annotations", {{"note", "x"}}}}}});
  Patch(client::kPods, "p1", {{"metadata", {{"labels", {{"app", "api"}}}}}});
  ASSERT_TRUE(WaitFor([&] { return EndpointsAre("api", {"10.1.0.31"}, {}) &&
                                   EndpointsAre("web", {}, {}); },
                      "p1 moved from web to api"));
}

TEST_F(EndpointsTest, PublishNotReadyAddresses) {
  json service = MakeService("peers", {{"app", "db"}}, HttpPorts());
  service["spec"]["publishNotReadyAddresses"] = true;
  Create(client::kServices, service);
  Create(client::kPods, MakePod("db-0", {{"app", "db"}}));
  ASSERT_TRUE(SetPodReady("db-0", false, "10.1.0.21"));
  ASSERT_TRUE(WaitFor([&] { return EndpointsAre("peers", {"10.1.0.21"}, {}); },
                      "a not-ready pod published as ready"));
}

TEST_F(EndpointsTest, DeletedServiceLosesItsEndpoints) {
  Create(client::kServices, MakeService("gone", {{"app", "gone"}}, HttpPorts()));
  Create(client::kPods, MakePod("g1", {{"app", "gone"}}));
  ASSERT_TRUE(SetPodReady("g1", true, "10.1.0.31"));
  ASSERT_TRUE(WaitFor([&] { return EndpointsAre("gone", {"10.1.0.31"}, {}); }, "endpoints"));
  ASSERT_TRUE(Delete(client::kServices, "gone"));
  ASSERT_TRUE(WaitFor([&] { return !Get(client::kEndpoints, "gone"); }, "Endpoints deleted"));
}

// Services without a selector keep the Endpoints their users write.
TEST_F(EndpointsTest, ServiceWithoutSelectorIsLeftAlone) {
  json manual = MakeService("external", json::object(), json::array({{{"port", 5432}}}));
  manual["spec"].erase("selector");
  Create(client::kServices, manual);
  const json user_endpoints = {
      {"apiVersion", "v1"},
      {"kind", "Endpoints"},
      {"metadata", {{"name", "external"}}},
      {"subsets", json::array({{{"addresses", json::array({{{"ip", "192.0.2.10"}}})},
                                {"ports", json::array({{{"port", 5432}, {"protocol", "TCP"}}})}}})}};
  Create(client::kEndpoints, user_endpoints);
  // Barrier: a later Service with a selector gets its Endpoints, so "external" was processed.
  Create(client::kServices, MakeService("barrier", {{"app", "b"}}, HttpPorts()));
  ASSERT_TRUE(WaitFor([&] { return Get(client::kEndpoints, "barrier").has_value(); }, "barrier"));
  EXPECT_EQ(Ips(*Get(client::kEndpoints, "external"), "addresses"),
            std::set<std::string>{"192.0.2.10"});
  EXPECT_FALSE(Get(client::kEndpointSlices, "external-0").has_value());
}

// Endpoints and slices whose Service was deleted while no controller ran are found at start and
// deleted; default/kubernetes (the API server's), leader-election records and the Endpoints of a
// Service that exists stay.
TEST_F(EndpointsTest, LeftoversOfServicesDeletedWhileDownAreDeletedAtStart) {
  StopControllers();
  auto endpoints = [](const std::string& name) {
    return json{{"apiVersion", "v1"}, {"kind", "Endpoints"}, {"metadata", {{"name", name}}},
                {"subsets", json::array({{{"addresses", json::array({{{"ip", "10.1.9.9"}}})},
                                          {"ports", json::array({{{"port", 80}}})}}})}};
  };
  Create(client::kEndpoints, endpoints("gone"));
  Create(client::kEndpointSlices,
         {{"apiVersion", "discovery.k8s.io/v1"},
          {"kind", "EndpointSlice"},
          {"metadata", {{"name", "gone-0"},
                        {"labels", {{"kubernetes.io/service-name", "gone"},
                                    {"endpointslice.kubernetes.io/managed-by",
                                     "endpointslice-controller.k8s.io"}}}}},
          {"addressType", "IPv4"},
          {"endpoints", json::array()}});
  json leader = endpoints("some-lock");
  leader["metadata"]["annotations"] = {{"control-plane.alpha.kubernetes.io/leader", "{}"}};
  Create(client::kEndpoints, leader);
  Create(client::kServices, MakeService("manual", json::object(), HttpPorts()));
  Create(client::kEndpoints, endpoints("manual"));
  ASSERT_TRUE(Get(client::kEndpoints, "default", "kubernetes").has_value());

  StartController("endpoints");
  ASSERT_TRUE(WaitFor([&] {
    return !Get(client::kEndpoints, "gone") && !Get(client::kEndpointSlices, "gone-0");
  }, "leftover Endpoints and slice deleted"));
  EXPECT_TRUE(Get(client::kEndpoints, "some-lock").has_value());
  EXPECT_TRUE(Get(client::kEndpoints, "manual").has_value());
  EXPECT_TRUE(Get(client::kEndpoints, "default", "kubernetes").has_value());
}

}  // namespace
}  // namespace mk8s::controllers::test
