// StreamingRuntime over CRI: finds the container (or sandbox) by the CRI labels
// io.kubernetes.pod.{namespace,name,uid} and io.kubernetes.container.name (running/ready ones,
// the newest first) and asks for the one-shot Exec/Attach/PortForward URL.
#pragma once

#include <memory>

#include "kubelet/streaming/streaming_service.h"

namespace mk8s::runtime {
class CriClient;
}

namespace mk8s::kubelet {

// `cri` must outlive the returned object; it is thread-safe (blocking RPCs with deadlines).
std::shared_ptr<StreamingRuntime> MakeCriStreamingRuntime(runtime::CriClient* cri);

}  // namespace mk8s::kubelet
