// Everything mk8sd can be told on its command line. Filled by main.cc, read by app::Run.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "kubelet/node_pressure.h"

namespace mk8s::app {

struct DaemonOptions {
  std::string state_dir;            // the state folder; everything the daemon writes lives here
  std::string socket;               // control socket; empty = <state_dir>/mk8sd.sock
  std::string log_level = "info";   // trace, debug, info, warn, error
  bool log_to_stderr = true;
  // The Kubernetes API server (HTTPS). Port 0 picks a free port (tests).
  std::string apiserver_bind_address = "0.0.0.0";
  int apiserver_port = 16443;
  // Which parts run here: any of "apiserver", "controllers", "scheduler". Without "apiserver",
  // the others are clients of the API server named by `kubeconfig` (and `server`, which
  // overrides the kubeconfig's URL), and there is no datastore or control socket.
  bool run_apiserver = true;
  bool run_controllers = true;
  bool run_scheduler = true;
  bool run_proxy = false;  // kube-proxy (iptables mode; needs root): daemon/app/node_agent.h
  bool run_kubelet = false;  // the kubelet and its bundled containerd: daemon/app/node_agent.h
  std::string server;
  std::string kubeconfig;
  // Leader election of the controller manager and the scheduler (upstream's flags).
  bool leader_elect = true;
  std::string leader_elect_identity;  // empty: "<hostname>_<hash of the state folder>"
  std::chrono::milliseconds leader_elect_lease_duration{15000};
  std::chrono::milliseconds leader_elect_renew_deadline{10000};
  std::chrono::milliseconds leader_elect_retry_period{2000};
  // A node silent this long turns NotReady (Unknown) and is tainted unreachable.
  int node_monitor_grace_period_seconds = 50;
  // Pod GC: terminated pods kept (0 = never delete), and how long a missing node is waited for.
  int64_t terminated_pod_gc_threshold = 12500;
  int pod_gc_quarantine_seconds = 40;
  // The node agent. Empty node_name: the host name; empty node_ip: the first non-loopback IPv4.
  std::string node_name;
  std::string node_ip;
  int kubelet_port = 10250;  // 0 = any free port
  std::vector<std::pair<std::string, std::string>> node_extended_resources;  // nvidia.com/gpu=1
  // The kubelet's hard eviction thresholds (--eviction-hard; kubelet/node_pressure.h), already
  // validated by main.cc. Empty text: none.
  std::string eviction_hard = std::string(kubelet::kDefaultEvictionHard);
  // Soft thresholds (--eviction-soft, same syntax) and their grace periods
  // (--eviction-soft-grace-period, SIGNAL=DURATION,...), validated together by main.cc
  // (kubelet::ParseEvictionSoft). Empty: none.
  std::string eviction_soft;
  std::string eviction_soft_grace_period;
  // --eviction-max-pod-grace-period (seconds): caps a pod's grace period on soft evictions;
  // 0 (upstream's default) evicts at once, negative defers to the pod's own.
  int64_t eviction_max_pod_grace_period = 0;
  // Image garbage collection (kubelet/image_gc.h): thresholds in percent of the image
  // filesystem, the youngest image age removed, how often it looks (upstream's defaults).
  int image_gc_high_threshold = 85;
  int image_gc_low_threshold = 80;
  std::chrono::milliseconds image_minimum_gc_age{120000};
  std::chrono::milliseconds image_gc_period{300000};
  // Plain-HTTP registry mirrors of the bundled containerd, host -> server URL (certs.d
  // hosts.toml). main.cc fills the default, localhost:32000 -> http://127.0.0.1:32000 (the
  // registry addon), when no --registry-mirror is given.
  std::map<std::string, std::string> registry_mirrors;
  // iptables chain prefix of this daemon's kube-proxy (at most 10 characters). Empty:
  // "MK8S-" + 5 hex digits of the state folder's hash, so daemons side by side never share rules.
  std::string proxy_chain_prefix;
  // Hollow nodes (tests and benchmarks): fake kubelets registered in-process.
  int hollow_nodes = 0;
  int hollow_pod_start_delay_ms = 200;
  // Extra folders searched for addon libraries, before the default ones (daemon/addonhost).
  std::vector<std::string> addon_dirs;
  // Datastore tuning.
  int64_t store_history_revisions = 100000;
  std::chrono::seconds store_compaction_interval{300};
  // How often the API server and the kubelet look for certificates due for renewal (they are
  // issued for a year; due means in their last 30 days, or last fifth for a worker's kubelet).
  std::chrono::seconds certificate_check_interval{3600};
};

}  // namespace mk8s::app
