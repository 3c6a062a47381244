#include "kubelet/volumes/atomic_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <set>
#include <system_error>
#include <vector>

namespace mk8s::kubelet::volumes {
namespace {

namespace fs = std::filesystem;

constexpr const char* kDataLink = "..data";
constexpr const char* kDataTmpLink = "..data_tmp";

Status IoError(const std::string& what, const std::string& path, int err = errno) {
  return Status(Code::kInternal, what + " " + path + ": " + std::strerror(err));
}

std::string TopLevel(const std::string& path) { return path.substr(0, path.find('/')); }

// A file's content and permission bits, or nullopt if it cannot be read as a regular file.
std::optional<FileProjection> ReadFile(const std::string& path) {
  struct stat st {};
  if (lstat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return std::nullopt;
  FileProjection file;
  file.mode = st.st_mode & 07777;
  char buffer[8192];
  for (;;) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    file.data.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  return file;
}

std::optional<std::string> ReadLink(const std::string& path) {
  std::error_code ec;
  fs::path target = fs::read_symlink(path, ec);
  if (ec) return std::nullopt;
  return target.string();
}

// True if `generation` (a folder) holds exactly `payload` with the expected modes.
bool GenerationMatches(const std::string& generation, const Payload& payload,
                       std::optional<gid_t> fs_group) {
  size_t files = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(generation, ec), end; !ec && it != end;
       it.increment(ec)) {
    if (it->is_regular_file()) ++files;
  }
  if (ec || files != payload.size()) return false;
  for (const auto& [path, wanted] : payload) {
    auto have = ReadFile(generation + "/" + path);
    if (!have || have->data != wanted.data) return false;
    const uint32_t mode = fs_group ? (wanted.mode | 0040) : wanted.mode;
    if (have->mode != mode) return false;
  }
  return true;
}

bool UserVisibleLinksMatch(const std::string& dir, const Payload& payload) {
  for (const auto& [path, file] : payload) {
    const std::string name = TopLevel(path);
    auto target = ReadLink(dir + "/" + name);
    if (!target || *target != std::string(kDataLink) + "/" + name) return false;
  }
  return true;
}

// "..2026_11_27_05_40_01." (UTC), the prefix of a generation folder.
std::string GenerationPrefix() {
  const auto now = std::chrono::system_clock::now();
  const std::time_t t = std::chrono::system_clock::to_time_t(now);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char buffer[40];
  std::strftime(buffer, sizeof(buffer), "..%Y_%m_%d_%H_%M_%S.", &utc);
  return buffer;
}

Status MakeDirs(const std::string& dir, const std::string& below, std::optional<gid_t> fs_group) {
  // Creates `below`/... components of `dir` one by one so each gets 0755 whatever the umask.
  std::string path = below;
  const std::string rest = dir.substr(below.size());
  size_t pos = 0;
  while (pos < rest.size()) {
    size_t next = rest.find('/', pos + 1);
    if (next == std::string::npos) next = rest.size();
    path += rest.substr(pos, next - pos);
    pos = next;
    if (mkdir(path.c_str(), 0755) != 0) {
      if (errno != EEXIST) return IoError("cannot create", path);
      continue;
    }
    if (chmod(path.c_str(), 0755) != 0) return IoError("cannot chmod", path);
    if (fs_group && chown(path.c_str(), static_cast<uid_t>(-1), *fs_group) != 0) {
      return IoError("cannot chown", path);
    }
  }
  return Status::Ok();
}

Status WriteFile(const std::string& path, const FileProjection& file,
                 std::optional<gid_t> fs_group) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return IoError("cannot create", path);
  size_t written = 0;
  while (written < file.data.size()) {
    const ssize_t n = write(fd, file.data.data() + written, file.data.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      close(fd);
      return IoError("cannot write", path, err);
    }
    written += static_cast<size_t>(n);
  }
  const mode_t mode = static_cast<mode_t>(fs_group ? (file.mode | 0040) : file.mode) & 07777;
  if (fs_group && fchown(fd, static_cast<uid_t>(-1), *fs_group) != 0) {
    const int err = errno;
    close(fd);
    return IoError("cannot chown", path, err);
  }
  if (fchmod(fd, mode) != 0) {
    const int err = errno;
    close(fd);
    return IoError("cannot chmod", path, err);
  }
  if (close(fd) != 0) return IoError("cannot close", path);
  return Status::Ok();
}

bool IsGenerationName(const std::string& name) {
  // "..YYYY_..." : two dots then a digit.
  return name.size() > 3 && name[0] == '.' && name[1] == '.' && name[2] >= '0' && name[2] <= '9';
}

}  // namespace

