// Rule generation for kube-proxy's iptables mode: a ServiceSnapshot in, the text of one
// `iptables-restore --noflush` transaction (nat and filter tables) out. Pure: no I/O, no threads.
//
// Only chains named "<prefix>-..." are declared (which flushes them) and rewritten; chains of
// ours that exist but are no longer wanted (a deleted service or endpoint) are flushed and
// deleted in the same transaction. The jumps from the built-in chains into ours are not part of
// the transaction: BuiltinJumps() lists them for the caller to ensure once (`iptables -C`/`-I`).
//
// Layout (upstream's KUBE-* chains with our prefix P):
//   nat    P-SERVICES      ClusterIP / external IP matches -> P-SVC-x / P-EXT-x; last: local
//                          destinations -> P-NODEPORTS
//          P-NODEPORTS     node port matches -> P-EXT-x
//          P-EXT-x         mark for masquerade, then P-SVC-x
//          P-SVC-x         mark off-cluster sources; affinity (-m recent); random spread
//                          (-m statistic, probability 1/n, 1/(n-1), ..., 1) over P-SEP-y
//          P-SEP-y         hairpin mark; DNAT to the endpoint
//          P-MARK-MASQ     sets the masquerade mark bit
//          P-POSTROUTING   MASQUERADE marked packets (clearing the bit)
//   filter P-SERVICES      REJECT for cluster IPs without endpoints (from OUTPUT, FORWARD)
//          P-EXTERNAL-SERVICES REJECT for node ports / external IPs without endpoints (INPUT,
//          FORWARD) P-FORWARD       accept marked and established forwarded traffic
#pragma once

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "proxy/service_snapshot.h"

namespace mk8s::proxy {

// Longest chain prefix: "<prefix>-SVC-<12 chars>" stays within iptables' 28-character limit.
inline constexpr size_t kMaxChainPrefixLength = 10;

struct RuleOptions {
  std::string chain_prefix = "MK8S";         // letters, digits and '-'; see ValidateRuleOptions
  std::string cluster_cidr = "10.1.0.0/16";  // sources outside it are masqueraded to cluster IPs
  int masquerade_bit = 14;                   // mark bit 0x4000, as upstream
};

// Checks the prefix (1..kMaxChainPrefixLength characters of [A-Za-z0-9-], not a built-in
// chain's name), the CIDR's shape and the mark bit (0..31).
Status ValidateRuleOptions(const RuleOptions& options);

// Chains of ours currently present in the kernel, per table (from ParseChains).
struct ExistingChains {
  std::set<std::string> nat;
  std::set<std::string> filter;
};

// The chain names declared by an `iptables-save -t <table>` output (":NAME POLICY [p:b]" lines).
std::set<std::string> ParseChains(const std::string& iptables_save_output);

// The per-service and per-endpoint chain names (stable hashes of the service port name and
// protocol, plus the endpoint for P-SEP).
std::string ServiceChain(const std::string& prefix, const ServicePort& port);
std::string ExternalChain(const std::string& prefix, const ServicePort& port);
std::string EndpointChain(const std::string& prefix, const ServicePort& port, const Endpoint& e);

// The full iptables-restore input (both tables, each ending in COMMIT), and the chains of ours
// that exist once it is applied (the next sync's `existing`).
struct RuleSet {
  std::string text;
  ExistingChains chains;
};
RuleSet GenerateRules(const ServiceSnapshot& snapshot, const RuleOptions& options,
                      const ExistingChains& existing);

// An iptables-restore input that flushes and deletes every existing chain of ours.
// Run after the built-in jumps are removed. Empty when there is nothing to delete.
std::string GenerateCleanUp(const RuleOptions& options, const ExistingChains& existing);

// A rule in a built-in chain that jumps into ours: `iptables -t <table> -I <chain> <args...>`.
struct BuiltinJump {
  std::string table;
  std::string chain;
  std::vector<std::string> args;  // match + "-j" target, as separate argv words
};
std::vector<BuiltinJump> BuiltinJumps(const RuleOptions& options);

// True for a chain name owned by the instance with this prefix ("<prefix>-...").
bool OwnedChain(const std::string& prefix, const std::string& chain);

}  // namespace mk8s::proxy
