// One test group per filter plugin, each run alone through a single-filter profile.
#include <gtest/gtest.h>

#include "fixtures.h"

namespace mk8s::scheduler::testing {
namespace {

using V = std::vector<std::string>;

TEST(NodeResourcesFitFilterTest, CpuMemoryPodsAndExtended) {
  SchedulerCache cache;
  cache.UpsertNode(Node("small", "1", "1Gi"));
  cache.UpsertNode(Node("big", "8", "16Gi", json::object(), {{"nvidia.com/gpu", "2"}}));
  json full = Node("full", "8", "16Gi");
  full["status"]["allocatable"]["pods"] = "1";
  cache.UpsertNode(full);
  cache.UpsertPod(Bound(Pod("existing", "500m", "100Mi"), "full"));

  auto out = RunFilter(&cache, kNodeResourcesFit, Pod("p", "2", "2Gi"));
  EXPECT_EQ(out.feasible, V{"big"});
  // Reasons are counted for every node that failed, even when another node fits.
  EXPECT_EQ(out.result.reasons["Insufficient cpu"], 1);

  json gpu = Pod("gpu", "1");
  gpu["spec"]["containers"][0]["resources"]["limits"] = {{"nvidia.com/gpu", "1"}};
  out = RunFilter(&cache, kNodeResourcesFit, gpu);
  EXPECT_EQ(out.feasible, V{"big"});

  gpu["spec"]["containers"][0]["resources"]["limits"] = {{"nvidia.com/gpu", "3"}};
  out = RunFilter(&cache, kNodeResourcesFit, gpu);
  EXPECT_TRUE(out.feasible.empty());
  EXPECT_EQ(out.result.reasons["Insufficient nvidia.com/gpu"], 3);
  EXPECT_EQ(out.result.reasons["Too many pods"], 1);
}

TEST(NodeResourcesFitFilterTest, RequestedCountsAgainstAllocatable) {
  SchedulerCache cache;
  cache.UpsertNode(Node("n", "2", "4Gi"));
  cache.UpsertPod(Bound(Pod("a", "1500m", "3Gi"), "n"));
  auto out = RunFilter(&cache, kNodeResourcesFit, Pod("p", "600m", "1Gi"));
  EXPECT_TRUE(out.feasible.empty());
  EXPECT_EQ(out.result.reasons, (std::map<std::string, int>{{"Insufficient cpu", 1}}));
  out = RunFilter(&cache, kNodeResourcesFit, Pod("p", "500m", "1Gi"));
  EXPECT_EQ(out.feasible, V{"n"});
  out = RunFilter(&cache, kNodeResourcesFit, Pod("p", "", "2Gi"));
  EXPECT_EQ(out.result.reasons, (std::map<std::string, int>{{"Insufficient memory", 1}}));
  // A best-effort pod needs only a pod slot.
  out = RunFilter(&cache, kNodeResourcesFit, Pod("p"));
  EXPECT_EQ(out.feasible, V{"n"});
}

TEST(NodeNameFilterTest, OnlyTheNamedNode) {
  SchedulerCache cache;
  cache.UpsertNode(Node("a"));
  cache.UpsertNode(Node("b"));
  json pod = Pod("p");
  pod["spec"]["nodeName"] = "b";
  auto out = RunFilter(&cache, kNodeName, pod);
  EXPECT_EQ(out.feasible, V{"b"});
  pod["spec"]["nodeName"] = "zzz";
  out = RunFilter(&cache, kNodeName, pod);
  EXPECT_EQ(out.result.reasons["node(s) didn't match the requested node name"], 2);
}

TEST(NodeAffinityFilterTest, NodeSelectorAndRequiredTerms) {
  SchedulerCache cache;
  cache.UpsertNode(Node("a", "4", "8Gi", {{"disk", "ssd"}, {"gen", "3"}}));
  cache.UpsertNode(Node("b", "4", "8Gi", {{"disk", "hdd"}, {"gen", "5"}}));
  cache.UpsertNode(Node("c", "4", "8Gi"));

  json pod = Pod("p");
  pod["spec"]["nodeSelector"] = {{"disk", "ssd"}};
  EXPECT_EQ(RunFilter(&cache, kNodeAffinity, pod).feasible, V{"a"});

  auto with_terms = [](json terms) {
    json p = Pod("p");
    p["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] = {
        {"nodeSelectorTerms", terms}};
    return p;
  };
  auto expr = [](const char* key, const char* op, json values) {
    json e = {{"key", key}, {"operator", op}};
    if (!values.is_null()) e["values"] = values;
    return json{{"matchExpressions", json::array({e})}};
  };
  EXPECT_EQ(
      RunFilter(&cache, kNodeAffinity, with_terms({expr("disk", "In", {"ssd", "hdd"})})).feasible,
      (V{"a", "b"}));
  EXPECT_EQ(RunFilter(&cache, kNodeAffinity, with_terms({expr("disk", "NotIn", {"ssd"})})).feasible,
            (V{"b", "c"}));
  EXPECT_EQ(
      RunFilter(&cache, kNodeAffinity, with_terms({expr("disk", "Exists", nullptr)})).feasible,
      (V{"a", "b"}));
  EXPECT_EQ(RunFilter(&cache, kNodeAffinity, with_terms({expr("disk", "DoesNotExist", nullptr)}))
                .feasible,
            V{"c"});
  EXPECT_EQ(RunFilter(&cache, kNodeAffinity, with_terms({expr("gen", "Gt", {"4"})})).feasible,
            V{"b"});
  EXPECT_EQ(RunFilter(&cache, kNodeAffinity, with_terms({expr("gen", "Lt", {"4"})})).feasible,
            V{"a"});
  // Terms are ORed.
  EXPECT_EQ(RunFilter(&cache, kNodeAffinity,
                      with_terms({expr("gen", "Lt", {"4"}), expr("disk", "DoesNotExist", nullptr)}))
                .feasible,
            (V{"a", "c"}));
  json fields = {
      {"matchFields", {{{"key", "metadata.name"}, {"operator", "In"}, {"values", {"c"}}}}}};
  EXPECT_EQ(RunFilter(&cache, kNodeAffinity, with_terms({fields})).feasible, V{"c"});
  auto out = RunFilter(&cache, kNodeAffinity, with_terms({expr("gen", "Gt", {"9"})}));
  EXPECT_EQ(out.result.reasons["node(s) didn't match Pod's node affinity/selector"], 3);
}

TEST(TaintTolerationFilterTest, NoScheduleNoExecuteAndExists) {
  SchedulerCache cache;
  cache.UpsertNode(WithTaint(Node("ns"), "dedicated", "gpu", "NoSchedule"));
  cache.UpsertNode(WithTaint(Node("ne"), "node.kubernetes.io/unreachable", "", "NoExecute"));
  cache.UpsertNode(WithTaint(Node("pref"), "soft", "x", "PreferNoSchedule"));
  cache.UpsertNode(Node("clean"));

  auto out = RunFilter(&cache, kTaintToleration, Pod("p"));
  EXPECT_EQ(out.feasible, (V{"clean", "pref"}));
  EXPECT_EQ(out.result.reasons["node(s) had untolerated taint {dedicated: gpu}"], 1);
  EXPECT_EQ(out.result.reasons["node(s) had untolerated taint {node.kubernetes.io/unreachable: }"],
            1);

  json pod = Pod("p");
  pod["spec"]["tolerations"] = {
      {{"key", "dedicated"}, {"operator", "Equal"}, {"value", "gpu"}, {"effect", "NoSchedule"}}};
  EXPECT_EQ(RunFilter(&cache, kTaintToleration, pod).feasible, (V{"clean", "ns", "pref"}));
  // Wrong value, or wrong effect: not tolerated.
  pod["spec"]["tolerations"][0]["value"] = "cpu";
  EXPECT_EQ(RunFilter(&cache, kTaintToleration, pod).feasible, (V{"clean", "pref"}));
  pod["spec"]["tolerations"] = {
      {{"key", "dedicated"}, {"operator", "Exists"}, {"effect", "NoExecute"}}};
  EXPECT_EQ(RunFilter(&cache, kTaintToleration, pod).feasible, (V{"clean", "pref"}));
  // NoExecute tolerated by key + Exists without effect.
  pod["spec"]["tolerations"] = {
      {{"key", "node.kubernetes.io/unreachable"}, {"operator", "Exists"}}};
  EXPECT_EQ(RunFilter(&cache, kTaintToleration, pod).feasible, (V{"clean", "ne", "pref"}));
  // Empty key with Exists tolerates everything.
  pod["spec"]["tolerations"] = {{{"operator", "Exists"}}};
  EXPECT_EQ(RunFilter(&cache, kTaintToleration, pod).feasible, (V{"clean", "ne", "ns", "pref"}));
}

TEST(NodeUnschedulableFilterTest, CordonedNodes) {
  SchedulerCache cache;
  json cordoned = Node("cordoned");
  cordoned["spec"]["unschedulable"] = true;
  cache.UpsertNode(cordoned);
  cache.UpsertNode(Node("ok"));
  auto out = RunFilter(&cache, kNodeUnschedulable, Pod("p"));
  EXPECT_EQ(out.feasible, V{"ok"});
  EXPECT_EQ(out.result.reasons["node(s) were unschedulable"], 1);
  json pod = Pod("p");
  pod["spec"]["tolerations"] = {{{"key", "node.kubernetes.io/unschedulable"},
                                 {"operator", "Exists"},
                                 {"effect", "NoSchedule"}}};
  EXPECT_EQ(RunFilter(&cache, kNodeUnschedulable, pod).feasible, (V{"cordoned", "ok"}));
}

json WithHostPort(json pod, int port, const std::string& proto = "", const std::string& ip = "") {
  json p = {{"containerPort", 80}, {"hostPort", port}};
  if (!proto.empty()) p["protocol"] = proto;
  if (!ip.empty()) p["hostIP"] = ip;
  pod["spec"]["containers"][0]["ports"].push_back(p);
  return pod;
}

TEST(NodePortsFilterTest, ProtocolAndHostIp) {
  SchedulerCache cache;
  cache.UpsertNode(Node("a"));
  cache.UpsertNode(Node("b"));
  cache.UpsertPod(Bound(WithHostPort(Pod("web"), 8080), "a"));
  cache.UpsertPod(Bound(WithHostPort(Pod("dns"), 53, "UDP", "10.0.0.1"), "b"));

  auto out = RunFilter(&cache, kNodePorts, WithHostPort(Pod("p"), 8080));
  EXPECT_EQ(out.feasible, V{"b"});
  EXPECT_EQ(out.result.reasons["node(s) didn't have free ports for the requested pod ports"], 1);
  EXPECT_EQ(RunFilter(&cache, kNodePorts, WithHostPort(Pod("p"), 8080, "UDP")).feasible,
            (V{"a", "b"}));
  EXPECT_EQ(RunFilter(&cache, kNodePorts, WithHostPort(Pod("p"), 53, "UDP", "10.0.0.2")).feasible,
            (V{"a", "b"}));
  EXPECT_EQ(RunFilter(&cache, kNodePorts, WithHostPort(Pod("p"), 53, "UDP")).feasible, V{"a"});
  // Removing the pod frees the port.
  cache.RemovePod(Pod("web"));
  EXPECT_EQ(RunFilter(&cache, kNodePorts, WithHostPort(Pod("p"), 8080)).feasible, (V{"a", "b"}));
}

json WithPodAffinity(json pod, const char* kind, json selector, const std::string& topology_key,
                     json extra = json::object()) {
  json term = {{"labelSelector", selector}, {"topologyKey", topology_key}};
  term.update(extra);
  pod["spec"]["affinity"][kind]["requiredDuringSchedulingIgnoredDuringExecution"].push_back(term);
  return pod;
}

TEST(InterPodAffinityFilterTest, AffinityAntiAffinityAndExisting) {
  SchedulerCache cache;
  cache.UpsertNode(Node("a", "4", "8Gi", {{"zone", "z1"}}));
  cache.UpsertNode(Node("b", "4", "8Gi", {{"zone", "z1"}}));
  cache.UpsertNode(Node("c", "4", "8Gi", {{"zone", "z2"}}));
  cache.UpsertPod(Bound(Pod("db", "", "", {{"app", "db"}}), "a"));
  json db_sel = {{"matchLabels", {{"app", "db"}}}};

  // Affinity to app=db in the same zone: a and b.
  auto out = RunFilter(&cache, kInterPodAffinity,
                       WithPodAffinity(Pod("p"), "podAffinity", db_sel, "zone"));
  EXPECT_EQ(out.feasible, (V{"a", "b"}));
  EXPECT_EQ(out.result.reasons["node(s) didn't match pod affinity rules"], 1);
  // Anti-affinity by hostname: everywhere but a.
  out = RunFilter(&cache, kInterPodAffinity,
                  WithPodAffinity(Pod("p"), "podAntiAffinity", db_sel, "kubernetes.io/hostname"));
  EXPECT_EQ(out.feasible, (V{"b", "c"}));
  EXPECT_EQ(out.result.reasons["node(s) didn't match pod anti-affinity rules"], 1);
  // Another namespace's db does not count.
  json other_ns = WithPodAffinity(Pod("p"), "podAffinity", db_sel, "zone", {{"namespaces", {"x"}}});
  EXPECT_TRUE(RunFilter(&cache, kInterPodAffinity, other_ns).feasible.empty());
  // namespaceSelector {} selects every namespace.
  json all_ns = WithPodAffinity(Pod("p"), "podAffinity", db_sel, "zone",
                                {{"namespaceSelector", json::object()}});
  EXPECT_EQ(RunFilter(&cache, kInterPodAffinity, all_ns).feasible, (V{"a", "b"}));
  // namespaceSelector by namespace labels.
  cache.UpsertNamespace({{"metadata", {{"name", "default"}, {"labels", {{"team", "x"}}}}}});
  json ns_sel = WithPodAffinity(Pod("p"), "podAffinity", db_sel, "zone",
                                {{"namespaceSelector", {{"matchLabels", {{"team", "x"}}}}}});
  EXPECT_EQ(RunFilter(&cache, kInterPodAffinity, ns_sel).feasible, (V{"a", "b"}));

  // An existing pod's anti-affinity keeps matching pods out of its zone.
  cache.UpsertPod(Bound(
      WithPodAffinity(Pod("loner"), "podAntiAffinity", {{"matchLabels", {{"app", "web"}}}}, "zone"),
      "c"));
  out = RunFilter(&cache, kInterPodAffinity, Pod("w", "", "", {{"app", "web"}}));
  EXPECT_EQ(out.feasible, (V{"a", "b"}));
  EXPECT_EQ(out.result.reasons["node(s) didn't satisfy existing pods anti-affinity rules"], 1);
}

TEST(InterPodAffinityFilterTest, FirstPodOfSelfAffineGroupIsAllowed) {
  SchedulerCache cache;
  cache.UpsertNode(Node("a", "4", "8Gi", {{"zone", "z1"}}));
  cache.UpsertNode(Node("b"));  // no zone label
  json pod = WithPodAffinity(Pod("p", "", "", {{"app", "cache"}}), "podAffinity",
                             {{"matchLabels", {{"app", "cache"}}}}, "zone");
  EXPECT_EQ(RunFilter(&cache, kInterPodAffinity, pod).feasible, V{"a"});
}

json WithSpread(json pod, const std::string& key, int max_skew, const std::string& when,
                json selector, json extra = json::object()) {
  json c = {{"maxSkew", max_skew},
            {"topologyKey", key},
            {"whenUnsatisfiable", when},
            {"labelSelector", selector}};
  c.update(extra);
  pod["spec"]["topologySpreadConstraints"].push_back(c);
  return pod;
}

TEST(PodTopologySpreadFilterTest, MaxSkewOverZones) {
  SchedulerCache cache;
  cache.UpsertNode(Node("a1", "4", "8Gi", {{"zone", "a"}}));
  cache.UpsertNode(Node("a2", "4", "8Gi", {{"zone", "a"}}));
  cache.UpsertNode(Node("b1", "4", "8Gi", {{"zone", "b"}}));
  cache.UpsertNode(Node("nolabel"));
  json labels = {{"app", "web"}};
  cache.UpsertPod(Bound(Pod("w1", "", "", labels), "a1"));
  cache.UpsertPod(Bound(Pod("w2", "", "", labels), "a2"));
  json sel = {{"matchLabels", labels}};
  json pod = WithSpread(Pod("w3", "", "", labels), "zone", 1, "DoNotSchedule", sel);
  auto out = RunFilter(&cache, kPodTopologySpread, pod);
  EXPECT_EQ(out.feasible, V{"b1"});
  EXPECT_EQ(out.result.reasons["node(s) didn't match pod topology spread constraints"], 2);
  EXPECT_EQ(out.result.reasons["node(s) didn't match pod topology spread constraints (missing "
                               "required label)"],
            1);
  // maxSkew 2 tolerates zone a.
  pod = WithSpread(Pod("w3", "", "", labels), "zone", 3, "DoNotSchedule", sel);
  EXPECT_EQ(RunFilter(&cache, kPodTopologySpread, pod).feasible, (V{"a1", "a2", "b1"}));
  // minDomains 3 with two zones: the global minimum is 0, so zone b (0+1) passes, a (2+1) fails.
  pod = WithSpread(Pod("w3", "", "", labels), "zone", 2, "DoNotSchedule", sel, {{"minDomains", 3}});
  EXPECT_EQ(RunFilter(&cache, kPodTopologySpread, pod).feasible, V{"b1"});
  // ScheduleAnyway never filters.
  pod = WithSpread(Pod("w3", "", "", labels), "zone", 1, "ScheduleAnyway", sel);
  EXPECT_EQ(RunFilter(&cache, kPodTopologySpread, pod).feasible.size(), 4u);
}

}  // namespace
}  // namespace mk8s::scheduler::testing
