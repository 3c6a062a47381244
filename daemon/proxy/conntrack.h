// Stale UDP flows. UDP has no connection to end, so after the rules change the kernel's
// conntrack entries would keep steering a client's packets to an endpoint that is gone (or keep
// the "no endpoints" verdict for a service that just got some) until they time out. As upstream
// kube-proxy does, after each successful sync we delete those entries with the conntrack tool.
//
// StaleUdpFlows() is pure (old and new snapshot in, conntrack argv lists out); the caller runs
// them. TCP and SCTP need nothing: their flows end and new ones follow the new rules.
#pragma once

#include <string>
#include <vector>

#include "proxy/service_snapshot.h"

namespace mk8s::proxy {

// Each entry: the arguments after `conntrack` (e.g. {"-D", "-p", "udp", "--orig-dst", ...}).
//  - a UDP service IP (cluster or external) whose usable endpoints went from none to some:
//    every flow to that IP;
//  - a UDP endpoint no longer usable (or its service port gone): flows NATed to it from the
//    service's IPs and node port.
std::vector<std::vector<std::string>> StaleUdpFlows(const ServiceSnapshot& before,
                                                    const ServiceSnapshot& after);

}  // namespace mk8s::proxy
