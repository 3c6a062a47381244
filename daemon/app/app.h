// The daemon's top level: take the state folder, start every component, run until told to stop.
#pragma once

#include "app/options.h"

namespace mk8s::app {

// Runs mk8sd in the foreground until SIGTERM/SIGINT or a Stop request. Returns the process exit
// code. Errors are logged and printed as one line on stderr; nothing throws out of here.
int Run(const DaemonOptions& options);

// `mk8sd --proxy-cleanup`: removes the iptables rules and chains of this daemon's kube-proxy
// (its --proxy-chain-prefix, or the default one of its state folder) and returns the exit code.
// Like upstream `kube-proxy --cleanup`; for `mk8s reset` and tests.
int CleanUpProxyRules(const DaemonOptions& options);

}  // namespace mk8s::app
