#include "addonhost/persisted_state.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace mk8s::addonhost {
namespace {

using nlohmann::json;

Status WriteDurably(const std::string& path, const std::string& text) {
  const std::string temp = path + ".tmp";
  const int fd = open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status(Code::kInternal, "cannot write " + temp + ": " + std::strerror(errno));
  size_t done = 0;
  while (done < text.size()) {
    const ssize_t n = write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      close(fd);
      return Status(Code::kInternal, "cannot write " + temp + ": " + std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  const bool synced = fsync(fd) == 0;
  close(fd);
  if (!synced || rename(temp.c_str(), path.c_str()) != 0) {
    return Status(Code::kInternal, "cannot replace " + path + ": " + std::strerror(errno));
  }
  const std::string folder = std::filesystem::path(path).parent_path().string();
  if (const int dir = open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir >= 0) {
    fsync(dir);
    close(dir);
  }
  return Status::Ok();
}

}  // namespace

Result<PersistedState> LoadPersistedState(const std::string& path) {
  PersistedState state;
  std::ifstream file(path);
  if (!file) return state;
  std::stringstream text;
  text << file.rdbuf();
  const json doc = json::parse(text.str(), nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return Status(Code::kInternal, path +
                                       " is corrupt: fix or remove it (the enabled addons are "
                                       "listed in it), then start mk8sd again");
  }
  try {
    const auto section = [&doc](const char* key) {
      auto it = doc.find(key);
      return it != doc.end() && it->is_object() ? *it : json::object();
    };
    const json enabled = section("enabled"), crashes = section("crashes"),
               quarantined = section("quarantined");
    for (auto it = enabled.begin(); it != enabled.end(); ++it) {
      state.enabled[it.key()] = it->get<std::string>();
    }
    for (auto it = crashes.begin(); it != crashes.end(); ++it) {
      state.crashes[it.key()] = it->get<int>();
    }
    for (auto it = quarantined.begin(); it != quarantined.end(); ++it) {
      state.quarantined[it.key()] = it->get<std::string>();
    }
  } catch (const json::exception& e) {
    return Status(Code::kInternal, path + " is corrupt (" + e.what() + "): fix or remove it");
  }
  return state;
}

Status SavePersistedState(const std::string& path, const PersistedState& state) {
  json doc = {
      {"enabled", state.enabled}, {"crashes", state.crashes}, {"quarantined", state.quarantined}};
  return WriteDurably(path, doc.dump(2) + "\n");
}

std::optional<std::string> ReadStartMarker(const std::string& path) {
  std::ifstream file(path);
  if (!file) return std::nullopt;
  std::string name;
  std::getline(file, name);
  if (name.empty()) return std::nullopt;
  return name;
}

Status WriteStartMarker(const std::string& path, const std::string& addon) {
  return WriteDurably(path, addon + "\n");
}

void ClearStartMarker(const std::string& path) {
  if (unlink(path.c_str()) != 0) return;
  // Durably gone, or a later unrelated crash would be blamed on this addon.
  const std::string folder = std::filesystem::path(path).parent_path().string();
  if (const int dir = open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC); dir >= 0) {
    fsync(dir);
    close(dir);
  }
}

}  // namespace mk8s::addonhost
