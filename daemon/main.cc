// mk8sd: parse flags, then hand over to app::Run.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <set>
#include <sstream>

#include "app/app.h"
#include "common/paths.h"
#include "common/version.h"
#include "kubelet/image_gc.h"
#include "runtime/containerd.h"

namespace {

// "15s", "500ms", "2m", "1h" (or a plain number of seconds) -> milliseconds.
std::chrono::milliseconds ParseDuration(const std::string& text) {
  size_t used = 0;
  const double value = std::stod(text, &used);
  const std::string unit = text.substr(used);
  double ms = 0;
  if (unit.empty() || unit == "s") {
    ms = value * 1000;
  } else if (unit == "ms") {
    ms = value;
  } else if (unit == "m") {
    ms = value * 60000;
  } else if (unit == "h") {
    ms = value * 3600000;
  } else {
    throw std::invalid_argument("unknown unit '" + unit + "'");
  }
  if (ms < 1) throw std::invalid_argument("must be at least 1ms");
  return std::chrono::milliseconds(static_cast<int64_t>(ms));
}

// Adds a duration option such as --leader-elect-lease-duration=15s.
void AddDurationOption(CLI::App& cli, const std::string& name, std::chrono::milliseconds* target,
                       const std::string& help) {
  cli.add_option_function<std::string>(
         name,
         [target, name](const std::string& text) {
           try {
             *target = ParseDuration(text);
           } catch (const std::exception& error) {
             throw CLI::ValidationError(name, "'" + text + "' is not a duration like 15s or " +
                                                  "500ms (" + error.what() + ")");
           }
         },
         help)
      ->type_name("DURATION");
}

}  // namespace

