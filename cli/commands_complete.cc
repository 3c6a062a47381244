// `mk8s __complete ...`: the live part of shell completion (see completion.h). Fast and silent:
// the daemon gets a short deadline (an absent socket fails at once), and every failure prints
// nothing rather than an error in the middle of the user's command line.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <set>

#include "cli/commands.h"
#include "cli/completion.h"
#include "cli/daemon_client.h"
#include "cli/format.h"
#include "cli/os.h"
#include "common/paths.h"

namespace mk8s::cli {
namespace {

namespace fs = std::filesystem;

constexpr std::chrono::milliseconds kCompletionDeadline{1000};

// The daemon's addons, or nullopt when it does not answer in time.
std::optional<v1::ListAddonsResponse> DaemonAddons(const std::string& state_dir) {
  DaemonClient client(state_dir);
  client.set_deadline(kCompletionDeadline);
  v1::ListAddonsResponse list;
  if (!client.ListAddons(/*with_health=*/false, &list).ok()) return std::nullopt;
  return list;
}

// Addon names from the libraries in the folders mk8sd searches (addonhost's DefaultAddonDirs,
// the subset the CLI can know): <state>/addons, next to this executable, the install folder.
// Names follow the host's rule for a library: "libmk8s_addon_foo_bar.so" -> "foo-bar".
std::set<std::string> AddonsOnDisk(const std::string& state_dir) {
  std::vector<std::string> dirs = {state_dir + "/addons"};
  std::error_code error;
  const fs::path exe = fs::read_symlink("/proc/self/exe", error);
  if (!error) dirs.push_back((exe.parent_path() / ".." / MK8S_ADDONS_RELATIVE_DIR).string());
  dirs.push_back(MK8S_ADDONS_INSTALL_DIR);
  std::set<std::string> names;
  for (const std::string& dir : dirs) {
    for (const fs::directory_entry& entry : fs::directory_iterator(dir, error)) {
      if (entry.path().extension() != ".so") continue;
      std::string stem = entry.path().stem().string();
      for (const std::string prefix : {"lib", "mk8s_addon_", "mk8s-addon-"}) {
        if (stem.rfind(prefix, 0) == 0) stem = stem.substr(prefix.size());
      }
      std::replace(stem.begin(), stem.end(), '_', '-');
      if (!stem.empty()) names.insert(stem);
    }
  }
  return names;
}

void PrintCandidate(const std::string& name, const std::string& description) {
  std::cout << name;
  if (!description.empty()) {
    std::string line = description;
    std::replace(line.begin(), line.end(), '\n', ' ');
    std::replace(line.begin(), line.end(), '\t', ' ');
    std::cout << '\t' << line;
  }
  std::cout << '\n';
}

int CompleteAddons(const GlobalOptions& global, bool enabled_only) {
  if (const auto list = DaemonAddons(global.state_dir)) {
    for (const v1::AddonStatus& addon : list->addons()) {
      if (!enabled_only || addon.enabled()) PrintCandidate(addon.name(), addon.description());
    }
    return kExitOk;
  }
  for (const std::string& name : AddonsOnDisk(global.state_dir)) PrintCandidate(name, "");
  return kExitOk;
}

int CompleteAddonArgs(const GlobalOptions& global, const std::string& name) {
  const auto list = DaemonAddons(global.state_dir);
  if (!list) return kExitOk;
  for (const v1::AddonStatus& addon : list->addons()) {
    if (addon.name() != name) continue;
    for (const v1::AddonArgument& arg : addon.arguments()) {
      PrintCandidate(arg.name() + "=", arg.help());
    }
  }
  return kExitOk;
}

// Execs `kubectl __complete [--kubeconfig=K] ARGS...`; prints nothing if kubectl is missing.
int CompleteKubectl(const GlobalOptions& global, const std::vector<std::string>& args) {
  const StatePaths paths(global.state_dir);
  std::vector<std::string> argv = {"kubectl", "__complete"};
  if (::access(paths.kubeconfig.c_str(), R_OK) == 0) {
    argv.push_back("--kubeconfig=" + paths.kubeconfig);
  }
  argv.push_back("--request-timeout=2s");  // resource names need the API server; stay snappy
  argv.insert(argv.end(), args.begin(), args.end());
  if (args.empty()) argv.push_back("");
  std::cout.flush();
  ExecReplace(argv);  // returns only on failure
  return kExitOk;
}

}  // namespace

int RunComplete(const GlobalOptions& global, const std::vector<std::string>& args) {
  if (args.empty()) return kExitOk;
  const std::string& what = args[0];
  if (what == "addons") return CompleteAddons(global, /*enabled_only=*/false);
  if (what == "enabled-addons") return CompleteAddons(global, /*enabled_only=*/true);
  if (what == "addon-args" && args.size() > 1) return CompleteAddonArgs(global, args[1]);
  if (what == "kubectl") return CompleteKubectl(global, {args.begin() + 1, args.end()});
  return kExitOk;
}

}  // namespace mk8s::cli
