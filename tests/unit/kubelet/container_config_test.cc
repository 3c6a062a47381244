#include "kubelet/container_config.h"

#include <gtest/gtest.h>

namespace mk8s::kubelet {
namespace {

using nlohmann::json;

json Pod() {
  return json::parse(R"({
    "metadata": {"name": "web", "namespace": "shop", "uid": "u-1", "labels": {"app": "web"},
                 "annotations": {"note": "x"}},
    "spec": {
      "terminationGracePeriodSeconds": 5,
      "securityContext": {"runAsUser": 1000, "fsGroup": 2000},
      "containers": [{
        "name": "main", "image": "localhost/web:1",
        "command": ["httpd"], "args": ["-f", "-p", "80"], "workingDir": "/www",
        "ports": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 53, "protocol": "UDP"}],
        "resources": {"requests": {"cpu": "250m", "memory": "64Mi"},
                      "limits": {"cpu": "500m", "memory": "128Mi"}},
        "securityContext": {"runAsUser": 33, "readOnlyRootFilesystem": true,
                            "capabilities": {"add": ["NET_ADMIN"], "drop": ["ALL"]}}
      }]
    }})");
}

TEST(ContainerConfigTest, SandboxConfig) {
  SandboxParams params;
  params.log_root = "/state/kubelet/logs";
  params.attempt = 2;
  params.cluster_dns = "10.152.183.10";
  params.host_dns = DnsSettings::ParseResolvConf("nameserver 1.1.1.1\nsearch corp.example\n");
  const cri::PodSandboxConfig config = BuildSandboxConfig(Pod(), params);
  EXPECT_EQ(config.metadata().name(), "web");
  EXPECT_EQ(config.metadata().namespace_(), "shop");
  EXPECT_EQ(config.metadata().uid(), "u-1");
  EXPECT_EQ(config.metadata().attempt(), 2u);
  EXPECT_EQ(config.hostname(), "web");
  EXPECT_EQ(config.log_directory(), "/state/kubelet/logs/shop_web_u-1");
  ASSERT_EQ(config.dns_config().servers_size(), 1);
  EXPECT_EQ(config.dns_config().servers(0), "10.152.183.10");
  ASSERT_EQ(config.dns_config().searches_size(), 4);
  EXPECT_EQ(config.dns_config().searches(0), "shop.svc.cluster.local");
  EXPECT_EQ(config.dns_config().searches(3), "corp.example");
  EXPECT_EQ(config.dns_config().options(0), "ndots:5");
  ASSERT_EQ(config.port_mappings_size(), 1);
  EXPECT_EQ(config.port_mappings(0).host_port(), 8080);
  EXPECT_EQ(config.port_mappings(0).container_port(), 80);
  EXPECT_EQ(config.labels().at("io.kubernetes.pod.uid"), "u-1");
  EXPECT_EQ(config.labels().at("app"), "web");
  EXPECT_EQ(config.annotations().at("note"), "x");
  EXPECT_EQ(config.linux().cgroup_parent(), "/mk8s/burstable/podu-1");
  EXPECT_EQ(config.linux().security_context().namespace_options().network(), cri::POD);
  EXPECT_EQ(config.linux().security_context().namespace_options().pid(), cri::CONTAINER);
  EXPECT_EQ(config.linux().security_context().run_as_user().value(), 1000);
}

TEST(ContainerConfigTest, DnsPolicies) {
  json pod = Pod();
  SandboxParams params;
  params.host_dns = DnsSettings::ParseResolvConf("nameserver 1.1.1.1\noptions edns0\n");
  // ClusterFirst without a cluster DNS falls back to the node's resolv.conf.
  DnsSettings dns = PodDns(pod, params);
  EXPECT_EQ(dns.servers, std::vector<std::string>{"1.1.1.1"});
  pod["spec"]["hostNetwork"] = true;
  params.cluster_dns = "10.152.183.10";
  EXPECT_EQ(PodDns(pod, params).servers, std::vector<std::string>{"1.1.1.1"});
  pod["spec"]["dnsPolicy"] = "ClusterFirstWithHostNet";
  EXPECT_EQ(PodDns(pod, params).servers, std::vector<std::string>{"10.152.183.10"});
  pod["spec"]["dnsPolicy"] = "None";
  pod["spec"]["dnsConfig"] = {{"nameservers", {"9.9.9.9"}},
                              {"searches", {"a.example"}},
                              {"options", {{{"name", "ndots"}, {"value", "2"}}}}};
  dns = PodDns(pod, params);
  EXPECT_EQ(dns.servers, std::vector<std::string>{"9.9.9.9"});
  EXPECT_EQ(dns.searches, std::vector<std::string>{"a.example"});
  EXPECT_EQ(dns.options, std::vector<std::string>{"ndots:2"});
}

