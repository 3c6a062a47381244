#include "kubelet/server/log_files.h"

#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <filesystem>

namespace mk8s::kubelet {
namespace fs = std::filesystem;

Result<std::string> FindPodLogDir(const std::string& root, const std::string& ns,
                                  const std::string& pod, const std::optional<std::string>& uid) {
  const Status not_found(Code::kNotFound, "pod \"" + pod + "\" does not exist");
  std::error_code error;
  if (uid && !uid->empty()) {
    std::string dir = root + "/" + ns + "_" + pod + "_" + *uid;
    if (fs::is_directory(dir, error)) return dir;
    return not_found;
  }
  // Namespaces and pod names are DNS labels/subdomains (no '_'), so the prefix is unambiguous.
  const std::string prefix = ns + "_" + pod + "_";
  std::string best;
  fs::file_time_type best_time{};
  for (fs::directory_iterator it(root, error), end; !error && it != end; it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    std::error_code ignored;
    if (!it->is_directory(ignored)) continue;
    const fs::file_time_type time = it->last_write_time(ignored);
    if (best.empty() || time > best_time) {
      best = it->path().string();
      best_time = time;
    }
  }
  if (best.empty()) return not_found;
  return best;
}

std::vector<int> ListRestartCounts(const std::string& container_dir) {
  std::vector<int> counts;
  std::error_code error;
  for (fs::directory_iterator it(container_dir, error), end; !error && it != end;
       it.increment(error)) {
    const std::string name = it->path().filename().string();
    if (name.size() < 5 || name.compare(name.size() - 4, 4, ".log") != 0) continue;
    int count = 0;
    auto [ptr, ec] = std::from_chars(name.data(), name.data() + name.size() - 4, count);
    if (ec != std::errc() || ptr != name.data() + name.size() - 4 || count < 0) continue;
    counts.push_back(count);
  }
  std::sort(counts.begin(), counts.end());
  return counts;
}

Result<ContainerLog> FindContainerLog(const std::string& pod_dir, const std::string& pod,
                                      const std::string& container, bool previous) {
  ContainerLog log;
  log.container_dir = pod_dir + "/" + container;
  const std::vector<int> counts = ListRestartCounts(log.container_dir);
  if (counts.empty()) {
    return Status(Code::kNotFound,
                  "container \"" + container + "\" not found in pod \"" + pod + "\"");
  }
  if (previous) {
    if (counts.size() < 2) {
      return Status(Code::kInvalidArgument, "previous terminated container \"" + container +
                                                "\" in pod \"" + pod + "\" not found");
    }
    log.restart_count = counts[counts.size() - 2];
  } else {
    log.restart_count = counts.back();
  }
  log.path = log.container_dir + "/" + std::to_string(log.restart_count) + ".log";
  return log;
}

int64_t TailOffset(int fd, int64_t size, int64_t lines) {
  if (lines <= 0) return size;
  constexpr int64_t kBlock = 64 * 1024;
  char buffer[kBlock];
  int64_t newlines = 0;
  int64_t end = size;
  // A trailing '\n' ends the last line; it does not start another one.
  bool skip_last = false;
  if (size > 0) {
    char last = 0;
    skip_last = ::pread(fd, &last, 1, size - 1) == 1 && last == '\n';
  }
  while (end > 0) {
    const int64_t start = std::max<int64_t>(0, end - kBlock);
    const ssize_t got = ::pread(fd, buffer, static_cast<size_t>(end - start), start);
    if (got <= 0) return 0;
    for (int64_t i = got - 1; i >= 0; --i) {
      if (buffer[i] != '\n') continue;
      if (skip_last && start + i == size - 1) continue;
      if (++newlines == lines) return start + i + 1;
    }
    end = start;
  }
  return 0;
}

}  // namespace mk8s::kubelet
