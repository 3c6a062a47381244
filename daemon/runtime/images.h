// Local images without a registry: importing OCI/docker tarballs into containerd's CRI namespace
// (k8s.io) and the bundled pause image.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/status.h"

namespace mk8s::runtime {

class CriClient;

// The pause image's reference: localhost/mk8s/pause:<project version>.
std::string PauseImageRef();

// Where the pause image tarball is, in this order: `override_path` (must exist when set),
// $MK8S_PAUSE_IMAGE, <dir of this executable>/../share/mk8s/images/pause.tar (relocated install),
// the build tree's <build>/images/pause.tar, <install prefix>/share/mk8s/images/pause.tar.
// kNotFound lists every place tried.
Result<std::string> FindPauseImageTarball(const std::string& override_path = "");

// Runs `ctr -a <socket> -n k8s.io images import <tar_path>` and returns the names ctr reports
// as imported. Fails with ctr's output when ctr fails. ctr_binary "" = DefaultCtrBinary().
Result<std::vector<std::string>> ImportImage(
    const std::string& containerd_socket, const std::string& tar_path,
    const std::string& ctr_binary = "", std::chrono::seconds timeout = std::chrono::minutes(5));

// Imports tar_path unless CRI ImageStatus already knows `ref`; afterwards ref must be present.
// Returns true when it imported.
Result<bool> EnsurePauseImage(CriClient& cri, const std::string& containerd_socket,
                              const std::string& tar_path, const std::string& ref);

}  // namespace mk8s::runtime
