// The kubelet's volumes and container environment (daemon/kubelet/volumes/): one include for
// the kubelet's pod lifecycle. See volume_manager.h and env.h for the contracts.
#pragma once

#include "kubelet/volumes/env.h"             // IWYU pragma: export
#include "kubelet/volumes/volume_manager.h"  // IWYU pragma: export
