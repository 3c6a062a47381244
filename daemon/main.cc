// mk8sd: parse flags, then hand over to app::Run.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>

#include "app/app.h"
#include "common/paths.h"
#include "common/version.h"

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
  cli.add_option("--hollow-nodes", options.hollow_nodes,
                 "Register N hollow nodes with fake kubelets (testing and benchmarks)")
      ->check(CLI::Range(0, 100000));
  cli.add_option("--hollow-pod-start-delay-ms", options.hollow_pod_start_delay_ms,
                 "How long a hollow node takes to start a pod")
      ->check(CLI::Range(0, 3600000));
  cli.add_flag("!--no-log-stderr", options.log_to_stderr, "Log to the log file only");
  cli.add_option("--store-history", options.store_history_revisions,
                 "Revisions of history the datastore keeps before compacting")
      ->check(CLI::PositiveNumber);
  cli.add_option("--store-compaction-interval", compaction_seconds,
                 "Seconds between automatic datastore compactions")
      ->check(CLI::PositiveNumber);
  cli.set_version_flag("--version", mk8s::kVersion);
  try {
    cli.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    if (error.get_exit_code() == 0) return cli.exit(error);  // --help, --version
    std::fprintf(stderr, "mk8sd: %s. Run 'mk8sd --help'.\n", error.what());
    return 2;
  }
  options.store_compaction_interval = std::chrono::seconds(compaction_seconds);
  return mk8s::app::Run(options);
}
