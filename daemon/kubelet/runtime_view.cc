#include "kubelet/runtime_view.h"

#include <algorithm>

#include "kubelet/container_config.h"
#include "runtime/cri_client.h"

namespace mk8s::kubelet {
namespace {

ContainerState FromCri(cri::ContainerState state) {
  switch (state) {
    case cri::CONTAINER_CREATED:
      return ContainerState::kCreated;
    case cri::CONTAINER_RUNNING:
      return ContainerState::kRunning;
    case cri::CONTAINER_EXITED:
      return ContainerState::kExited;
    default:
      return ContainerState::kUnknown;
  }
}

int RestartCount(const google::protobuf::Map<std::string, std::string>& annotations) {
  auto it = annotations.find(kRestartCountAnnotation);
  if (it == annotations.end()) return 0;
  try {
    return std::stoi(it->second);
  } catch (...) {
    return 0;
  }
}

}  // namespace

Result<PodRuntimeState> ReadPodState(runtime::CriClient& cri, const std::string& pod_uid) {
  PodRuntimeState state;
  cri::PodSandboxFilter sandbox_filter;
  (*sandbox_filter.mutable_label_selector())[kPodUidLabel] = pod_uid;
  auto sandboxes = cri.ListPodSandbox(sandbox_filter);
  if (!sandboxes.ok()) return sandboxes.status();
  for (const cri::PodSandbox& s : *sandboxes) {
    SandboxInfo info;
    info.id = s.id();
    info.ready = s.state() == cri::SANDBOX_READY;
    info.attempt = static_cast<int>(s.metadata().attempt());
    info.created_at_ns = s.created_at();
    state.sandboxes.push_back(std::move(info));
  }
  std::sort(state.sandboxes.begin(), state.sandboxes.end(),
            [](const SandboxInfo& a, const SandboxInfo& b) {
              if (a.attempt != b.attempt) return a.attempt > b.attempt;
              return a.created_at_ns > b.created_at_ns;
            });
  if (!state.sandboxes.empty() && state.sandboxes.front().ready) {
    auto status = cri.PodSandboxStatus(state.sandboxes.front().id);
    if (status.ok()) {
      const auto& network = status->status().network();
      if (!network.ip().empty()) state.sandboxes.front().ips.push_back(network.ip());
      for (const auto& ip : network.additional_ips())
        state.sandboxes.front().ips.push_back(ip.ip());
      state.sandboxes.front().ready = status->status().state() == cri::SANDBOX_READY;
    }
  }

  cri::ContainerFilter container_filter;
  (*container_filter.mutable_label_selector())[kPodUidLabel] = pod_uid;
  auto containers = cri.ListContainers(container_filter);
  if (!containers.ok()) return containers.status();
  for (const cri::Container& c : *containers) {
    ContainerInfo info;
    info.id = c.id();
    info.sandbox_id = c.pod_sandbox_id();
    auto name = c.labels().find(kContainerNameLabel);
    info.name = name != c.labels().end() ? name->second : c.metadata().name();
    info.restart_count = RestartCount(c.annotations());
    info.state = FromCri(c.state());
    info.created_at_ns = c.created_at();
    info.image = c.image().image();
    info.image_ref = c.image_ref();
    auto status = cri.ContainerStatus(c.id());
    if (status.ok()) {
      info.state = FromCri(status->state());
      info.started_at_ns = status->started_at();
      info.finished_at_ns = status->finished_at();
      info.exit_code = status->exit_code();
      info.reason = status->reason();
      info.message = status->message();
      if (!status->image_ref().empty()) info.image_ref = status->image_ref();
    } else if (status.status().code() == Code::kNotFound) {
      continue;  // removed meanwhile
    }
    state.containers.push_back(std::move(info));
  }
  return state;
}

}  // namespace mk8s::kubelet
