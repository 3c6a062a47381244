// mk8s enable / disable / addons list: the MicroK8s way of managing addons, served by the
// daemon's addon host over the control socket.
#include <iostream>
#include <map>
#include <set>

#include "cli/commands.h"
#include "cli/daemon_client.h"
#include "cli/format.h"

namespace mk8s::cli {
namespace {

struct PlanItem {
  std::string name;
  std::string args;
  std::string needed_by;  // non-empty for a dependency the user did not name
};

// Appends `name` to `plan` after its dependencies that are not running yet. Addons the user named
// (`args_of`) keep their arguments and are planned once. False (with `error`) on a cycle or an
// unknown addon.
bool Plan(const std::map<std::string, const v1::AddonStatus*>& addons,
          const std::map<std::string, std::string>& args_of, const std::string& name,
          const std::string& needed_by, std::set<std::string>* visiting,
          std::set<std::string>* planned, std::vector<PlanItem>* plan, std::string* error) {
  if (planned->count(name) != 0) return true;
  auto it = addons.find(name);
  if (it == addons.end()) {
    *error = needed_by.empty()
                 ? "unknown addon '" + name + "': 'mk8s addons list' shows the available addons"
                 : "addon " + needed_by + " needs '" + name +
                       "', which this mk8s does not have: install it, then retry";
    return false;
  }
  if (!visiting->insert(name).second) {
    *error = "addons " + name + " and " + needed_by +
             " depend on each other: report it to their authors";
    return false;
  }
  for (const std::string& dep : it->second->depends_on()) {
    auto found = addons.find(dep);
    const bool running = found != addons.end() && found->second->state() == "enabled";
    const bool named = args_of.count(dep) != 0;
    if (running && !named) continue;
    if (!Plan(addons, args_of, dep, named ? "" : name, visiting, planned, plan, error)) {
      return false;
    }
  }
  visiting->erase(name);
  planned->insert(name);
  auto args = args_of.find(name);
  plan->push_back({name, args == args_of.end() ? "" : args->second, needed_by});
  return true;
}

std::string ArgumentLine(const v1::AddonArgument& arg) {
  std::string line = arg.name() + ": " + arg.help() + " (" + arg.type();
  if (arg.required()) line += ", required";
  if (arg.has_default()) line += ", default '" + arg.default_value() + "'";
  return line + ")";
}

}  // namespace

int RunEnable(const GlobalOptions& global, const std::vector<std::string>& items) {
  DaemonClient client(global.state_dir);
  v1::ListAddonsResponse list;
  if (CallStatus call = client.ListAddons(false, &list); !call.ok())
    return PrintError(call.message);
  std::map<std::string, const v1::AddonStatus*> addons;
  for (const v1::AddonStatus& addon : list.addons()) addons[addon.name()] = &addon;

  // NAME[:ARGS] for each item; requested dependencies are ordered before their dependents.
  std::vector<std::pair<std::string, std::string>> requested;
  std::set<std::string> requested_names;
  for (const std::string& item : items) {
    const size_t colon = item.find(':');
    const std::string name = item.substr(0, colon);
    const std::string args = colon == std::string::npos ? "" : item.substr(colon + 1);
    if (name.empty()) return PrintError("'" + item + "' names no addon: write NAME or NAME:ARGS");
    if (!requested_names.insert(name).second) {
      return PrintError("addon " + name + " is named twice: name each addon once");
    }
    requested.emplace_back(name, args);
  }
  std::vector<PlanItem> plan;
  std::set<std::string> visiting, planned;
  std::string error;
  const std::map<std::string, std::string> args_of(requested.begin(), requested.end());
  for (const auto& item : requested) {
    if (!Plan(addons, args_of, item.first, "", &visiting, &planned, &plan, &error)) {
      return PrintError(error);
    }
  }

  // Validate everything before changing anything.
  for (const PlanItem& item : plan) {
    auto it = addons.find(item.name);
    if (it->second->state() == "refused") {
      return PrintError("addon " + item.name + " cannot be used: " + it->second->message());
    }
    v1::EnableAddonRequest request;
    request.set_name(item.name);
    request.set_args(item.args);
    request.set_dry_run(true);
    v1::EnableAddonResponse reply;
    if (CallStatus call = client.EnableAddon(request, &reply); !call.ok()) {
      return PrintError(call.message);
    }
  }
  for (const PlanItem& item : plan) {
    std::cout << "Enabling " << item.name;
    if (!item.needed_by.empty()) std::cout << " (needed by " << item.needed_by << ")";
    std::cout << "..." << std::endl;
    v1::EnableAddonRequest request;
    request.set_name(item.name);
    request.set_args(item.args);
    v1::EnableAddonResponse reply;
    if (CallStatus call = client.EnableAddon(request, &reply); !call.ok()) {
      return PrintError(call.message);
    }
    std::cout << reply.message() << std::endl;
  }
  return kExitOk;
}

int RunDisable(const GlobalOptions& global, const std::vector<std::string>& names) {
  DaemonClient client(global.state_dir);
  for (const std::string& name : names) {
    if (name.find(':') != std::string::npos) {
      return PrintError("disable takes addon names without arguments: run 'mk8s disable " +
                        name.substr(0, name.find(':')) + "'");
    }
    std::cout << "Disabling " << name << "..." << std::endl;
    v1::DisableAddonResponse reply;
    if (CallStatus call = client.DisableAddon(name, &reply); !call.ok()) {
      return PrintError(call.message);
    }
    std::cout << reply.message() << std::endl;
  }
  return kExitOk;
}

int RunAddonsList(const GlobalOptions& global) {
  DaemonClient client(global.state_dir);
  v1::ListAddonsResponse list;
  if (CallStatus call = client.ListAddons(true, &list); !call.ok()) return PrintError(call.message);
  std::cout << FormatAddonsTable(list.addons());
  for (const v1::AddonStatus& addon : list.addons()) {
    if (addon.arguments().empty() && addon.depends_on().empty()) continue;
    std::cout << '\n' << addon.name() << ":\n";
    for (const v1::AddonArgument& arg : addon.arguments()) {
      std::cout << "  " << ArgumentLine(arg) << '\n';
    }
    if (!addon.depends_on().empty()) {
      std::cout << "  needs:";
      for (const std::string& dep : addon.depends_on()) std::cout << ' ' << dep;
      std::cout << '\n';
    }
  }
  if (!list.addons().empty()) {
    std::cout << "\nEnable one with 'mk8s enable NAME' or 'mk8s enable NAME:ARG=VALUE;...'.\n";
  }
  return kExitOk;
}

}  // namespace mk8s::cli
