#include "common/paths.h"

#include <cstdlib>
#include <utility>

namespace mk8s {

std::string DefaultStateDir() {
  if (const char* dir = std::getenv("MK8S_STATE_DIR"); dir != nullptr && *dir != '\0') return dir;
  if (const char* snap = std::getenv("SNAP_COMMON"); snap != nullptr && *snap != '\0') return snap;
  return "/var/lib/mk8s";
}

StatePaths::StatePaths(std::string dir) : state_dir(std::move(dir)) {
  while (state_dir.size() > 1 && state_dir.back() == '/') state_dir.pop_back();
  socket = state_dir + "/mk8sd.sock";
  pid_file = state_dir + "/mk8sd.pid";
  log_dir = state_dir + "/logs";
  log_file = log_dir + "/mk8sd.log";
  datastore_dir = state_dir + "/datastore";
  datastore_db = datastore_dir + "/store.db";
  credentials_dir = state_dir + "/credentials";
  kubeconfig = credentials_dir + "/client.config";
}

}  // namespace mk8s
