// Atomic updates of a projected folder (configMap, secret, downwardAPI, projected volumes), the
// same on-disk protocol as the upstream kubelet's AtomicWriter, so readers never see a mix of
// old and new files:
//
//   <dir>/..2026_11_27_05_40_01.XXXXXX/   the payload (folders 0755, files with their mode)
//   <dir>/..data -> ..2026_11_27_05_40_01.XXXXXX   swapped with rename() (atomic)
//   <dir>/<name> -> ..data/<name>          one symlink per top-level payload entry
//
// An update writes a new timestamped folder, points `..data_tmp` at it, renames it over `..data`,
// adds the new top-level symlinks, removes the symlinks of entries that are gone, then the old
// folder. A reader following <dir>/<name> resolves `..data` once, so it reads one generation.
//
// Not thread-safe per folder: one writer at a time (the kubelet serializes a pod's syncs).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <optional>
#include <string>

#include "common/status.h"

namespace mk8s::kubelet::volumes {

struct FileProjection {
  std::string data;
  uint32_t mode = 0644;  // permission bits (07777 mask)
  bool operator==(const FileProjection&) const = default;
};

// Relative file path ("a", "dir/b") -> content.
using Payload = std::map<std::string, FileProjection>;

// Rejects absolute paths, empty paths or elements, "..", elements starting with "..", and
// paths longer than 4096 bytes. The message names the offending path.
Status ValidatePayloadPath(const std::string& path);

// Makes `dir` hold exactly `payload` (creating `dir`, mode 0755, if needed). Returns true if
// something was written, false if the current generation already matched (content, modes and
// symlinks). `fs_group`: files and folders are chowned to this group and files get g+r.
Result<bool> WriteAtomically(const std::string& dir, const Payload& payload,
                             std::optional<gid_t> fs_group = std::nullopt);

}  // namespace mk8s::kubelet::volumes
