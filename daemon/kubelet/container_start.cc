// PodSync: starting container instances (image pull, create, start) and restarts with back-off.
#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>

#include "kubelet/pod_sync.h"
#include "runtime/cri_client.h"

namespace mk8s::kubelet {
namespace {

using nlohmann::json;

// Upstream's default: Always for ":latest" or an untagged image, else IfNotPresent.
std::string PullPolicy(const json& container) {
  std::string policy = container.value("imagePullPolicy", "");
  if (!policy.empty()) return policy;
  const std::string image = container.value("image", "");
  if (image.find('@') != std::string::npos) return "IfNotPresent";
  const size_t slash = image.rfind('/');
  const size_t colon = image.rfind(':');
  const bool tagged = colon != std::string::npos && (slash == std::string::npos || colon > slash);
  if (!tagged || image.substr(colon + 1) == "latest") return "Always";
  return "IfNotPresent";
}

std::string FormatSeconds(std::chrono::steady_clock::duration d) {
  char buffer[32];
  std::snprintf(buffer, sizeof(buffer), "%.3fs", std::chrono::duration<double>(d).count());
  return buffer;
}

}  // namespace

bool PodSync::EnsureImage(const json& pod, const json& container,
                          const cri::PodSandboxConfig& sandbox_config) {
  const std::string uid = pod["metadata"].value("uid", "");
  const std::string name = container.value("name", "");
  const std::string image = container.value("image", "");
  const std::string policy = PullPolicy(container);
  if (policy != "Always") {
    auto present = cri_->ImageStatus(image);
    if (present.ok() && present->has_value()) {
      recorder_.Record(pod, "Normal", "Pulled",
                       "Container image \"" + image + "\" already present on machine");
      return true;
    }
    if (policy == "Never") {
      const std::string message =
          "Container image \"" + image + "\" is not present with pull policy of Never";
      SetWaiting(uid, name, {"ErrImageNeverPull", message});
      recorder_.Record(pod, "Warning", "ErrImageNeverPull", message);
      return false;
    }
  }
  const std::string key = uid + "/" + image;
  const auto now = std::chrono::steady_clock::now();
  if (pull_backoff_.IsInBackOffSince(key, now, now)) {
    // A previous pull failed: wait out the back-off.
    const std::string message = "Back-off pulling image \"" + image + "\"";
    SetWaiting(uid, name, {"ImagePullBackOff", message});
    recorder_.Record(pod, "Normal", "BackOff", message);
    return false;
  }
  recorder_.Record(pod, "Normal", "Pulling", "Pulling image \"" + image + "\"");
  const auto started = std::chrono::steady_clock::now();
  auto pulled = cri_->PullImage(image, nullptr, &sandbox_config);
  if (!pulled.ok()) {
    pull_backoff_.Next(key, std::chrono::steady_clock::now());
    const std::string message =
        "Failed to pull image \"" + image + "\": " + pulled.status().message();
    SetWaiting(uid, name, {"ErrImagePull", message});
    recorder_.Record(pod, "Warning", "Failed", message);
    recorder_.Record(pod, "Warning", "Failed", "Error: ErrImagePull");
    return false;
  }
  const auto took = std::chrono::steady_clock::now() - started;
  recorder_.Record(pod, "Normal", "Pulled",
                   "Successfully pulled image \"" + image + "\" in " + FormatSeconds(took));
  return true;
}

bool PodSync::StartContainer(const json& pod, const json& container, int restart_count,
                             const std::string& sandbox_id,
                             const cri::PodSandboxConfig& sandbox_config,
                             const std::string& pod_ip) {
  const std::string uid = pod["metadata"].value("uid", "");
  const std::string name = container.value("name", "");
  if (!EnsureImage(pod, container, sandbox_config)) return false;

  ContainerParams params;
  params.restart_count = restart_count;
  params.memory_capacity_bytes = options_.memory_capacity_bytes;
  if (hooks_.resolve_env) {
    auto env = hooks_.resolve_env(pod, container, pod_ip);
    if (!env.ok()) {
      SetWaiting(uid, name, {"CreateContainerConfigError", env.status().message()});
      recorder_.Record(pod, "Warning", "Failed", "Error: " + env.status().message());
      return false;
    }
    params.env = std::move(*env);
  } else {
    params.env = LiteralEnv(container);
  }
  if (hooks_.mounts_for) {
    auto mounts = hooks_.mounts_for(pod, container);
    if (!mounts.ok()) {
      SetWaiting(uid, name, {"CreateContainerConfigError", mounts.status().message()});
      recorder_.Record(pod, "Warning", "Failed", "Error: " + mounts.status().message());
      return false;
    }
    params.mounts = std::move(*mounts);
  }
  // The termination message file, one per instance.
  std::string message_path = container.value("terminationMessagePath", "/dev/termination-log");
  if (message_path.empty()) message_path = "/dev/termination-log";
  const std::string host_dir = options_.root_dir + "/pods/" + uid + "/containers/" + name;
  std::error_code error;
  std::filesystem::create_directories(host_dir, error);
  const std::string host_file = host_dir + "/" + std::to_string(restart_count);
  { std::ofstream touch(host_file, std::ios::app); }
  params.mounts.push_back(MountSpec{message_path, host_file, false, 0});
  std::filesystem::create_directories(sandbox_config.log_directory() + "/" + name, error);

  cri::ContainerConfig config = BuildContainerConfig(pod, container, params);
  auto id = cri_->CreateContainer(sandbox_id, config, sandbox_config);
  if (!id.ok()) {
    SetWaiting(uid, name, {"CreateContainerError", id.status().message()});
    recorder_.Record(pod, "Warning", "Failed", "Error: " + id.status().message());
    return false;
  }
  recorder_.Record(pod, "Normal", "Created", "Created container " + name);
  if (Status started = cri_->StartContainer(*id); !started.ok()) {
    SetWaiting(uid, name, {"RunContainerError", started.message()});
    recorder_.Record(pod, "Warning", "Failed", "Error: " + started.message());
    return false;
  }
  recorder_.Record(pod, "Normal", "Started", "Started container " + name);
  ClearWaiting(uid, name);
  return true;
}

std::optional<std::chrono::milliseconds> PodSync::Restart(
    const json& pod, const json& container, const ContainerInfo& last,
    const std::string& sandbox_id, const cri::PodSandboxConfig& sandbox_config,
    const std::string& pod_ip) {
  const std::string uid = pod["metadata"].value("uid", "");
  const std::string name = container.value("name", "");
  const std::string key = uid + "/" + name;
  const auto now = std::chrono::steady_clock::now();
  // The exit time on the steady clock.
  const auto since_exit = std::chrono::system_clock::now() -
                          std::chrono::system_clock::time_point(
                              std::chrono::duration_cast<std::chrono::system_clock::duration>(
                                  std::chrono::nanoseconds(last.finished_at_ns)));
  const auto finished = last.finished_at_ns > 0 ? now - since_exit : now;
  if (crash_backoff_.IsInBackOffSince(key, finished, now)) {
    const auto delay = crash_backoff_.Get(key);
    const std::string message = "back-off " + FormatGoDuration(delay) +
                                " restarting failed container=" + name +
                                " pod=" + PodDescription(pod);
    SetWaiting(uid, name, {"CrashLoopBackOff", message});
    recorder_.Record(
        pod, "Warning", "BackOff",
        "Back-off restarting failed container " + name + " in pod " + PodDescription(pod));
    return std::chrono::duration_cast<std::chrono::milliseconds>(finished + delay - now) +
           std::chrono::milliseconds(50);
  }
  crash_backoff_.Next(key, now);
  if (!StartContainer(pod, container, last.restart_count + 1, sandbox_id, sandbox_config, pod_ip)) {
    return std::chrono::milliseconds(std::chrono::seconds(10));  // image or config trouble: retry
  }
  return std::nullopt;
}

}  // namespace mk8s::kubelet
