#include "addonhost/addon_host.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <set>

namespace mk8s::addonhost {
namespace {

namespace fs = std::filesystem;

// "libmk8s_addon_foo_bar.so" -> "foo-bar": a name for a library whose manifest is unknown.
std::string NameFromFile(const std::string& path) {
  std::string stem = fs::path(path).stem().string();
  for (const std::string prefix : {"lib", "mk8s_addon_", "mk8s-addon-"}) {
    if (stem.rfind(prefix, 0) == 0) stem = stem.substr(prefix.size());
  }
  std::replace(stem.begin(), stem.end(), '_', '-');
  return stem;
}

std::string ExecutableDir() {
  std::error_code error;
  const fs::path exe = fs::read_symlink("/proc/self/exe", error);
  return error ? "" : exe.parent_path().string();
}

}  // namespace

std::vector<std::string> DefaultAddonDirs(const std::string& state_dir,
                                          const std::vector<std::string>& extra) {
  std::vector<std::string> dirs = extra;
  dirs.push_back(state_dir + "/addons");
  if (const std::string exe_dir = ExecutableDir(); !exe_dir.empty()) {
    dirs.push_back(exe_dir + "/../" MK8S_ADDONS_RELATIVE_DIR);
  }
  dirs.push_back(MK8S_ADDONS_INSTALL_DIR);
  // One entry per real folder.
  std::vector<std::string> unique;
  std::set<std::string> seen;
  for (const std::string& dir : dirs) {
    std::error_code error;
    const fs::path canonical = fs::weakly_canonical(dir, error);
    const std::string key = error ? dir : canonical.string();
    if (seen.insert(key).second) unique.push_back(key);
  }
  return unique;
}

AddonHost::AddonHost(AddonHostOptions options)
    : options_(std::move(options)),
      data_root_(options_.state_dir + "/addon-state"),
      state_file_(data_root_ + "/addons.json"),
      marker_file_(data_root_ + "/starting") {
  load_options_.settings = options_.settings;
  load_options_.settings.daemon_state_dir = options_.state_dir;
  load_options_.make_client = options_.make_client;
  load_options_.data_root = data_root_;
  load_options_.call_timeout = options_.call_timeout;
  load_options_.http_routes = options_.http_routes;
}

AddonHost::~AddonHost() { Shutdown(); }

Result<std::unique_ptr<AddonHost>> AddonHost::Start(AddonHostOptions options) {
  std::unique_ptr<AddonHost> host(new AddonHost(std::move(options)));
  if (Status status = host->Init(); !status.ok()) return status;
  return host;
}

Status AddonHost::Save() {
  Status status = SavePersistedState(state_file_, persisted_);
  if (!status.ok()) spdlog::error("addons: {}", status.message());
  return status;
}

void AddonHost::SetBusy(const std::string& name, bool busy) {
  std::lock_guard lock(mu_);
  entries_[name].busy = busy;
}

void AddonHost::Rescan() {
  for (const std::string& dir : options_.addon_dirs) {
    std::error_code error;
    std::vector<std::string> files;
    for (const fs::directory_entry& file : fs::directory_iterator(dir, error)) {
      if (file.path().extension() == ".so" && file.is_regular_file(error)) {
        files.push_back(file.path().string());
      }
    }
    std::sort(files.begin(), files.end());
    for (const std::string& path : files) {
      if (seen_files_.count(path) != 0) continue;
      seen_files_[path] = true;
      Result<std::unique_ptr<LoadedAddon>> loaded = LoadedAddon::Load(path, load_options_);
      std::lock_guard lock(mu_);
      if (!loaded.ok()) {
        const std::string name = NameFromFile(path);
        spdlog::error("addons: refused {}: {}", path, loaded.status().message());
        Entry& entry = entries_[name];
        if (entry.addon == nullptr && entry.refused.empty()) {
          entry.path = path;
          entry.refused = loaded.status().message();
        }
        continue;
      }
      const std::string name = (*loaded)->manifest().name;
      Entry& entry = entries_[name];
      if (entry.addon != nullptr) {
        spdlog::warn("addons: {} provides {} again; keeping {}", path, name, entry.path);
        continue;  // the LoadedAddon unloads as `loaded` goes away
      }
      entry.addon = std::move(*loaded);
      entry.path = path;
      entry.refused.clear();
      spdlog::info("addons: found {} {} in {}", name, entry.addon->manifest().version, path);
    }
  }
}

std::vector<std::string> AddonHost::DependencyOrder(const std::vector<std::string>& names) {
  std::vector<std::string> order;
  std::set<std::string> wanted(names.begin(), names.end()), visiting, done;
  std::function<void(const std::string&)> visit = [&](const std::string& name) {
    if (done.count(name) != 0 || visiting.count(name) != 0) return;  // cycles are cut
    visiting.insert(name);
    auto it = entries_.find(name);
    if (it != entries_.end() && it->second.addon != nullptr) {
      for (const std::string& dep : it->second.addon->manifest().depends_on) {
        if (wanted.count(dep) != 0) visit(dep);
      }
    }
    visiting.erase(name);
    done.insert(name);
    order.push_back(name);
  };
  for (const std::string& name : names) visit(name);
  return order;
}

Status AddonHost::Init() {
  std::error_code error;
  fs::create_directories(data_root_, error);
  if (error) {
    return Status(Code::kInternal, "cannot create " + data_root_ + ": " + error.message());
  }
  Result<PersistedState> state = LoadPersistedState(state_file_);
  if (!state.ok()) return state.status();
  std::lock_guard ops(ops_mu_);
  {
    std::lock_guard lock(mu_);
    persisted_ = std::move(*state);
    // The crash-loop guard: a marker left behind means the last daemon died starting that addon.
    if (std::optional<std::string> crashed = ReadStartMarker(marker_file_)) {
      const int count = ++persisted_.crashes[*crashed];
      spdlog::warn("addons: mk8sd stopped while starting addon {} ({} time(s) in a row)", *crashed,
                   count);
      if (count >= 2 && persisted_.enabled.erase(*crashed) != 0) {
        persisted_.quarantined[*crashed] =
            "left disabled: mk8sd died twice in a row while starting it; fix or update the "
            "addon, then run 'mk8s enable " +
            *crashed + "'";
        persisted_.crashes.erase(*crashed);
        spdlog::error("addons: leaving {} disabled (crash-loop guard)", *crashed);
      }
      if (Status saved = Save(); !saved.ok()) return saved;
      ClearStartMarker(marker_file_);
    }
  }
  Rescan();

  std::vector<std::string> enabled;
  std::map<std::string, std::string> args_of;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, args] : persisted_.enabled) {
      enabled.push_back(name);
      args_of[name] = args;
    }
  }
  for (const std::string& name : DependencyOrder(enabled)) {
    std::string failure;
    LoadedAddon* addon = nullptr;
    {
      std::lock_guard lock(mu_);
      Entry& entry = entries_[name];
      addon = entry.addon.get();
      if (addon == nullptr) {
        failure = entry.refused.empty()
                      ? "enabled, but no library provides it in " +
                            std::to_string(options_.addon_dirs.size()) +
                            " addon folder(s): reinstall it, or run 'mk8s disable " + name + "'"
                      : "enabled, but its library was refused: " + entry.refused;
      } else {
        for (const std::string& dep : addon->manifest().depends_on) {
          if (!entries_[dep].running)
            failure = "not started: it needs " + dep + ", which is not running";
        }
      }
      if (!failure.empty()) {
        entry.failure = failure;
        spdlog::error("addons: {}: {}", name, failure);
        continue;
      }
    }
    Result<ValidatedArgs> args = ValidateArgs(addon->manifest(), args_of[name]);
    if (!args.ok()) {
      std::lock_guard lock(mu_);
      entries_[name].failure =
          "its saved arguments are no longer valid: " + args.status().message();
      continue;
    }
    if (Status marked = WriteStartMarker(marker_file_, name); !marked.ok()) {
      spdlog::warn("addons: {}", marked.message());
    }
    const Status up = BringUp(name, *args);
    ClearStartMarker(marker_file_);  // the daemon survived this start, whatever its outcome
    std::lock_guard lock(mu_);
    persisted_.crashes.erase(name);
    (void)Save();
    if (!up.ok()) {
      entries_[name].failure = "could not be started: " + up.message() +
                               "; fix it, then run 'mk8s enable " + name + "' (or 'mk8s disable " +
                               name + "')";
    }
  }
  return Status::Ok();
}