Status ValidatePayloadPath(const std::string& path) {
  if (path.empty()) return Status(Code::kInvalidArgument, "invalid path \"\": must not be empty");
  if (path.size() > 4096) {
    return Status(Code::kInvalidArgument, "invalid path \"" + path + "\": longer than 4096 bytes");
  }
  if (path[0] == '/') {
    return Status(Code::kInvalidArgument, "invalid path \"" + path + "\": must be relative");
  }
  size_t start = 0;
  while (start <= path.size()) {
    size_t end = path.find('/', start);
    if (end == std::string::npos) end = path.size();
    const std::string element = path.substr(start, end - start);
    if (element.empty() || element == ".") {
      return Status(Code::kInvalidArgument,
                    "invalid path \"" + path + "\": must not contain empty or '.' elements");
    }
    if (element.rfind("..", 0) == 0) {
      return Status(Code::kInvalidArgument,
                    "invalid path \"" + path + "\": must not contain '..' or start with '..'");
    }
    if (element.size() > 255) {
      return Status(Code::kInvalidArgument,
                    "invalid path \"" + path + "\": an element is longer than 255 bytes");
    }
    start = end + 1;
  }
  return Status::Ok();
}

Result<bool> WriteAtomically(const std::string& dir, const Payload& payload,
                             std::optional<gid_t> fs_group) {
  for (const auto& [path, file] : payload) {
    if (Status valid = ValidatePayloadPath(path); !valid.ok()) return valid;
  }
  // A file and a folder of the same name ("a" and "a/b") cannot both exist.
  for (const auto& [path, file] : payload) {
    auto next = payload.lower_bound(path + "/");
    if (next != payload.end() && next->first.rfind(path + "/", 0) == 0) {
      return Status(Code::kInvalidArgument,
                    "invalid path \"" + path + "\": also a folder of \"" + next->first + "\"");
    }
  }
  if (dir.empty() || dir[0] != '/') {
    return Status(Code::kInvalidArgument, "target folder must be absolute: " + dir);
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status(Code::kInternal, "cannot create " + dir + ": " + ec.message());

  const std::string data_link = dir + "/" + kDataLink;
  const std::optional<std::string> old_generation = ReadLink(data_link);
  if (old_generation && GenerationMatches(dir + "/" + *old_generation, payload, fs_group) &&
      UserVisibleLinksMatch(dir, payload)) {
    return false;
  }

  // 1. The new generation.
  std::string pattern = dir + "/" + GenerationPrefix() + "XXXXXX";
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  if (mkdtemp(buffer.data()) == nullptr) return IoError("cannot create a folder in", dir);
  const std::string generation_path = buffer.data();
  const std::string generation = generation_path.substr(dir.size() + 1);
  auto abandon = [&](Status status) -> Result<bool> {
    std::error_code ignored;
    fs::remove_all(generation_path, ignored);
    return status;
  };
  if (chmod(generation_path.c_str(), 0755) != 0)
    return abandon(IoError("cannot chmod", generation_path));
  if (fs_group && chown(generation_path.c_str(), static_cast<uid_t>(-1), *fs_group) != 0) {
    return abandon(IoError("cannot chown", generation_path));
  }
  for (const auto& [path, file] : payload) {
    const size_t slash = path.rfind('/');
    if (slash != std::string::npos) {
      if (Status made =
              MakeDirs(generation_path + "/" + path.substr(0, slash), generation_path, fs_group);
          !made.ok()) {
        return abandon(made);
      }
    }
    if (Status written = WriteFile(generation_path + "/" + path, file, fs_group); !written.ok()) {
      return abandon(written);
    }
  }

  // 2. Swap ..data.
  const std::string tmp_link = dir + "/" + kDataTmpLink;
  unlink(tmp_link.c_str());
  if (symlink(generation.c_str(), tmp_link.c_str()) != 0) {
    return abandon(IoError("cannot create symlink", tmp_link));
  }
  if (rename(tmp_link.c_str(), data_link.c_str()) != 0) {
    const Status error = IoError("cannot rename to", data_link);
    unlink(tmp_link.c_str());
    return abandon(error);
  }

  // 3. User-visible names: new ones first, then drop the ones no longer in the payload.
  std::set<std::string> visible;
  for (const auto& [path, file] : payload) visible.insert(TopLevel(path));
  for (const std::string& name : visible) {
    const std::string link = dir + "/" + name;
    const std::string target = std::string(kDataLink) + "/" + name;
    auto current = ReadLink(link);
    if (current && *current == target) continue;
    struct stat st {};
    if (lstat(link.c_str(), &st) == 0) fs::remove_all(link, ec);  // not ours or stale: replace
    if (symlink(target.c_str(), link.c_str()) != 0) return IoError("cannot create symlink", link);
  }
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (name.rfind("..", 0) == 0 || visible.count(name) != 0) continue;
    auto target = ReadLink(it->path().string());
    if (target && target->rfind(std::string(kDataLink) + "/", 0) == 0) unlink(it->path().c_str());
  }

  // 4. Old generations (the previous one, and any left by an interrupted write).
  std::vector<fs::path> stale;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (IsGenerationName(name) && name != generation) stale.push_back(it->path());
  }
  for (const fs::path& path : stale) fs::remove_all(path, ec);
  return true;
}

}  // namespace mk8s::kubelet::volumes
