#include <gtest/gtest.h>

#include "apiserver/registry/object_meta.h"
#include "apiserver/resources.h"
#include "apiserver/table.h"

namespace mk8s::apiserver {
namespace {

using nlohmann::json;
using std::chrono::seconds;

TEST(TableTest, HumanDurationMatchesKubernetes) {
  EXPECT_EQ(HumanDuration(seconds(45)), "45s");
  EXPECT_EQ(HumanDuration(seconds(119)), "119s");
  EXPECT_EQ(HumanDuration(seconds(330)), "5m30s");
  EXPECT_EQ(HumanDuration(seconds(600)), "10m");
  EXPECT_EQ(HumanDuration(seconds(3 * 3600 + 20 * 60)), "3h20m");
  EXPECT_EQ(HumanDuration(seconds(30 * 3600)), "30h");
  EXPECT_EQ(HumanDuration(seconds(3 * 86400 + 3600)), "3d1h");
  EXPECT_EQ(HumanDuration(seconds(20 * 86400)), "20d");
}

TEST(TableTest, PodRowGolden) {
  const ResourceInfo* pods = ResourceRegistry::Builtin().Find("", "v1", "pods");
  ASSERT_NE(pods, nullptr);
  const auto now = std::chrono::system_clock::now();
  json pod = {{"metadata", {{"name", "web-1"}, {"creationTimestamp", FormatTime(now - seconds(75))}}},
              {"spec", {{"nodeName", "n1"}, {"containers", {{{"name", "a"}}, {{"name", "b"}}}}}},
              {"status", {{"phase", "Running"}, {"podIP", "10.1.0.5"},
                          {"containerStatuses", {{{"ready", true}, {"restartCount", 2}},
                                                 {{"ready", false}, {"restartCount", 1}}}}}}};
  json cells = TableCells(*pods, pod, now);
  EXPECT_EQ(cells, json({"web-1", "1/2", "Running", "3", "75s", "10.1.0.5", "n1", "<none>", "<none>"}));
  json columns = TableColumns(*pods);
  ASSERT_EQ(columns.size(), cells.size());
  EXPECT_EQ(columns[0]["name"], "Name");
  EXPECT_EQ(columns[5]["priority"], 1);  // IP is a -o wide column
}

TEST(TableTest, ServicePortsAndDefaults) {
  const ResourceInfo* services = ResourceRegistry::Builtin().Find("", "v1", "services");
  const auto now = std::chrono::system_clock::now();
  json service = {{"metadata", {{"name", "web"}, {"creationTimestamp", FormatTime(now)}}},
                  {"spec", {{"type", "NodePort"}, {"clusterIP", "10.152.183.7"},
                            {"ports", {{{"port", 80}, {"nodePort", 30080}, {"protocol", "TCP"}}}}}}};
  json cells = TableCells(*services, service, now);
  EXPECT_EQ(cells[1], "NodePort");
  EXPECT_EQ(cells[2], "10.152.183.7");
  EXPECT_EQ(cells[3], "<none>");
  EXPECT_EQ(cells[4], "80:30080/TCP");
}

TEST(TableTest, LeaseShowsItsHolder) {
  const ResourceInfo* leases = ResourceRegistry::Builtin().Find("coordination.k8s.io", "v1", "leases");
  ASSERT_NE(leases, nullptr);
  const auto now = std::chrono::system_clock::now();
  json lease = {{"metadata", {{"name", "kube-scheduler"}, {"creationTimestamp", FormatTime(now - seconds(9))}}},
                {"spec", {{"holderIdentity", "vm_1234abcd"}, {"leaseDurationSeconds", 15}}}};
  EXPECT_EQ(TableCells(*leases, lease, now), json({"kube-scheduler", "vm_1234abcd", "9s"}));
  EXPECT_EQ(TableColumns(*leases)[1]["name"], "Holder");
}

}  // namespace
}  // namespace mk8s::apiserver