int main(int argc, char** argv) {
  mk8s::app::DaemonOptions options;
  options.state_dir = mk8s::DefaultStateDir();
  int64_t compaction_seconds = options.store_compaction_interval.count();
  if (const char* port = std::getenv("MK8S_APISERVER_PORT"); port != nullptr && *port != '\0') {
    options.apiserver_port = std::atoi(port);
  }

  CLI::App cli{"mk8sd: the mk8s daemon (control plane and node agent)", "mk8sd"};
  cli.add_option("--state-dir", options.state_dir,
                 "State folder (default $MK8S_STATE_DIR, $SNAP_COMMON or /var/lib/mk8s)");
  cli.add_option("--socket", options.socket, "Control socket (default <state-dir>/mk8sd.sock)");
  cli.add_option("--log-level", options.log_level, "trace, debug, info, warn or error");
  cli.add_option("--apiserver-port", options.apiserver_port,
                 "HTTPS port of the Kubernetes API (default 16443, or $MK8S_APISERVER_PORT; 0 = any)")
      ->check(CLI::Range(0, 65535));
  cli.add_option("--apiserver-bind-address", options.apiserver_bind_address,
                 "Address the Kubernetes API listens on");
  cli.add_option("--node-monitor-grace-period", options.node_monitor_grace_period_seconds,
                 "Seconds without a heartbeat before a node is NotReady (default 50)")
      ->check(CLI::Range(1, 86400));
  cli.add_option("--terminated-pod-gc-threshold", options.terminated_pod_gc_threshold,
                 "Terminated pods kept before the pod GC deletes the oldest "
                 "(default 12500; 0 = never)")
      ->check(CLI::Range(0, 100000000));
  cli.add_option("--pod-gc-quarantine", options.pod_gc_quarantine_seconds,
                 "Seconds a pod's node must stay missing before the pod GC deletes the pod "
                 "(default 40)")
      ->check(CLI::Range(1, 86400));
  cli.add_option("--hollow-nodes", options.hollow_nodes,
                 "Register N hollow nodes with fake kubelets (testing and benchmarks)")
      ->check(CLI::Range(0, 100000));
  cli.add_option("--hollow-pod-start-delay-ms", options.hollow_pod_start_delay_ms,
                 "How long a hollow node takes to start a pod")
      ->check(CLI::Range(0, 3600000));
  cli.add_flag("!--no-log-stderr", options.log_to_stderr, "Log to the log file only");
  cli.add_option("--addons-dir", options.addon_dirs,
                 "Also look for addon libraries in DIR (repeatable; searched first)")
      ->type_name("DIR");
  cli.add_option("--store-history", options.store_history_revisions,
                 "Revisions of history the datastore keeps before compacting")
      ->check(CLI::PositiveNumber);
  cli.add_option("--store-compaction-interval", compaction_seconds,
                 "Seconds between automatic datastore compactions")
      ->check(CLI::PositiveNumber);
  int64_t certificate_check_seconds = options.certificate_check_interval.count();
  cli.add_option("--certificate-check-interval", certificate_check_seconds,
                 "Seconds between checks for TLS certificates due for renewal, which are then "
                 "renewed and served without a restart (default 3600)")
      ->check(CLI::Range(1, 86400 * 30));
  std::string components = "apiserver,controllers,scheduler,kubelet,proxy";
  if (const char* env = std::getenv("MK8S_COMPONENTS"); env != nullptr && *env != '\0') {
    components = env;
  }
  cli.add_option("--components", components,
                 "Comma-separated parts to run: apiserver, controllers, scheduler, kubelet, proxy, or none "
                 "(default all, or $MK8S_COMPONENTS; without apiserver, --kubeconfig names the API server)");
  cli.add_option("--node-name", options.node_name, "This node's name (default: the host name)");
  cli.add_option("--node-ip", options.node_ip,
                 "This node's IPv4 address (default: the first non-loopback address)");
  cli.add_option("--proxy-chain-prefix", options.proxy_chain_prefix,
                 "iptables chain prefix of kube-proxy, at most 10 characters (default MK8S-<hash "
                 "of the state folder>)");
  cli.add_option("--kubelet-port", options.kubelet_port,
                 "Port of the kubelet's HTTPS API (default 10250; 0 = any free port)")
      ->check(CLI::Range(0, 65535));
  std::vector<std::string> extended_resources;
  cli.add_option("--node-extended-resource", extended_resources,
                 "An extended resource this node offers, NAME=QUANTITY (e.g. nvidia.com/gpu=1; "
                 "repeatable)")
      ->type_name("NAME=QTY");
  cli.add_option("--eviction-hard", options.eviction_hard,
                 "The kubelet's hard eviction thresholds, SIGNAL<QUANTITY|PERCENT,... (default "
                 "memory.available<100Mi,nodefs.available<1Gi,imagefs.available<1Gi, as MicroK8s; "
                 "\"\" for none): while one is met the node reports pressure, refuses new pods and "
                 "evicts pods one at a time")
      ->type_name("LIST");
  cli.add_option("--eviction-soft", options.eviction_soft,
                 "The kubelet's soft eviction thresholds, same syntax as --eviction-hard (default "
                 "none): one met sets the node's pressure condition at once, but pods are evicted "
                 "only once it has held for its --eviction-soft-grace-period")
      ->type_name("LIST");
  cli.add_option("--eviction-soft-grace-period", options.eviction_soft_grace_period,
                 "How long each soft eviction threshold must hold before pods are evicted, "
                 "SIGNAL=DURATION,... (e.g. memory.available=1m30s); every --eviction-soft "
                 "signal needs one")
      ->type_name("LIST");
  cli.add_option("--eviction-max-pod-grace-period", options.eviction_max_pod_grace_period,
                 "Most seconds a pod evicted for a soft threshold gets to stop: the smaller of "
                 "this and its terminationGracePeriodSeconds (default 0, as upstream: at once; "
                 "negative: the pod's own). Hard evictions always allow 1 s");
  cli.add_option("--image-gc-high-threshold", options.image_gc_high_threshold,
                 "Image filesystem usage (percent) at which unused images are removed (default 85; "
                 "100 disables image garbage collection)");
  cli.add_option("--image-gc-low-threshold", options.image_gc_low_threshold,
                 "Image filesystem usage (percent) image garbage collection frees down to (default 80)");
  AddDurationOption(cli, "--image-minimum-gc-age", &options.image_minimum_gc_age,
                    "Images younger than this are never removed (default 2m)");
  AddDurationOption(cli, "--image-gc-period", &options.image_gc_period,
                    "How often the image filesystem is checked (default 5m; tests shorten it)");
  std::vector<std::string> registry_mirrors;
  cli.add_option("--registry-mirror", registry_mirrors,
                 "A plain-HTTP registry for containerd, HOST=URL (repeatable; default "
                 "localhost:32000=http://127.0.0.1:32000, the registry addon)")
      ->type_name("HOST=URL");
  bool proxy_cleanup = false;
  cli.add_flag("--proxy-cleanup", proxy_cleanup,
               "Remove this daemon's kube-proxy iptables rules (see --proxy-chain-prefix) and exit");
  cli.add_option("--server", options.server,
                 "API server URL for --components without apiserver (overrides the kubeconfig's)");
  cli.add_option("--kubeconfig", options.kubeconfig,
                 "Credentials for a remote API server (--components without apiserver)");
  cli.add_option("--leader-elect", options.leader_elect,
                 "Elect one active controller manager and scheduler through Leases (default true)");
  cli.add_option("--leader-elect-identity", options.leader_elect_identity,
                 "This candidate's name in the Leases (default <hostname>_<state folder hash>)");
  AddDurationOption(cli, "--leader-elect-lease-duration", &options.leader_elect_lease_duration,
                    "How long a standby waits on an unrenewed Lease (default 15s)");
  AddDurationOption(cli, "--leader-elect-renew-deadline", &options.leader_elect_renew_deadline,
                    "How long the leader retries renewing before it steps down (default 10s)");
  AddDurationOption(cli, "--leader-elect-retry-period", &options.leader_elect_retry_period,
                    "Between election attempts and renewals (default 2s)");
  cli.set_version_flag("--version", mk8s::kVersion);
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    if (error.get_exit_code() == 0) return cli.exit(error);  // --help, --version
    std::fprintf(stderr, "mk8sd: %s. Run 'mk8sd --help'.\n", error.what());
    return 2;
  }
  options.store_compaction_interval = std::chrono::seconds(compaction_seconds);
  options.certificate_check_interval = std::chrono::seconds(certificate_check_seconds);
  if (proxy_cleanup) return mk8s::app::CleanUpProxyRules(options);
  const std::set<std::string> known = {"apiserver", "controllers", "scheduler", "proxy",
                                       "kubelet"};
  std::set<std::string> wanted;
  std::stringstream list(components);
  for (std::string part; std::getline(list, part, ',');) {
    if (part.empty() || part == "none") continue;  // "none": e.g. only --hollow-nodes
    if (known.count(part) == 0) {
      std::fprintf(stderr,
                   "mk8sd: unknown component '%s' in --components; use apiserver, controllers, "
                   "scheduler, kubelet or proxy.\n",
                   part.c_str());
      return 2;
    }
    wanted.insert(part);
  }
  options.run_apiserver = wanted.count("apiserver") != 0;
  options.run_controllers = wanted.count("controllers") != 0;
  options.run_scheduler = wanted.count("scheduler") != 0;
  options.run_proxy = wanted.count("proxy") != 0;
  options.run_kubelet = wanted.count("kubelet") != 0;
  for (const std::string& resource : extended_resources) {
    const size_t equals = resource.find('=');
    if (equals == std::string::npos || equals == 0 || equals + 1 == resource.size()) {
      std::fprintf(stderr, "mk8sd: --node-extended-resource '%s' is not NAME=QUANTITY (e.g. "
                           "nvidia.com/gpu=1).\n", resource.c_str());
      return 2;
    }
    options.node_extended_resources.emplace_back(resource.substr(0, equals),
                                                  resource.substr(equals + 1));
  }
  if (auto thresholds = mk8s::kubelet::ParseEvictionHard(options.eviction_hard); !thresholds.ok()) {
    std::fprintf(stderr, "mk8sd: --eviction-hard: %s.\n", thresholds.status().message().c_str());
    return 2;
  }
  if (auto soft = mk8s::kubelet::ParseEvictionSoft(options.eviction_soft,
                                                   options.eviction_soft_grace_period);
      !soft.ok()) {
    std::fprintf(stderr, "mk8sd: --eviction-soft: %s.\n", soft.status().message().c_str());
    return 2;
  }
  mk8s::kubelet::ImageGcOptions image_gc;
  image_gc.high_threshold_percent = options.image_gc_high_threshold;
  image_gc.low_threshold_percent = options.image_gc_low_threshold;
  if (mk8s::Status valid = mk8s::kubelet::ValidateImageGcOptions(image_gc); !valid.ok()) {
    std::fprintf(stderr, "mk8sd: %s.\n", valid.message().c_str());
    return 2;
  }
  if (registry_mirrors.empty()) registry_mirrors = {"localhost:32000=http://127.0.0.1:32000"};
  for (const std::string& value : registry_mirrors) {
    auto mirror = mk8s::runtime::ParseRegistryMirror(value);
    if (!mirror.ok()) {
      std::fprintf(stderr, "mk8sd: --registry-mirror: %s.\n", mirror.status().message().c_str());
      return 2;
    }
    options.registry_mirrors[mirror->first] = mirror->second;
  }
  if (!options.run_apiserver && options.kubeconfig.empty()) {
    std::fprintf(stderr, "mk8sd: --components without apiserver needs --kubeconfig (and "
                         "optionally --server) to reach an API server.\n");
    return 2;
  }
  if (options.leader_elect_renew_deadline >= options.leader_elect_lease_duration) {
    std::fprintf(stderr, "mk8sd: --leader-elect-renew-deadline must be shorter than "
                         "--leader-elect-lease-duration.\n");
    return 2;
  }
  return mk8s::app::Run(options);
}