Status AddonHost::BringUp(const std::string& name, const ValidatedArgs& args) {
  LoadedAddon* addon = nullptr;
  {
    std::lock_guard lock(mu_);
    addon = entries_[name].addon.get();
  }
  SetBusy(name, true);
  spdlog::info("addons: enabling {}", name);
  Status status = addon->Enable(args);
  if (status.ok()) {
    status = addon->Start();
    if (!status.ok() && addon->fault().empty()) {
      spdlog::warn("addons: {} failed to start; undoing its enable", name);
      addon->Stop();
      if (Status undone = addon->Disable(); !undone.ok()) {
        spdlog::warn("addons: undoing the enable of {} failed too: {}", name, undone.message());
      }
    }
  }
  std::lock_guard lock(mu_);
  Entry& entry = entries_[name];
  entry.busy = false;
  entry.running = status.ok();
  entry.failure = status.ok() ? "" : status.message();
  if (status.ok()) spdlog::info("addons: {} is enabled", name);
  return status;
}

std::vector<std::string> AddonHost::EnabledDependents(const std::string& name) {
  std::vector<std::string> out;
  for (const auto& [other, entry] : entries_) {
    if (entry.addon == nullptr || persisted_.enabled.count(other) == 0) continue;
    const auto& deps = entry.addon->manifest().depends_on;
    if (std::find(deps.begin(), deps.end(), name) != deps.end()) out.push_back(other);
  }
  return out;
}

