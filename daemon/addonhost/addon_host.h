// AddonHost: mk8sd's addon platform. It discovers addon libraries in the addon folders, loads
// each one through LoadedAddon (version check first; broken ones are refused with a message and
// listed as such), enables and disables them for the control service, persists what is enabled
// (with arguments) in the state folder, and brings enabled addons back at daemon start.
//
// Crash-loop guard: at daemon start, before an enabled addon's mk8s_on_enable/mk8s_on_start, the
// host durably writes its name to <state>/addon-state/starting and removes it after. A marker
// found at the next start means the daemon died while starting that addon. Two such deaths in a
// row and the addon is left disabled, with a note shown by `mk8s status`, until the user enables
// it again. (A crash inside an addon takes the daemon down; this keeps it from doing so forever.)
//
// Threads: every public method is thread-safe. Enable/Disable/Shutdown (and rescans) are
// serialized by ops_mu_; List never waits behind a long enable, and asks only idle, running
// addons for their health.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "addonhost/host_context.h"
#include "addonhost/loaded_addon.h"
#include "addonhost/manifest.h"
#include "addonhost/persisted_state.h"
#include "common/status.h"

namespace mk8s::addonhost {

class HttpRoutes;  // addonhost/http_routes.h

struct AddonHostOptions {
  // Folders searched for *.so, in order; on a name clash the earlier folder wins.
  std::vector<std::string> addon_dirs;
  std::string state_dir;  // the daemon's state folder
  HostSettings settings;
  ClientFactory make_client;                       // may be empty (no API: unit tests)
  std::chrono::milliseconds call_timeout{60000};   // enable, disable, start, stop, init
  std::chrono::milliseconds status_timeout{5000};  // mk8s_on_status
  bool is_root = false;                            // whether mk8sd runs as root (needs_root addons)
  // Where the addons' HTTP routes go (served by the API server); nullptr: the daemon runs no
  // API server and mk8s_host_serve_http answers MK8S_ERR_UNAVAILABLE.
  std::shared_ptr<HttpRoutes> http_routes;
};

// The default folders: extra ones first, then <state>/addons, the folder next to the binary
// (<exe>/../<libdir>/mk8s/addons: the build tree's in-tree addons, or an installed tree), and the
// configured install folder.
std::vector<std::string> DefaultAddonDirs(const std::string& state_dir,
                                          const std::vector<std::string>& extra);

struct AddonInfo {
  std::string name;
  std::string version;
  std::string description;
  std::string repository = "core";
  std::string path;      // the library
  bool enabled = false;  // what the user asked for (persisted)
  // "enabled" (running), "disabled", "failed" (enabled but not running, or faulted),
  // "refused" (the library cannot be used).
  std::string state = "disabled";
  bool healthy = false;
  std::string message;  // health detail, failure, refusal, or the crash-loop guard's note
  std::string args;     // raw arguments it is enabled with
  std::vector<ArgSpec> arg_specs;
  std::vector<std::string> depends_on;
  bool needs_root = false;
};

struct AddonOutcome {
  bool changed = false;  // false: it already was in the asked state (idempotent no-op)
  std::string message;   // for the user: "Addon dns is enabled"
};

class AddonHost {
 public:
  // Scans, loads, and restores the enabled addons (with the crash-loop guard). Fails only when
  // the state folder cannot be used; broken addons never fail it.
  static Result<std::unique_ptr<AddonHost>> Start(AddonHostOptions options);
  ~AddonHost();  // Shutdown()

  // Every known addon, sorted by name. `with_health` asks running addons (status_timeout each).
  std::vector<AddonInfo> List(bool with_health);
  // Validates (name, arguments, root, dependencies) before changing anything. `dry_run` stops
  // after validation (dependencies are not required then: the CLI enables them first).
  // Errors: kNotFound (unknown addon), kInvalidArgument (arguments), kConflict (a state that
  // forbids it: not root, a dependency not enabled, a refused library), others from the addon.
  Result<AddonOutcome> Enable(const std::string& name, const std::string& args, bool dry_run);
  // kConflict when an enabled addon depends on it.
  Result<AddonOutcome> Disable(const std::string& name);
  // Stops running addons (dependents first) and unloads everything. Idempotent.
  void Shutdown();

 private:
  struct Entry {
    std::unique_ptr<LoadedAddon> addon;  // null when refused or missing
    std::string path;
    std::string refused;  // why the library was refused
    bool running = false;
    bool busy = false;    // an operation is calling into it (no health calls meanwhile)
    std::string failure;  // why an enabled addon is not running
  };

  explicit AddonHost(AddonHostOptions options);
  Status Init();
  void Rescan();  // requires ops_mu_
  // enable(args) -> start; on a start failure, undoes enable. Requires ops_mu_.
  Status BringUp(const std::string& name, const ValidatedArgs& args);
  // Dependencies first, among `names`.
  std::vector<std::string> DependencyOrder(const std::vector<std::string>& names);
  Status Save();  // requires mu_
  void SetBusy(const std::string& name, bool busy);
  std::vector<std::string> EnabledDependents(const std::string& name);  // requires mu_

  const AddonHostOptions options_;
  const std::string data_root_;    // <state>/addon-state
  const std::string state_file_;   // <data_root>/addons.json
  const std::string marker_file_;  // <data_root>/starting
  LoadOptions load_options_;

  std::mutex ops_mu_;  // serializes operations; taken before mu_
  std::mutex mu_;
  std::map<std::string, Entry> entries_;  // GUARDED_BY(mu_); by name; never erased before Shutdown
  std::map<std::string, bool> seen_files_;  // GUARDED_BY(ops_mu_): library paths already looked at
  PersistedState persisted_;                // GUARDED_BY(mu_)
  bool shut_down_ = false;                  // GUARDED_BY(ops_mu_)
};

}  // namespace mk8s::addonhost
