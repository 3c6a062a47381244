// VolumeManager: the kubelet's pod volumes on the host, and the bind mounts a container gets.
//
// Layout (shared contract): <pods_root>/<pod uid>/volumes/<plugin>/<volume name>, with the
// upstream plugin folder names: kubernetes.io~empty-dir, kubernetes.io~configmap,
// kubernetes.io~secret, kubernetes.io~projected, kubernetes.io~downward-api. hostPath volumes
// have no folder: their mounts point at the host path itself.
//
// Supported volume types: emptyDir (medium "" = a plain folder; medium "Memory" = a tmpfs mount
// sized by sizeLimit, or a plain folder with a logged warning when mounting is not permitted),
// hostPath (type checks), configMap, secret, downwardAPI, projected (serviceAccountToken,
// configMap, secret, downwardAPI). Any other type fails SetUpPod with a clear message.
//
// configMap/secret/downwardAPI/projected folders are written by the atomic writer
// (atomic_writer.h): a container sees either the old or the new content, never a mix. secret and
// projected folders are tmpfs mounts, as upstream, so secrets and tokens never reach the disk
// (plain folders, with one warning, where the process may not mount).
//
// Threads: SetUpPod/MountsFor/TearDownPod may run concurrently for DIFFERENT pods; calls for the
// same pod must be serialized by the caller (the kubelet's per-pod worker does). The token cache
// is guarded by an internal mutex. The blocking client calls must not run on a transport thread.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "client/client.h"
#include "common/status.h"

namespace mk8s::kubelet {

// One bind mount for CRI's Mount message.
struct Mount {
  std::string container_path;
  std::string host_path;  // absolute, under the pod folder (or the hostPath)
  bool read_only = false;
  std::string propagation;  // "" (private), "HostToContainer", "Bidirectional"
};

namespace volumes {
class TokenCache;
}

class VolumeManager {
 public:
  using WallClock = std::function<std::chrono::system_clock::time_point()>;

  // pods_root: <state>/kubelet/pods (created on demand). client: the kubelet's API client
  // (identity system:node:<node>), used for ConfigMaps, Secrets and TokenRequests.
  VolumeManager(std::shared_ptr<client::Client> client, std::string pods_root);
  ~VolumeManager();
  VolumeManager(const VolumeManager&) = delete;
  VolumeManager& operator=(const VolumeManager&) = delete;

  // Creates or refreshes every volume of the pod (see the header comment). Idempotent: call it
  // on every pod sync; unchanged content is not rewritten, changed ConfigMaps/Secrets are swapped
  // in atomically, service account tokens are re-requested after 80% of their lifetime (or 24 h).
  // All volumes are attempted; the first failure is returned, naming the volume and the cause:
  //   volume "cfg": configmap "app-config" not found
  // Codes: kNotFound (a non-optional source or key is missing, a hostPath does not exist),
  // kInvalidArgument (a bad spec: relative hostPath, wrong hostPath type, unsafe item path,
  // unsupported volume type), kUnavailable (the API server failed), kInternal (I/O).
  Status SetUpPod(const nlohmann::json& pod);

  // The mounts for one container (its volumeMounts), resolved to host paths, in volumeMounts
  // order. subPath is resolved inside the volume (symlinks followed, escaping the volume is an
  // error); a missing subPath is created as a folder in emptyDir/hostPath volumes and is an error
  // in the others. As upstream, a subPath into a configMap/secret/projected volume pins the file
  // of the current generation: the container does not see later updates.
  // configMap/secret/downwardAPI/projected mounts are always read-only (as upstream). Bidirectional
  // propagation needs a privileged container. Errors (kInvalidArgument) name the container and the
  // mount, e.g. a volumeMount naming an unknown volume.
  Result<std::vector<Mount>> MountsFor(const nlohmann::json& pod,
                                       const nlohmann::json& container) const;

  // Unmounts every mount under <pods_root>/<uid> (tmpfs emptyDirs, leftovers), then removes the
  // folder and forgets the pod's tokens. Refuses to remove anything while a mount remains (it
  // would delete through it). Safe to call twice and for unknown pods.
  Status TearDownPod(const std::string& pod_uid);

  // <pods_root>/<uid>/volumes/<plugin>/<name> for a volume of the pod; "" for hostPath (whose
  // path is its own) and unsupported types.
  std::string VolumePath(const std::string& pod_uid, const nlohmann::json& volume) const;
  const std::string& pods_root() const { return pods_root_; }

  // Node allocatable ({"cpu": "2", "memory": "4Gi", ...}) for downwardAPI resourceFieldRef
  // limits of containers without limits. Unset: the host's CPUs and memory. Call before use.
  void SetNodeAllocatable(const nlohmann::json& allocatable);
  // Test seam: the wall clock used for token refresh decisions (default system_clock::now).
  void SetClockForTest(WallClock clock);

 private:
  Status SetUpVolume(const nlohmann::json& pod, const nlohmann::json& volume);

  std::shared_ptr<client::Client> client_;
  const std::string pods_root_;
  std::unique_ptr<volumes::TokenCache> tokens_;
  std::unique_ptr<nlohmann::json> node_allocatable_;  // null: host values
  WallClock clock_;
};

}  // namespace mk8s::kubelet
