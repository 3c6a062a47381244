// PodSync: stopping pods (deletion, orphans, daemon shutdown).
#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <future>

#include "client/resources.h"
#include "kubelet/pod_sync.h"
#include "kubelet/runtime_view.h"
#include "runtime/cri_client.h"

namespace mk8s::kubelet {
namespace {

using nlohmann::json;

constexpr int64_t kShutdownGraceCapSeconds = 30;

int64_t GraceFromAnnotation(const cri::Container& c) {
  auto it = c.annotations().find(kGracePeriodAnnotation);
  if (it == c.annotations().end()) return 30;
  try {
    return std::stoll(it->second);
  } catch (...) {
    return 30;
  }
}

}  // namespace

void PodSync::StopContainers(const std::vector<const ContainerInfo*>& containers, int64_t grace,
                             const json* pod) {
  // In parallel, as upstream: each container gets the whole grace period.
  std::vector<std::future<void>> stops;
  for (const ContainerInfo* c : containers) {
    if (pod != nullptr)
      recorder_.Record(*pod, "Normal", "Killing", "Stopping container " + c->name);
    const std::string id = c->id;
    stops.push_back(std::async(std::launch::async, [this, id, grace] {
      if (Status stopped = cri_->StopContainer(id, grace); !stopped.ok()) {
        spdlog::warn("kubelet: stopping container {}: {}", id.substr(0, 12), stopped.message());
      }
    }));
  }
  for (auto& stop : stops) stop.wait();
}

Status PodSync::Terminate(const json& pod) {
  const std::string uid = pod["metadata"].value("uid", "");
  auto read = ReadPodState(*cri_, uid);
  if (!read.ok()) return read.status();
  const std::vector<const ContainerInfo*> running = read->Live();
  const auto started = std::chrono::steady_clock::now();
  StopContainers(running, GracePeriod(pod), &pod);
  for (const SandboxInfo& s : read->sandboxes) {
    if (Status stopped = cri_->StopPodSandbox(s.id); !stopped.ok()) return stopped;
    if (Status removed = cri_->RemovePodSandbox(s.id); !removed.ok()) return removed;
  }
  if (hooks_.tear_down_volumes) hooks_.tear_down_volumes(uid);
  std::error_code error;
  std::filesystem::remove_all(options_.root_dir + "/pods/" + uid + "/containers", error);
  client::DeleteOptions options;
  options.grace_period_seconds = 0;
  options.precondition_uid = uid;
  auto deleted = client_->Delete(client::kPods, pod["metadata"].value("namespace", ""),
                                 pod["metadata"].value("name", ""), options);
  if (!deleted.ok() && !client::IsNotFound(deleted.error()) &&
      !client::IsConflict(deleted.error())) {
    return deleted.status();
  }
  Forget(uid);
  spdlog::info("kubelet: pod {} terminated (grace {} s) in {} ms", PodDescription(pod),
               GracePeriod(pod),
               std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - started)
                   .count());
  return Status::Ok();
}

Status PodSync::CleanUpOrphan(const std::string& uid, std::optional<int64_t> known_grace) {
  cri::ContainerFilter filter;
  (*filter.mutable_label_selector())[kPodUidLabel] = uid;
  auto containers = cri_->ListContainers(filter);
  if (!containers.ok()) return containers.status();
  std::vector<std::future<void>> stops;
  for (const cri::Container& c : *containers) {
    if (c.state() != cri::CONTAINER_RUNNING) continue;
    const std::string id = c.id();
    const int64_t grace = known_grace ? *known_grace : GraceFromAnnotation(c);
    stops.push_back(std::async(std::launch::async,
                               [this, id, grace] { (void)cri_->StopContainer(id, grace); }));
  }
  for (auto& stop : stops) stop.wait();
  cri::PodSandboxFilter sandbox_filter;
  (*sandbox_filter.mutable_label_selector())[kPodUidLabel] = uid;
  auto sandboxes = cri_->ListPodSandbox(sandbox_filter);
  if (!sandboxes.ok()) return sandboxes.status();
  for (const cri::PodSandbox& s : *sandboxes) {
    if (Status stopped = cri_->StopPodSandbox(s.id()); !stopped.ok()) return stopped;
    if (Status removed = cri_->RemovePodSandbox(s.id()); !removed.ok()) return removed;
  }
  if (hooks_.tear_down_volumes) hooks_.tear_down_volumes(uid);
  std::error_code error;
  std::filesystem::remove_all(options_.root_dir + "/pods/" + uid + "/containers", error);
  Forget(uid);
  spdlog::info("kubelet: cleaned up pod {} (gone from the API)", uid);
  return Status::Ok();
}

void PodSync::StopAll() {
  auto containers = cri_->ListContainers();
  if (containers.ok()) {
    std::vector<std::future<void>> stops;
    for (const cri::Container& c : *containers) {
      if (c.state() != cri::CONTAINER_RUNNING) continue;
      const std::string id = c.id();
      // Capped so `mk8s stop` (120 s) and systemd (TimeoutStopSec=90) outlast it.
      const int64_t grace = std::min<int64_t>(GraceFromAnnotation(c), kShutdownGraceCapSeconds);
      stops.push_back(std::async(std::launch::async,
                                 [this, id, grace] { (void)cri_->StopContainer(id, grace); }));
    }
    for (auto& stop : stops) stop.wait();
  }
  auto sandboxes = cri_->ListPodSandbox();
  if (sandboxes.ok()) {
    for (const cri::PodSandbox& s : *sandboxes) {
      if (s.state() == cri::SANDBOX_READY) (void)cri_->StopPodSandbox(s.id());
    }
  }
}

}  // namespace mk8s::kubelet
