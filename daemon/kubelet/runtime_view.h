// Reads what the runtime holds for one pod (sandboxes and container instances found by the
// io.kubernetes.pod.uid label) into a PodRuntimeState. Blocking CRI calls; thread-safe.
#pragma once

#include <string>

#include "common/status.h"
#include "kubelet/runtime_state.h"

namespace mk8s::runtime {
class CriClient;
}

namespace mk8s::kubelet {

Result<PodRuntimeState> ReadPodState(runtime::CriClient& cri, const std::string& pod_uid);

}  // namespace mk8s::kubelet
