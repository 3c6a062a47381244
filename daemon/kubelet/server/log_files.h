// Where container logs live on disk (the node agents' shared contract):
//   <log root>/<namespace>_<pod name>_<pod uid>/<container name>/<restartCount>.log
// Lookups touch the file system; callers run them off the network threads. Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace mk8s::kubelet {

// The pod's log folder. With `uid`, exactly <ns>_<pod>_<uid>; without, the folder
// <ns>_<pod>_* with the newest modification time (a recreated pod has a new uid).
// kNotFound: `pod "<pod>" does not exist`.
Result<std::string> FindPodLogDir(const std::string& root, const std::string& ns,
                                  const std::string& pod, const std::optional<std::string>& uid);

// The restart counts that have a `<n>.log` file in `container_dir`, ascending.
std::vector<int> ListRestartCounts(const std::string& container_dir);

struct ContainerLog {
  std::string container_dir;
  std::string path;  // container_dir/<restart_count>.log
  int restart_count = 0;
};

// The log to read: the newest restartCount, or with `previous` the one before it.
// kNotFound when the container has no log; kInvalidArgument (upstream's message) when there is
// no previous one.
Result<ContainerLog> FindContainerLog(const std::string& pod_dir, const std::string& pod,
                                      const std::string& container, bool previous);

// The byte offset at which the last `lines` lines of the open file `fd` (of `size` bytes)
// begin; a final line without '\n' counts as a line. 0 when the file has fewer lines.
int64_t TailOffset(int fd, int64_t size, int64_t lines);

}  // namespace mk8s::kubelet
