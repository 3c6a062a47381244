// Containerd: runs (or adopts) the bundled containerd of one mk8s state folder and keeps it up.
//
// Lifecycle contract:
// - Start() writes <state_dir>/config.toml, then either ADOPTS a containerd launched earlier for
//   the same state folder (its pid file names a live containerd started with our config that
//   answers CRI), or launches a new one in its own session (setsid), output appended to the log
//   file. It returns once CRI Status reports RuntimeReady, or fails with the log's tail.
//   Pods survive a SIGKILL of mk8sd: containerd and its shims are not our process group.
// - A monitor thread watches the process (pidfd) and restarts containerd with back-off when it
//   dies (running pods are kept by their shims and found again by the new containerd).
// - Stop() is the `mk8s stop` path (after the kubelet stopped the pods): it ends the monitor,
//   sends SIGTERM, waits up to `grace`, then SIGKILL, reaps, and removes the pid file.
// - The destructor without Stop() ends the monitor only: containerd keeps running and the next
//   Start() for the same folder adopts it.
// Threads: socket() and options() are immutable; pid(), restarts() and Stop() are thread-safe.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

#include "common/status.h"
#include "runtime/containerd_config.h"

namespace mk8s::runtime {

struct ContainerdOptions {
  std::string state_dir;          // <mk8s state>/containerd; created if missing
  std::string cni_conf_dir;       // the CRI plugin's CNI config folder (the conflist goes there)
  std::string cni_bin_dir;        // "" = DefaultCniBinDir()
  std::string containerd_binary;  // "" = DefaultContainerdBinary()
  std::string runc_binary;        // "" = DefaultRuncBinary()
  std::string sandbox_image;      // the pause image's reference (import it with EnsurePauseImage)
  std::string log_file;           // "" = <state_dir>/containerd.log
  std::string log_level = "info";
  // Plain-HTTP registry mirrors written to certs.d at Start, host -> server URL, e.g.
  // {"localhost:32000", "http://127.0.0.1:32000"} (the registry addon's port). Mirrors an earlier
  // Start wrote (hosts.toml marked "Written by mk8sd") that are not listed here are removed;
  // hand-written hosts.toml files are left alone.
  std::map<std::string, std::string> registry_mirrors;
  std::chrono::seconds ready_timeout{30};
  std::chrono::milliseconds restart_backoff_initial{500};
  std::chrono::milliseconds restart_backoff_max{30'000};
};

// Where the runtime's programs are. Each looks beside this executable first (a snap or a relocated
// install ships them in its own usr/bin, usr/sbin, usr/lib/cni), then in the system folders,
// and returns the system path when none exists (the caller's error then names it).
std::string DefaultContainerdBinary();  // <exe dir>/containerd, /usr/bin/containerd
std::string DefaultCtrBinary();         // <exe dir>/ctr, /usr/bin/ctr
std::string DefaultRuncBinary();  // <exe dir>/../sbin/runc, /usr/sbin/runc, /usr/bin/runc, ...
std::string DefaultCniBinDir();   // <exe dir>/../lib/cni, /usr/lib/cni, /opt/cni/bin

// Writes `options` as <conf_dir>/10-mk8s.conflist (atomically; creates conf_dir). containerd
// picks a changed file up by itself (no restart).
Status WriteCniConflist(const std::string& conf_dir, const CniNetworkOptions& options);

// Writes <certs_d>/<host>/hosts.toml so pulls of `host/...` go to server_url (plain HTTP allowed).
// containerd reads it at every pull (no restart). host must be a registry host[:port].
Status WriteRegistryMirror(const std::string& certs_d, const std::string& host,
                           const std::string& server_url);

// Parses one `--registry-mirror` value, HOST=URL (e.g. localhost:32000=http://127.0.0.1:32000),
// into {host, url}; kInvalidArgument with a message naming the value when HOST is not a
// registry host[:port] or URL is not http(s)://...
Result<std::pair<std::string, std::string>> ParseRegistryMirror(const std::string& value);

class Containerd {
 public:
  static Result<std::unique_ptr<Containerd>> Start(ContainerdOptions options);
  ~Containerd();
  Containerd(const Containerd&) = delete;
  Containerd& operator=(const Containerd&) = delete;

  const std::string& socket() const { return socket_; }  // path of the CRI/containerd socket
  const ContainerdOptions& options() const { return options_; }
  pid_t pid() const;  // the current containerd's pid (changes after a restart)
  bool adopted() const { return adopted_; }          // the first instance was adopted, not launched
  int restarts() const { return restarts_.load(); }  // restarts done by the monitor

  // Stops containerd (see the contract above). Idempotent; later calls return OK.
  Status Stop(std::chrono::seconds grace = std::chrono::seconds(10));

 private:
  explicit Containerd(ContainerdOptions options);
  Status Launch(std::chrono::seconds ready_timeout);  // launches and waits for readiness
  bool TryAdopt();
  Status WaitReady(pid_t pid, bool own_child, std::chrono::seconds timeout);
  void Monitor();
  void SetPid(pid_t pid, bool own_child);
  void StopMonitor();

  const ContainerdOptions options_;
  const std::string socket_;
  const std::string pid_file_;
  const std::string config_file_;
  bool adopted_ = false;  // written before the monitor starts

  mutable std::mutex mu_;
  pid_t pid_ = -1;          // GUARDED_BY(mu_)
  bool own_child_ = false;  // GUARDED_BY(mu_): launched by this process (we must reap it)
  bool stopped_ = false;    // GUARDED_BY(mu_)

  std::atomic<int> restarts_{0};
  std::atomic<bool> stopping_{false};  // set once the monitor must end
  int stop_event_ = -1;                // eventfd: wakes the monitor to exit
  std::thread monitor_;
};

}  // namespace mk8s::runtime
