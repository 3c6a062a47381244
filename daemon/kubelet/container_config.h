// Pod and container specs -> CRI configs (upstream kubelet's kuberuntime sandbox / container
// config generation): sandbox metadata, hostname, log directory, DNS, host ports, cgroup parent,
// namespaces and security context; container image, command, env, mounts, resources, security
// context, log path, and the labels/annotations that let a restarted kubelet adopt what runs.
// Pure functions; thread-safe. Includes the CRI protobuf header: for kubelet sources only.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cri/api.pb.h"

namespace mk8s::kubelet {

namespace cri = ::runtime::v1;

// CRI labels and annotations shared with the runtime view and adoption.
inline constexpr const char* kPodNameLabel = "io.kubernetes.pod.name";
inline constexpr const char* kPodNamespaceLabel = "io.kubernetes.pod.namespace";
inline constexpr const char* kPodUidLabel = "io.kubernetes.pod.uid";
inline constexpr const char* kContainerNameLabel = "io.kubernetes.container.name";
inline constexpr const char* kRestartCountAnnotation = "io.kubernetes.container.restartCount";
inline constexpr const char* kGracePeriodAnnotation = "io.kubernetes.pod.terminationGracePeriod";

// resolv.conf contents (servers, searches, options).
struct DnsSettings {
  std::vector<std::string> servers, searches, options;
  static DnsSettings ParseResolvConf(const std::string& text);
};

struct SandboxParams {
  std::string log_root;                    // <state>/kubelet/logs
  std::optional<std::string> cluster_dns;  // the cluster DNS service IP, if the addon runs
  std::string cluster_domain = "cluster.local";
  DnsSettings host_dns;  // the node's resolv.conf
  uint32_t attempt = 0;
};

// A bind mount for a container (from the volume manager, or the termination log).
struct MountSpec {
  std::string container_path, host_path;
  bool read_only = false;
  int propagation = 0;  // cri::MountPropagation
};

struct ContainerParams {
  int restart_count = 0;
  std::vector<std::pair<std::string, std::string>> env;
  std::vector<MountSpec> mounts;
  int64_t memory_capacity_bytes = 0;
};

// "<ns>_<name>_<uid>" under log_root.
std::string PodLogDirectory(const std::string& log_root, const nlohmann::json& pod);
std::string ContainerLogPath(const std::string& container, int restart_count);

// The pod's resolv.conf for its dnsPolicy and dnsConfig.
DnsSettings PodDns(const nlohmann::json& pod, const SandboxParams& params);

cri::PodSandboxConfig BuildSandboxConfig(const nlohmann::json& pod, const SandboxParams& params);
cri::ContainerConfig BuildContainerConfig(const nlohmann::json& pod,
                                          const nlohmann::json& container,
                                          const ContainerParams& params);
// cpu shares / quota / period, memory limit and OOM score adjustment for one container.
cri::LinuxContainerResources ContainerResources(const nlohmann::json& pod,
                                                const nlohmann::json& container,
                                                int64_t memory_capacity_bytes);

// Plain `env` entries with literal values (the fallback without the volume manager's resolver).
std::vector<std::pair<std::string, std::string>> LiteralEnv(const nlohmann::json& container);

}  // namespace mk8s::kubelet
