// Volumes backed by the host directly: hostPath (type checks, *OrCreate) and emptyDir (a folder,
// or a tmpfs mount for medium Memory), plus the mount-table helpers TearDownPod needs.
//
// Thread-safe (no state); they touch the host's file system and mount table.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "common/status.h"

namespace mk8s::kubelet::volumes {

// Checks (and for DirectoryOrCreate / FileOrCreate, creates) a hostPath volume's path. `type`:
// "" (no check), DirectoryOrCreate (mkdir -p, 0755), Directory, FileOrCreate (an empty 0644
// file; the parent must exist), File, Socket, CharDevice, BlockDevice. Errors, as upstream:
//   hostPath type check failed: /x is not a directory
// kNotFound when the path is missing, kInvalidArgument for a wrong type or a relative path.
Status CheckHostPath(const std::string& path, const std::string& type);

// emptyDir at `dir` (created, mode 0777 as upstream; with fs_group: group-owned, setgid).
// medium "Memory": a tmpfs is mounted there (size=sizeLimit when given), see EnsureTmpfs. medium
// "HugePages*" is not supported (kInvalidArgument).
Status SetUpEmptyDir(const std::string& dir, const nlohmann::json& empty_dir,
                     std::optional<gid_t> fs_group);

// Makes `dir` (created if needed) a tmpfs mount with mount(2) `options` ("mode=0755,size=N")
// unless it already is a mount point. Where mounting is not permitted (EPERM) it stays a plain
// folder: OK, with one warning per process.
Status EnsureTmpfs(const std::string& dir, const std::string& options);

// The mount points at or below `root` (from /proc/self/mountinfo), deepest first.
std::vector<std::string> MountsUnder(const std::string& root);
bool IsMountPoint(const std::string& path);
// Unmounts everything at or below `root` (lazy detach as a fallback). Fails if a mount remains.
Status UnmountAllUnder(const std::string& root);

}  // namespace mk8s::kubelet::volumes
