#include "runtime/images.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <sstream>

#include "runtime/containerd.h"
#include "runtime/cri_client.h"
#include "runtime/process_util.h"

#ifndef MK8S_VERSION_STRING
#error "MK8S_VERSION_STRING must be defined by the build"
#endif
#ifndef MK8S_PAUSE_IMAGE_BUILD_PATH
#error "MK8S_PAUSE_IMAGE_BUILD_PATH must be defined by the build"
#endif
#ifndef MK8S_PAUSE_IMAGE_INSTALL_PATH
#error "MK8S_PAUSE_IMAGE_INSTALL_PATH must be defined by the build"
#endif

namespace mk8s::runtime {
namespace {

namespace fs = std::filesystem;

bool IsFile(const std::string& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

std::string ExecutableDir() {
  std::error_code ec;
  const auto exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? "" : exe.parent_path().string();
}

}  // namespace

std::string PauseImageRef() { return std::string("localhost/mk8s/pause:") + MK8S_VERSION_STRING; }

Result<std::string> FindPauseImageTarball(const std::string& override_path) {
  if (!override_path.empty()) {
    if (IsFile(override_path)) return override_path;
    return Status(Code::kNotFound, "pause image " + override_path + " does not exist");
  }
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("MK8S_PAUSE_IMAGE"); env != nullptr && *env != '\0') {
    candidates.push_back(env);
  }
  if (const std::string dir = ExecutableDir(); !dir.empty()) {
    candidates.push_back(dir + "/../share/mk8s/images/pause.tar");
  }
  candidates.push_back(MK8S_PAUSE_IMAGE_BUILD_PATH);
  candidates.push_back(MK8S_PAUSE_IMAGE_INSTALL_PATH);
  for (const auto& path : candidates) {
    if (IsFile(path)) return fs::weakly_canonical(path).string();
  }
  std::string tried;
  for (const auto& path : candidates) tried += (tried.empty() ? "" : ", ") + path;
  return Status(Code::kNotFound, "the pause image tarball was not found (tried " + tried +
                                     "): reinstall mk8s or set MK8S_PAUSE_IMAGE");
}

Result<std::vector<std::string>> ImportImage(const std::string& containerd_socket,
                                             const std::string& tar_path,
                                             const std::string& ctr_binary,
                                             std::chrono::seconds timeout) {
  if (!IsFile(tar_path)) {
    return Status(Code::kNotFound, "image tarball " + tar_path + " does not exist");
  }
  const std::string ctr = ctr_binary.empty() ? DefaultCtrBinary() : ctr_binary;
  // --all-platforms is not needed: our tarballs carry one platform.
  auto out = RunCommand(
      {ctr, "-a", containerd_socket, "-n", "k8s.io", "images", "import", tar_path}, timeout);
  if (!out.ok()) {
    return Status(out.status().code(),
                  "image import of " + tar_path + ": " + out.status().message());
  }
  if (out->exit_code != 0) {
    std::string text = out->output;
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return Status(Code::kInvalidArgument, "image import of " + tar_path + " failed (ctr exit " +
                                              std::to_string(out->exit_code) + "): " + text);
  }
  // ctr prints "unpacking <name> (sha256:...)...done" per image.
  std::vector<std::string> names;
  std::istringstream lines(out->output);
  std::string line;
  while (std::getline(lines, line)) {
    const std::string prefix = "unpacking ";
    if (line.rfind(prefix, 0) != 0) continue;
    const auto end = line.find(' ', prefix.size());
    names.push_back(line.substr(
        prefix.size(), end == std::string::npos ? std::string::npos : end - prefix.size()));
  }
  return names;
}

Result<bool> EnsurePauseImage(CriClient& cri, const std::string& containerd_socket,
                              const std::string& tar_path, const std::string& ref) {
  auto status = cri.ImageStatus(ref);
  if (!status.ok()) return status.status();
  if (status->has_value()) return false;
  auto imported = ImportImage(containerd_socket, tar_path);
  if (!imported.ok()) return imported.status();
  status = cri.ImageStatus(ref);
  if (!status.ok()) return status.status();
  if (!status->has_value()) {
    return Status(Code::kNotFound, "pause image " + tar_path + " was imported but " + ref +
                                       " is not known to containerd afterwards: is it the "
                                       "right tarball?");
  }
  return true;
}

}  // namespace mk8s::runtime
