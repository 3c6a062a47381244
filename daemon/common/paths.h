// Where things live in a state folder. Shared by mk8sd and the mk8s CLI so they always agree.
#pragma once

#include <string>

namespace mk8s {

// The state folder: $MK8S_STATE_DIR, else $SNAP_COMMON, else /var/lib/mk8s.
std::string DefaultStateDir();

struct StatePaths {
  explicit StatePaths(std::string state_dir);

  std::string state_dir;
  std::string socket;       // gRPC control socket (unix), mode 0660
  std::string pid_file;     // holds the daemon's pid; flock'ed while the daemon runs
  std::string log_dir;
  std::string log_file;
  std::string datastore_dir;
  std::string datastore_db;  // the SQLite store
  std::string credentials_dir;
  std::string kubeconfig;    // the admin kubeconfig (once the API server exists)
};

}  // namespace mk8s
