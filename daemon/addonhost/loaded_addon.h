// LoadedAddon: one addon library in the daemon. Load() runs the start of the lifecycle
//   dlopen (Boost.DLL) -> ABI version check -> init -> struct and manifest checks
// and refuses a broken library with one clear message, undoing what it did. The other methods
// run one lifecycle call each on the addon's own AddonThread, under a timeout.
//
// Faults: an addon call that times out, or that lets an exception unwind through the C ABI, marks
// the addon faulted. A faulted addon gets no further calls, and its library, thread and host
// context are leaked on destruction instead of unloaded (its code may still be running; a thread
// cannot be killed). A crash (SIGSEGV) cannot be contained in-process: see the crash-loop guard
// in addon_host.h.
//
// Threads: methods are called by AddonHost under its operation lock, one at a time; health() and
// fault() may be called from any thread.
#pragma once

#include <mk8s/abi.h>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "addonhost/host_context.h"
#include "addonhost/manifest.h"
#include "common/status.h"

namespace boost::dll {
class shared_library;
}

namespace mk8s::addonhost {

class AddonThread;

struct LoadOptions {
  HostSettings settings;
  ClientFactory make_client;
  std::string data_root;  // each addon's state folder is <data_root>/<name>
  std::chrono::milliseconds call_timeout{60000};
  std::shared_ptr<HttpRoutes> http_routes;  // where addons' HTTP routes go; nullptr: none
};

struct AddonHealth {
  bool healthy = false;
  std::string message;
};

class LoadedAddon {
 public:
  // kInvalidArgument, with "why" as the message, when the library is refused.
  static Result<std::unique_ptr<LoadedAddon>> Load(const std::string& path,
                                                   const LoadOptions& options);
  ~LoadedAddon();  // on_unload + dlclose, or a deliberate leak when faulted

  const AddonManifest& manifest() const { return manifest_; }
  const std::string& path() const { return path_; }
  const std::string& state_dir() const { return state_dir_; }

  Status Enable(const ValidatedArgs& args);
  Status Disable();
  Status Start();  // Ok when the addon has no mk8s_on_start
  void Stop();     // mk8s_on_stop, then cancels the watches it left open
  AddonHealth Health(std::chrono::milliseconds timeout);

  // Non-empty once faulted (hung or threw): why, with the next step. Also notices a watch
  // callback that has been running longer than the call timeout.
  std::string fault();

 private:
  LoadedAddon() = default;
  using Body = std::function<mk8s_status_t(mk8s_message_out*)>;
  // Runs `body` on the addon thread. `what` is the callback's name for messages.
  Status Invoke(const std::string& what, Body body, std::chrono::milliseconds timeout);
  void SetFault(const std::string& why);

  std::string path_;
  std::string state_dir_;
  std::chrono::milliseconds call_timeout_{60000};
  std::unique_ptr<boost::dll::shared_library> library_;
  std::shared_ptr<AddonThread> thread_;
  std::unique_ptr<HostContext> host_;
  const mk8s_addon_v1* addon_ = nullptr;  // owned by the addon; valid until on_unload
  AddonManifest manifest_;

  std::mutex fault_mu_;
  std::string fault_;  // GUARDED_BY(fault_mu_)
};

}  // namespace mk8s::addonhost
