// The mk8s commands. app.cc parses the command line into these option structs and calls one
// function; each returns the process exit code (see format.h) and prints its own output and
// errors. No CLI11 or gRPC types here.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mk8s::cli {

struct GlobalOptions {
  std::string state_dir;  // the daemon's state folder
};

// commands_lifecycle.cc
struct StartOptions {
  bool wait_ready = false;
  int timeout_seconds = 120;
};
struct StopOptions {
  int timeout_seconds = 60;
};
struct StatusOptions {
  bool wait_ready = false;
  int timeout_seconds = 60;
  std::string format = "pretty";  // pretty | short | yaml
  std::string addon;              // non-empty: print only "enabled"/"disabled" for this addon
};
struct ResetOptions {
  bool yes = false;
};
int RunStart(const GlobalOptions& global, const StartOptions& options);
int RunStop(const GlobalOptions& global, const StopOptions& options);
int RunStatus(const GlobalOptions& global, const StatusOptions& options);
int RunReset(const GlobalOptions& global, const ResetOptions& options);

// commands_data.cc (`mk8s dbctl ...`)
int RunDbBackup(const GlobalOptions& global, const std::string& file);
int RunDbRestore(const GlobalOptions& global, const std::string& file);
int RunDbGet(const GlobalOptions& global, const std::string& key);
struct DbPutOptions {
  std::string key;
  std::string value;
  int64_t expect_revision = 0;  // >0: compare-and-swap on the key's mod revision
  bool create_only = false;
};
int RunDbPut(const GlobalOptions& global, const DbPutOptions& options);
int RunDbDelete(const GlobalOptions& global, const std::string& key);
struct DbListOptions {
  std::string prefix;
  int64_t limit = 0;  // 0 = no limit
  bool long_format = false;
};
int RunDbList(const GlobalOptions& global, const DbListOptions& options);
struct DbWatchOptions {
  std::string prefix;
  int64_t after_revision = 0;
};
int RunDbWatch(const GlobalOptions& global, const DbWatchOptions& options);

// commands_addons.cc
// `mk8s enable NAME[:ARGS]...`: validates every item first (nothing changes on a wrong name or
// argument), enables missing dependencies before their dependents, and prints progress.
int RunEnable(const GlobalOptions& global, const std::vector<std::string>& items);
// `mk8s disable NAME...`
int RunDisable(const GlobalOptions& global, const std::vector<std::string>& names);
// `mk8s addons list`: every addon with its state, version, description and arguments.
int RunAddonsList(const GlobalOptions& global);

// commands_images.cc
// `mk8s images import FILE...`: loads OCI / docker-save tarballs into the node's containerd.
int RunImagesImport(const GlobalOptions& global, const std::vector<std::string>& files);
// `mk8s images ls`: IMAGE, ID, SIZE of every image containerd has (untagged ones by digest).
int RunImagesList(const GlobalOptions& global);

// commands_tools.cc
int RunVersion(const GlobalOptions& global);
int RunConfig(const GlobalOptions& global);
// Execs kubectl with the state folder's kubeconfig; returns only on failure.
int RunKubectl(const GlobalOptions& global, const std::vector<std::string>& args);
struct InspectOptions {
  std::string output;  // empty: ./mk8s-inspect-<timestamp>.tar.gz
};
int RunInspect(const GlobalOptions& global, const InspectOptions& options);

}  // namespace mk8s::cli