Result<AddonOutcome> AddonHost::Enable(const std::string& name, const std::string& raw_args,
                                       bool dry_run) {
  std::lock_guard ops(ops_mu_);
  if (shut_down_) return Status(Code::kUnavailable, "mk8sd is shutting down");
  Rescan();
  LoadedAddon* addon = nullptr;
  bool running = false;
  std::string current_args;
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(name);
    if (it == entries_.end() || (it->second.addon == nullptr && it->second.refused.empty())) {
      return Status(Code::kNotFound,
                    "unknown addon '" + name + "': 'mk8s addons list' shows the available addons");
    }
    if (it->second.addon == nullptr) {
      return Status(Code::kConflict, "addon " + name + " cannot be used: " + it->second.refused);
    }
    addon = it->second.addon.get();
    running = it->second.running;
    if (auto enabled = persisted_.enabled.find(name); enabled != persisted_.enabled.end()) {
      current_args = enabled->second;
    }
  }
  const AddonManifest& manifest = addon->manifest();
  Result<ValidatedArgs> args = ValidateArgs(manifest, raw_args);
  if (!args.ok()) return args.status();
  if (manifest.needs_root && !options_.is_root) {
    return Status(Code::kConflict,
                  "addon " + name + " needs mk8sd to run as root: restart mk8sd as root first");
  }
  if (dry_run) return AddonOutcome{false, "the arguments of " + name + " are valid"};
  {
    std::lock_guard lock(mu_);
    for (const std::string& dep : manifest.depends_on) {
      if (!entries_[dep].running) {
        return Status(Code::kConflict, "addon " + name + " needs " + dep +
                                           ", which is not enabled: run 'mk8s enable " + name +
                                           "' with the mk8s CLI, which enables it first");
      }
    }
  }
  if (const std::string fault = addon->fault(); !fault.empty()) {
    return Status(Code::kUnavailable, "addon " + name + " is faulted (" + fault + ")");
  }
  if (running && current_args == raw_args) {
    return AddonOutcome{false, "Addon " + name + " is already enabled"};
  }
  if (running) {  // new arguments: stop, then enable again with them
    SetBusy(name, true);
    addon->Stop();
    std::lock_guard lock(mu_);
    entries_[name].running = false;
    entries_[name].busy = false;
  }
  const Status up = BringUp(name, *args);
  std::lock_guard lock(mu_);
  if (!up.ok()) {
    // The user's enable failed: it is not enabled (a restart will not retry it).
    persisted_.enabled.erase(name);
    (void)Save();
    return Status(up.code(), "enabling " + name + " failed: " + up.message());
  }
  persisted_.enabled[name] = raw_args;
  persisted_.crashes.erase(name);
  persisted_.quarantined.erase(name);
  if (Status saved = Save(); !saved.ok()) return saved;
  return AddonOutcome{true, "Addon " + name + " is enabled"};
}