TEST(ContainerConfigTest, HostNamespaces) {
  json pod = Pod();
  pod["spec"]["hostNetwork"] = true;
  pod["spec"]["hostPID"] = true;
  const cri::PodSandboxConfig config = BuildSandboxConfig(pod, SandboxParams{});
  EXPECT_EQ(config.hostname(), "");
  EXPECT_EQ(config.linux().security_context().namespace_options().network(), cri::NODE);
  EXPECT_EQ(config.linux().security_context().namespace_options().pid(), cri::NODE);
  EXPECT_EQ(config.linux().security_context().namespace_options().ipc(), cri::POD);
}

TEST(ContainerConfigTest, ContainerConfig) {
  const json pod = Pod();
  ContainerParams params;
  params.restart_count = 3;
  params.env = {{"A", "1"}};
  params.mounts = {MountSpec{"/etc/config", "/state/pods/u-1/volumes/x", true, 0}};
  params.memory_capacity_bytes = 1LL << 30;
  const cri::ContainerConfig config =
      BuildContainerConfig(pod, pod["spec"]["containers"][0], params);
  EXPECT_EQ(config.metadata().name(), "main");
  EXPECT_EQ(config.metadata().attempt(), 3u);
  EXPECT_EQ(config.image().image(), "localhost/web:1");
  ASSERT_EQ(config.command_size(), 1);
  EXPECT_EQ(config.args_size(), 3);
  EXPECT_EQ(config.working_dir(), "/www");
  EXPECT_EQ(config.envs(0).key(), "A");
  EXPECT_TRUE(config.mounts(0).readonly());
  EXPECT_EQ(config.log_path(), "main/3.log");
  EXPECT_EQ(config.labels().at("io.kubernetes.container.name"), "main");
  EXPECT_EQ(config.labels().at("io.kubernetes.pod.namespace"), "shop");
  EXPECT_EQ(config.annotations().at("io.kubernetes.container.restartCount"), "3");
  EXPECT_EQ(config.annotations().at("io.kubernetes.pod.terminationGracePeriod"), "5");
  const auto& resources = config.linux().resources();
  EXPECT_EQ(resources.cpu_shares(), 256);
  EXPECT_EQ(resources.cpu_period(), 100000);
  EXPECT_EQ(resources.cpu_quota(), 50000);
  EXPECT_EQ(resources.memory_limit_in_bytes(), 128LL << 20);
  EXPECT_EQ(resources.oom_score_adj(), 1000 - (1000 * (64LL << 20)) / (1LL << 30));
  const auto& security = config.linux().security_context();
  EXPECT_EQ(security.run_as_user().value(), 33);  // the container's wins over the pod's
  EXPECT_TRUE(security.readonly_rootfs());
  EXPECT_EQ(security.capabilities().add_capabilities(0), "NET_ADMIN");
  EXPECT_EQ(security.capabilities().drop_capabilities(0), "ALL");
  EXPECT_EQ(security.supplemental_groups(0), 2000);
  EXPECT_GT(security.masked_paths_size(), 0);
}

TEST(ContainerConfigTest, MinimalResources) {
  json pod = Pod();
  pod["spec"]["containers"][0].erase("resources");
  const auto resources = ContainerResources(pod, pod["spec"]["containers"][0], 1LL << 30);
  EXPECT_EQ(resources.cpu_shares(), 2);
  EXPECT_EQ(resources.cpu_quota(), 0);
  EXPECT_EQ(resources.memory_limit_in_bytes(), 0);
  EXPECT_EQ(resources.oom_score_adj(), 1000);
}

TEST(ContainerConfigTest, LiteralEnvSkipsValueFrom) {
  const json container = {
      {"env",
       {{{"name", "A"}, {"value", "x"}},
        {{"name", "B"}, {"valueFrom", {{"fieldRef", {{"fieldPath", "metadata.name"}}}}}}}}};
  const auto env = LiteralEnv(container);
  ASSERT_EQ(env.size(), 1u);
  EXPECT_EQ(env[0].first, "A");
}

}  // namespace
}  // namespace mk8s::kubelet
