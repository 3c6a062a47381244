// mk8s images import / ls: the node's container images, through the daemon's containerd.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <vector>

#include "cli/commands.h"
#include "cli/daemon_client.h"
#include "cli/format.h"

namespace mk8s::cli {
namespace {

namespace fs = std::filesystem;

std::string HumanBytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024 && unit < 4) {
    value /= 1024;
    ++unit;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), unit == 0 ? "%.0f %s" : "%.1f %s", value, units[unit]);
  return buf;
}

// "sha256:0123456789abcdef..." -> "0123456789ab"
std::string ShortId(const std::string& id) {
  const auto colon = id.find(':');
  return id.substr(colon == std::string::npos ? 0 : colon + 1, 12);
}

}  // namespace

int RunImagesImport(const GlobalOptions& global, const std::vector<std::string>& files) {
  DaemonClient client(global.state_dir);
  for (const std::string& file : files) {
    std::error_code error;
    const std::string path = fs::absolute(file, error).lexically_normal().string();
    if (error || !fs::is_regular_file(path, error)) {
      return PrintError(file + " is not a file: pass an image tarball ('docker save' or OCI)");
    }
    v1::ImportImageResponse response;
    if (const CallStatus call = client.ImportImage(path, &response); !call.ok()) {
      return PrintError(call.message);
    }
    if (response.images().empty()) {
      std::cout << "Imported " << path << " (no named images in it)\n";
    }
    for (const std::string& name : response.images()) {
      std::cout << "Imported " << name << " from " << path << '\n';
    }
  }
  return kExitOk;
}

int RunImagesList(const GlobalOptions& global) {
  DaemonClient client(global.state_dir);
  v1::ListImagesResponse response;
  if (const CallStatus call = client.ListImages(&response); !call.ok()) {
    return PrintError(call.message);
  }
  struct Row {
    std::string image, id, size;
  };
  std::vector<Row> rows;
  for (const v1::ImageInfo& image : response.images()) {
    std::vector<std::string> names(image.repo_tags().begin(), image.repo_tags().end());
    if (names.empty()) {
      names.assign(image.repo_digests().begin(), image.repo_digests().end());
    }
    if (names.empty()) names.push_back("<none>");
    for (const std::string& name : names) {
      rows.push_back({name, ShortId(image.id()), HumanBytes(image.size_bytes())});
    }
  }
  std::sort(rows.begin(), rows.end(), [](const Row& a, const Row& b) { return a.image < b.image; });
  size_t width = 5;
  for (const Row& row : rows) width = std::max(width, row.image.size());
  std::printf("%-*s  %-12s  %s\n", static_cast<int>(width), "IMAGE", "ID", "SIZE");
  for (const Row& row : rows) {
    std::printf("%-*s  %-12s  %s\n", static_cast<int>(width), row.image.c_str(), row.id.c_str(),
                row.size.c_str());
  }
  return kExitOk;
}

}  // namespace mk8s::cli