Result<AddonOutcome> AddonHost::Disable(const std::string& name) {
  std::lock_guard ops(ops_mu_);
  if (shut_down_) return Status(Code::kUnavailable, "mk8sd is shutting down");
  Rescan();
  LoadedAddon* addon = nullptr;
  {
    std::lock_guard lock(mu_);
    auto it = entries_.find(name);
    if (it == entries_.end()) {
      return Status(Code::kNotFound,
                    "unknown addon '" + name + "': 'mk8s addons list' shows the available addons");
    }
    const bool enabled = persisted_.enabled.count(name) != 0;
    if (!enabled && !it->second.running) {
      return AddonOutcome{false, "Addon " + name + " is already disabled"};
    }
    if (std::vector<std::string> users = EnabledDependents(name); !users.empty()) {
      std::string list;
      for (const std::string& user : users) list += (list.empty() ? "" : ", ") + user;
      return Status(Code::kConflict,
                    "addon " + list + " needs " + name + ": disable " + list + " first");
    }
    addon = it->second.addon.get();
    if (addon == nullptr || !addon->fault().empty()) {
      // Nothing can be called: forget that it is enabled; its objects may remain.
      persisted_.enabled.erase(name);
      it->second.running = false;
      (void)Save();
      return AddonOutcome{true, "Addon " + name +
                                    " is disabled (it could not be called, so "
                                    "what it created may remain; restart mk8sd to unload it)"};
    }
    it->second.busy = true;
  }
  spdlog::info("addons: disabling {}", name);
  addon->Stop();
  const Status disabled = addon->Disable();
  std::lock_guard lock(mu_);
  Entry& entry = entries_[name];
  entry.busy = false;
  entry.running = false;
  if (!disabled.ok()) {
    entry.failure =
        "disable failed: " + disabled.message() + "; run 'mk8s disable " + name + "' again";
    return Status(disabled.code(), "disabling " + name + " failed: " + disabled.message() +
                                       ": fix the cause and run 'mk8s disable " + name + "' again");
  }
  entry.failure.clear();
  persisted_.enabled.erase(name);
  if (Status saved = Save(); !saved.ok()) return saved;
  return AddonOutcome{true, "Addon " + name + " is disabled"};
}

std::vector<AddonInfo> AddonHost::List(bool with_health) {
  {
    std::unique_lock ops(ops_mu_, std::try_to_lock);
    if (ops.owns_lock() && !shut_down_) Rescan();
  }
  std::vector<AddonInfo> out;
  std::vector<std::pair<size_t, LoadedAddon*>> ask;  // running, idle addons to ask for health
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, entry] : entries_) {
      if (entry.addon == nullptr && entry.refused.empty() && persisted_.enabled.count(name) == 0) {
        continue;  // a name referenced only as a missing dependency
      }
      AddonInfo info;
      info.name = name;
      info.path = entry.path;
      info.enabled = persisted_.enabled.count(name) != 0;
      if (info.enabled) info.args = persisted_.enabled.at(name);
      if (entry.addon != nullptr) {
        const AddonManifest& m = entry.addon->manifest();
        info.version = m.version;
        info.description = m.description;
        info.repository = m.repository;
        info.arg_specs = m.args;
        info.depends_on = m.depends_on;
        info.needs_root = m.needs_root;
      }
      if (entry.addon == nullptr && !entry.refused.empty()) {
        info.state = "refused";
        info.description = "cannot be loaded";
        info.message = entry.refused;
      } else if (entry.running) {
        info.state = "enabled";
        info.healthy = true;
        info.message = entry.busy ? "busy (an enable or disable is in progress)" : "";
        if (with_health && !entry.busy) ask.emplace_back(out.size(), entry.addon.get());
      } else if (info.enabled || !entry.failure.empty()) {
        info.state = info.enabled ? "failed" : "disabled";
        info.message = entry.failure;
      }
      if (entry.addon != nullptr && !entry.running) {
        if (std::string fault = entry.addon->fault(); !fault.empty()) {
          info.state = "failed";
          info.message = std::move(fault);
        }
      }
      if (auto note = persisted_.quarantined.find(name);
          note != persisted_.quarantined.end() && !info.enabled) {
        info.message = note->second;
      }
      out.push_back(std::move(info));
    }
  }
  for (const auto& [index, addon] : ask) {
    AddonInfo& info = out[index];
    if (const std::string fault = addon->fault(); !fault.empty()) {
      info.state = "failed";
      info.healthy = false;
      info.message = fault;
      continue;
    }
    const AddonHealth health = addon->Health(options_.status_timeout);
    info.healthy = health.healthy;
    info.message = health.message;
    if (const std::string fault = addon->fault(); !fault.empty()) info.state = "failed";
  }
  return out;
}

void AddonHost::Shutdown() {
  std::lock_guard ops(ops_mu_);
  if (shut_down_) return;
  shut_down_ = true;
  std::vector<std::string> running, all;
  {
    std::lock_guard lock(mu_);
    for (const auto& [name, entry] : entries_) {
      if (entry.running) running.push_back(name);
      if (entry.addon != nullptr) all.push_back(name);
    }
  }
  std::vector<std::string> order = DependencyOrder(running);
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    LoadedAddon* addon = nullptr;
    {
      std::lock_guard lock(mu_);
      addon = entries_[*it].addon.get();
      entries_[*it].running = false;
    }
    spdlog::info("addons: stopping {}", *it);
    addon->Stop();
  }
  // Unload dependents before what they depend on.
  order = DependencyOrder(all);
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    std::unique_ptr<LoadedAddon> addon;
    {
      std::lock_guard lock(mu_);
      addon = std::move(entries_[*it].addon);
    }
    addon.reset();
  }
}

}  // namespace mk8s::addonhost
