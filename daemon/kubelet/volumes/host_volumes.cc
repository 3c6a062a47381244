#include "kubelet/volumes/host_volumes.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "common/quantity.h"

namespace mk8s::kubelet::volumes {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

Status TypeError(const std::string& path, const std::string& what) {
  return Status(Code::kInvalidArgument, "hostPath type check failed: " + path + " is not " + what);
}

// Undoes mountinfo's octal escapes (\040 for a space, \011, \012, \134).
std::string Unescape(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1]))) {
      out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 3), nullptr, 8)));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string Canonical(const std::string& path) {
  std::error_code ec;
  fs::path canonical = fs::weakly_canonical(path, ec);
  return ec ? path : canonical.string();
}

}  // namespace

Status CheckHostPath(const std::string& path, const std::string& type) {
  if (path.empty() || path[0] != '/') {
    return Status(Code::kInvalidArgument, "hostPath " + path + " must be an absolute path");
  }
  struct stat st {};
  const bool exists = stat(path.c_str(), &st) == 0;
  if (type.empty()) return Status::Ok();
  if (type == "DirectoryOrCreate") {
    if (!exists) {
      std::error_code ec;
      fs::create_directories(path, ec);
      if (ec)
        return Status(Code::kInternal, "cannot create hostPath " + path + ": " + ec.message());
      chmod(path.c_str(), 0755);
      return Status::Ok();
    }
    return S_ISDIR(st.st_mode) ? Status::Ok() : TypeError(path, "a directory");
  }
  if (type == "FileOrCreate") {
    if (!exists) {
      const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (fd < 0) {
        return Status(errno == ENOENT ? Code::kNotFound : Code::kInternal,
                      "cannot create hostPath file " + path + ": " + std::strerror(errno));
      }
      fchmod(fd, 0644);
      close(fd);
      return Status::Ok();
    }
    return S_ISREG(st.st_mode) ? Status::Ok() : TypeError(path, "a file");
  }
  struct Check {
    const char* type;
    bool (*ok)(mode_t);
    const char* what;
  };
  static const Check kChecks[] = {
      {"Directory", [](mode_t m) { return S_ISDIR(m) != 0; }, "a directory"},
      {"File", [](mode_t m) { return S_ISREG(m) != 0; }, "a file"},
      {"Socket", [](mode_t m) { return S_ISSOCK(m) != 0; }, "a socket file"},
      {"CharDevice", [](mode_t m) { return S_ISCHR(m) != 0; }, "a character device"},
      {"BlockDevice", [](mode_t m) { return S_ISBLK(m) != 0; }, "a block device"},
  };
  for (const Check& check : kChecks) {
    if (type != check.type) continue;
    if (!exists) {
      return Status(Code::kNotFound, "hostPath type check failed: " + path + " does not exist");
    }
    return check.ok(st.st_mode) ? Status::Ok() : TypeError(path, check.what);
  }
  return Status(Code::kInvalidArgument,
                "hostPath type \"" + type +
                    "\" is not supported (DirectoryOrCreate, Directory, FileOrCreate, File, "
                    "Socket, CharDevice, BlockDevice)");
}

Status SetUpEmptyDir(const std::string& dir, const json& empty_dir, std::optional<gid_t> fs_group) {
  const std::string medium = empty_dir.is_object() ? empty_dir.value("medium", "") : "";
  if (!medium.empty() && medium != "Memory") {
    return Status(Code::kInvalidArgument, "emptyDir medium \"" + medium + "\" is not supported");
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status(Code::kInternal, "cannot create " + dir + ": " + ec.message());
  if (medium == "Memory") {
    std::string options = "mode=0777";
    if (empty_dir.contains("sizeLimit") && !empty_dir["sizeLimit"].is_null()) {
      const int64_t size = JsonQuantityValue(empty_dir["sizeLimit"]);
      if (size > 0) options += ",size=" + std::to_string(size);
    }
    if (Status mounted = EnsureTmpfs(dir, options); !mounted.ok()) return mounted;
  }
  mode_t mode = 0777;
  if (fs_group) {
    if (chown(dir.c_str(), static_cast<uid_t>(-1), *fs_group) != 0) {
      return Status(Code::kInternal, "cannot chown " + dir + ": " + std::strerror(errno));
    }
    mode |= S_ISGID;
  }
  if (chmod(dir.c_str(), mode) != 0) {
    return Status(Code::kInternal, "cannot chmod " + dir + ": " + std::strerror(errno));
  }
  return Status::Ok();
}

Status EnsureTmpfs(const std::string& dir, const std::string& options) {
  static std::atomic<bool> warned{false};
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status(Code::kInternal, "cannot create " + dir + ": " + ec.message());
  if (IsMountPoint(dir)) return Status::Ok();
  if (mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) == 0) {
    return Status::Ok();
  }
  if (errno != EPERM) {
    return Status(Code::kInternal, "cannot mount a tmpfs on " + dir + ": " + std::strerror(errno));
  }
  if (!warned.exchange(true)) {
    spdlog::warn(
        "mounting a tmpfs is not permitted (no CAP_SYS_ADMIN): memory-backed volumes "
        "(emptyDir medium Memory, secret, projected) are plain folders, e.g. {}",
        dir);
  }
  return Status::Ok();
}

std::vector<std::string> MountsUnder(const std::string& root) {
  const std::string base = Canonical(root);
  std::vector<std::string> out;
  std::ifstream mountinfo("/proc/self/mountinfo");
  std::string line;
  while (std::getline(mountinfo, line)) {
    // id parent major:minor root mount_point options ...
    std::istringstream fields(line);
    std::string id, parent, device, mount_root, mount_point;
    if (!(fields >> id >> parent >> device >> mount_root >> mount_point)) continue;
    mount_point = Unescape(mount_point);
    if (mount_point == base || mount_point.rfind(base + "/", 0) == 0) out.push_back(mount_point);
  }
  std::sort(out.begin(), out.end(), [](const std::string& a, const std::string& b) {
    return a.size() != b.size() ? a.size() > b.size() : a > b;
  });
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

bool IsMountPoint(const std::string& path) {
  const std::string canonical = Canonical(path);
  for (const std::string& mount_point : MountsUnder(path)) {
    if (mount_point == canonical) return true;
  }
  return false;
}

Status UnmountAllUnder(const std::string& root) {
  // A path may carry stacked mounts; repeat while something is left (bounded).
  for (int round = 0; round < 8; ++round) {
    const std::vector<std::string> mounts = MountsUnder(root);
    if (mounts.empty()) return Status::Ok();
    for (const std::string& mount_point : mounts) {
      if (umount2(mount_point.c_str(), 0) != 0 && errno != EINVAL && errno != ENOENT) {
        if (umount2(mount_point.c_str(), MNT_DETACH) != 0 && errno != EINVAL && errno != ENOENT) {
          return Status(Code::kInternal,
                        "cannot unmount " + mount_point + ": " + std::strerror(errno));
        }
      }
    }
  }
  const std::vector<std::string> left = MountsUnder(root);
  if (left.empty()) return Status::Ok();
  return Status(Code::kInternal, "mounts remain under " + root + " (" + left.front() + ")");
}

}  // namespace mk8s::kubelet::volumes
