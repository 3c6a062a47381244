// The record logic: what each cluster name answers, from Kubernetes JSON as the watches see it.
#include "records.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "kube_objects.h"

namespace mk8s::dns {
namespace {

using json = nlohmann::json;

std::string Ip(const Rr& rr) {
  if (auto v4 = std::get_if<std::array<uint8_t, 4>>(&rr.data)) return FormatIpv4(*v4);
  if (auto v6 = std::get_if<std::array<uint8_t, 16>>(&rr.data)) return FormatIpv6(*v6);
  return "?";
}

class RecordsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    records_.UpsertService(*ServiceFromJson(json::parse(R"({
      "metadata": {"name": "web", "namespace": "default"},
      "spec": {"clusterIP": "10.152.183.20", "clusterIPs": ["10.152.183.20", "fd00::20"],
               "ports": [{"name": "http", "port": 80, "protocol": "TCP"},
                         {"name": "dns", "port": 53, "protocol": "UDP"}]}})")));
    records_.UpsertService(*ServiceFromJson(json::parse(R"({
      "metadata": {"name": "db", "namespace": "prod"},
      "spec": {"clusterIP": "None", "ports": [{"name": "pg", "port": 5432}]}})")));
    records_.UpsertService(*ServiceFromJson(json::parse(R"({
      "metadata": {"name": "ext", "namespace": "default"},
      "spec": {"type": "ExternalName", "externalName": "example.org."}})")));
    records_.UpsertSlice(*SliceFromJson(json::parse(R"({
      "metadata": {"name": "db-abc", "namespace": "prod",
                   "labels": {"kubernetes.io/service-name": "db"}},
      "addressType": "IPv4",
      "endpoints": [{"addresses": ["10.1.0.5"], "hostname": "db-0", "conditions": {"ready": true}},
                    {"addresses": ["10.1.0.6"]},
                    {"addresses": ["10.1.0.7"], "conditions": {"ready": false}}],
      "ports": [{"name": "pg", "port": 5433, "protocol": "TCP"}]})")));
  }
  ClusterRecords records_{ZoneConfig{}};
};

TEST_F(RecordsTest, ServiceAandAAAA) {
  LookupResult r = records_.Lookup("web.default.svc.cluster.local", kTypeA);
  EXPECT_TRUE(r.ours);
  EXPECT_EQ(r.rcode, kNoError);
  ASSERT_EQ(r.answer.size(), 1u);
  EXPECT_EQ(Ip(r.answer[0]), "10.152.183.20");
  EXPECT_EQ(r.answer[0].ttl, 5u);
  EXPECT_TRUE(r.authority.empty());
  r = records_.Lookup("web.default.svc.cluster.local", kTypeAAAA);
  ASSERT_EQ(r.answer.size(), 1u);
  EXPECT_EQ(Ip(r.answer[0]), "fd00::20");
  // NODATA: the name exists, the type does not.
  r = records_.Lookup("web.default.svc.cluster.local", kTypeMX);
  EXPECT_EQ(r.rcode, kNoError);
  EXPECT_TRUE(r.answer.empty());
  ASSERT_EQ(r.authority.size(), 1u);
  EXPECT_EQ(r.authority[0].type, kTypeSOA);
}

TEST_F(RecordsTest, UnknownNamesAreNxdomainWithSoa) {
  for (const char* name : {"nope.default.svc.cluster.local", "web.nope.svc.cluster.local",
                           "a.b.c.d.web.default.svc.cluster.local", "foo.cluster.local"}) {
    const LookupResult r = records_.Lookup(name, kTypeA);
    EXPECT_TRUE(r.ours) << name;
    EXPECT_EQ(r.rcode, kNxDomain) << name;
    ASSERT_EQ(r.authority.size(), 1u) << name;
    EXPECT_EQ(r.authority[0].owner, "cluster.local");
  }
  // Empty non-terminals and the apex exist.
  EXPECT_EQ(records_.Lookup("default.svc.cluster.local", kTypeA).rcode, kNoError);
  EXPECT_EQ(records_.Lookup("svc.cluster.local", kTypeA).rcode, kNoError);
  EXPECT_EQ(records_.Lookup("cluster.local", kTypeSOA).answer.size(), 1u);
  EXPECT_FALSE(records_.Lookup("example.com", kTypeA).ours);
  EXPECT_FALSE(records_.Lookup("cluster.localhost", kTypeA).ours);
}

TEST_F(RecordsTest, SrvForNamedPorts) {
  LookupResult r = records_.Lookup("_http._tcp.web.default.svc.cluster.local", kTypeSRV);
  ASSERT_EQ(r.answer.size(), 1u);
  const SrvData& srv = std::get<SrvData>(r.answer[0].data);
  EXPECT_EQ(srv.port, 80);
  EXPECT_EQ(srv.target, "web.default.svc.cluster.local");
  EXPECT_EQ(r.additional.size(), 2u);  // A and AAAA of the target
  EXPECT_EQ(records_.Lookup("_http._udp.web.default.svc.cluster.local", kTypeSRV).rcode, kNxDomain);
  EXPECT_EQ(records_.Lookup("_dns._udp.web.default.svc.cluster.local", kTypeSRV).answer.size(), 1u);
  // The bare service name lists every port.
  EXPECT_EQ(records_.Lookup("web.default.svc.cluster.local", kTypeSRV).answer.size(), 2u);
}

TEST_F(RecordsTest, HeadlessReturnsReadyEndpoints) {
  LookupResult r = records_.Lookup("db.prod.svc.cluster.local", kTypeA);
  ASSERT_EQ(r.answer.size(), 2u);  // 10.1.0.7 is not ready
  EXPECT_EQ(Ip(r.answer[0]), "10.1.0.5");
  EXPECT_EQ(Ip(r.answer[1]), "10.1.0.6");
  r = records_.Lookup("_pg._tcp.db.prod.svc.cluster.local", kTypeSRV);
  ASSERT_EQ(r.answer.size(), 2u);
  EXPECT_EQ(std::get<SrvData>(r.answer[0].data).target, "db-0.db.prod.svc.cluster.local");
  EXPECT_EQ(std::get<SrvData>(r.answer[0].data).port, 5433);  // the endpoint's port
  EXPECT_EQ(std::get<SrvData>(r.answer[1].data).target, "10-1-0-6.db.prod.svc.cluster.local");
  EXPECT_EQ(std::get<SrvData>(r.answer[1].data).weight, 50);
  r = records_.Lookup("db-0.db.prod.svc.cluster.local", kTypeA);
  ASSERT_EQ(r.answer.size(), 1u);
  EXPECT_EQ(Ip(r.answer[0]), "10.1.0.5");
  EXPECT_EQ(records_.Lookup("db-9.db.prod.svc.cluster.local", kTypeA).rcode, kNxDomain);
  // Endpoint readiness follows the slice.
  records_.RemoveSlice("prod", "db-abc");
  r = records_.Lookup("db.prod.svc.cluster.local", kTypeA);
  EXPECT_EQ(r.rcode, kNoError);
  EXPECT_TRUE(r.answer.empty());
}

TEST_F(RecordsTest, ExternalNameIsACname) {
  const LookupResult r = records_.Lookup("ext.default.svc.cluster.local", kTypeA);
  ASSERT_EQ(r.answer.size(), 1u);
  EXPECT_EQ(r.answer[0].type, kTypeCNAME);
  EXPECT_EQ(std::get<std::string>(r.answer[0].data), "example.org");
}

TEST_F(RecordsTest, PodRecords) {
  LookupResult r = records_.Lookup("10-1-2-3.default.pod.cluster.local", kTypeA);
  ASSERT_EQ(r.answer.size(), 1u);
  EXPECT_EQ(Ip(r.answer[0]), "10.1.2.3");
  r = records_.Lookup("fd00--1.default.pod.cluster.local", kTypeAAAA);
  ASSERT_EQ(r.answer.size(), 1u);
  EXPECT_EQ(Ip(r.answer[0]), "fd00::1");
  EXPECT_EQ(records_.Lookup("10-1-2-300.default.pod.cluster.local", kTypeA).rcode, kNxDomain);
  EXPECT_TRUE(records_.Lookup("10-1-2-3.default.pod.cluster.local", kTypeAAAA).answer.empty());
}

TEST_F(RecordsTest, ReverseLookups) {
  LookupResult r = records_.Lookup("20.183.152.10.in-addr.arpa", kTypePTR);
  ASSERT_EQ(r.answer.size(), 1u);
  EXPECT_EQ(std::get<std::string>(r.answer[0].data), "web.default.svc.cluster.local");
  r = records_.Lookup("5.0.1.10.in-addr.arpa", kTypePTR);  // a headless endpoint
  ASSERT_EQ(r.answer.size(), 1u);
  EXPECT_EQ(std::get<std::string>(r.answer[0].data), "db-0.db.prod.svc.cluster.local");
  r = records_.Lookup("99.183.152.10.in-addr.arpa", kTypePTR);  // in the service range: ours
  EXPECT_TRUE(r.ours);
  EXPECT_EQ(r.rcode, kNxDomain);
  EXPECT_EQ(r.authority[0].owner, "183.152.10.in-addr.arpa");
  EXPECT_FALSE(records_.Lookup("8.8.8.8.in-addr.arpa", kTypePTR).ours);  // fallthrough
  const std::string v6 = "0.2.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.d.f.ip6.arpa";
  r = records_.Lookup(v6, kTypePTR);
  ASSERT_EQ(r.answer.size(), 1u);
  // A service going away takes its PTR with it.
  records_.RemoveService("default", "web");
  EXPECT_EQ(records_.Lookup("20.183.152.10.in-addr.arpa", kTypePTR).rcode, kNxDomain);
  EXPECT_EQ(records_.Lookup("web.default.svc.cluster.local", kTypeA).rcode, kNxDomain);
}

TEST_F(RecordsTest, ChangesMoveTheSoaSerialAndUpdatesReplace) {
  const uint32_t before =
      std::get<SoaData>(records_.Lookup("cluster.local", kTypeSOA).answer[0].data).serial;
  Service web = *ServiceFromJson(json::parse(
      R"({"metadata": {"name": "web", "namespace": "default"}, "spec": {"clusterIP": "10.152.183.21"}})"));
  records_.UpsertService(web);
  const uint32_t after =
      std::get<SoaData>(records_.Lookup("cluster.local", kTypeSOA).answer[0].data).serial;
  EXPECT_GT(after, before);
  const LookupResult r = records_.Lookup("web.default.svc.cluster.local", kTypeA);
  ASSERT_EQ(r.answer.size(), 1u);
  EXPECT_EQ(Ip(r.answer[0]), "10.152.183.21");
  EXPECT_EQ(records_.Lookup("20.183.152.10.in-addr.arpa", kTypePTR).rcode, kNxDomain);
  EXPECT_EQ(records_.service_count(), 3u);
  records_.Clear();
  EXPECT_EQ(records_.service_count(), 0u);
}

TEST(KubeObjects, ServiceAndSlices) {
  const json service = json::parse(ServiceManifest("10.152.183.10", 10053));
  EXPECT_EQ(service["spec"]["clusterIP"], "10.152.183.10");
  EXPECT_EQ(service["spec"]["ports"][0]["protocol"], "UDP");
  EXPECT_EQ(service["spec"]["ports"][1]["name"], "dns-tcp");
  EXPECT_EQ(service["spec"]["ports"][1]["targetPort"], 10053);
  EXPECT_FALSE(service["spec"].contains("selector"));

  auto slices = DesiredSlices({}, "192.0.2.2", 10053);
  ASSERT_EQ(slices.count(kLocalSlice), 1u);
  slices = DesiredSlices({{"n1", "10.0.0.1"}, {"n2", "10.0.0.2"}}, "192.0.2.2", 10053);
  ASSERT_EQ(slices.size(), 2u);
  const json slice = json::parse(slices.at("kube-dns-n2"));
  EXPECT_EQ(slice["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"], kManagedBy);
  EXPECT_EQ(slice["metadata"]["labels"]["kubernetes.io/service-name"], "kube-dns");
  EXPECT_EQ(slice["endpoints"][0]["addresses"][0], "10.0.0.2");
  EXPECT_EQ(slice["endpoints"][0]["nodeName"], "n2");
  EXPECT_EQ(slice["ports"][0]["port"], 10053);
  EXPECT_LE(SliceNameFor(std::string(300, 'n')).size(), 253u);

  const auto node = NodeInternalIp(json::parse(R"({"metadata": {"name": "n1"}, "status":
      {"addresses": [{"type": "Hostname", "address": "n1"}, {"type": "InternalIP", "address": "10.0.0.1"}]}})"));
  ASSERT_TRUE(node);
  EXPECT_EQ(node->second, "10.0.0.1");
  EXPECT_FALSE(NodeInternalIp(json::parse(R"({"metadata": {"name": "n1"}})")));
}

}  // namespace
}  // namespace mk8s::dns
