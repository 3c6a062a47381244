#include "proxy/rules.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <sstream>

namespace mk8s::proxy {
namespace {

constexpr size_t kHashLength = 12;

// FNV-1a 64 bit, written out in base32 (A-Z, 2-7): a stable, chain-name-safe digest.
std::string Hash(const std::string& text) {
  uint64_t hash = 1469598103934665603ULL;
  for (unsigned char c : text) hash = (hash ^ c) * 1099511628211ULL;
  static const char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  std::string out;
  for (size_t i = 0; i < kHashLength; ++i) {
    out.push_back(kAlphabet[hash & 31]);
    hash >>= 5;
  }
  return out;
}

std::string Lower(std::string text) {
  for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return text;
}

// A comment argument, quoted for iptables-restore (quotes and backslashes dropped).
std::string Comment(const std::string& text) {
  std::string clean;
  for (char c : text) {
    if (c != '"' && c != '\\' && c != '\n') clean.push_back(c);
  }
  return "-m comment --comment \"" + clean + "\"";
}

// "-p tcp -m tcp --dport 80"
std::string PortMatch(const std::string& protocol, int port) {
  const std::string p = Lower(protocol);
  return "-p " + p + " -m " + p + " --dport " + std::to_string(port);
}

std::string MarkHex(int bit) {
  char buffer[16];
  std::snprintf(buffer, sizeof(buffer), "0x%x", 1u << bit);
  return buffer;
}

struct Names {
  explicit Names(const std::string& p)
      : services(p + "-SERVICES"),
        nodeports(p + "-NODEPORTS"),
        postrouting(p + "-POSTROUTING"),
        mark_masq(p + "-MARK-MASQ"),
        external_services(p + "-EXTERNAL-SERVICES"),
        forward(p + "-FORWARD") {}
  std::string services, nodeports, postrouting, mark_masq, external_services, forward;
};

// Accumulates one table: chain declarations first, then rules, then deletions.
class Table {
 public:
  void Chain(const std::string& name) {
    if (declared_.insert(name).second) chains_ << ":" << name << " - [0:0]\n";
  }
  void Rule(const std::string& chain, const std::string& rest) {
    rules_ << "-A " << chain << " " << rest << "\n";
  }
  // Declares (flushes) and deletes every existing owned chain not declared so far.
  void DeleteStale(const std::string& prefix, const std::set<std::string>& existing) {
    for (const std::string& chain : existing) {
      if (!OwnedChain(prefix, chain) || declared_.count(chain) != 0) continue;
      chains_ << ":" << chain << " - [0:0]\n";
      deletes_ << "-X " << chain << "\n";
    }
  }
  const std::set<std::string>& declared() const { return declared_; }
  bool empty() const { return declared_.empty() && deletes_.str().empty(); }
  std::string Text(const std::string& table) const {
    return "*" + table + "\n" + chains_.str() + rules_.str() + deletes_.str() + "COMMIT\n";
  }

 private:
  std::set<std::string> declared_;
  std::ostringstream chains_, rules_, deletes_;
};

}  // namespace

Status ValidateRuleOptions(const RuleOptions& options) {
  const std::string& p = options.chain_prefix;
  if (p.empty() || p.size() > kMaxChainPrefixLength) {
    return Status(Code::kInvalidArgument, "proxy chain prefix '" + p + "' must have 1 to " +
                                              std::to_string(kMaxChainPrefixLength) +
                                              " characters");
  }
  for (char c : p) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-') {
      return Status(Code::kInvalidArgument,
                    "proxy chain prefix '" + p + "' may hold only letters, digits and '-'");
    }
  }
  for (const char* builtin : {"INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING"}) {
    if (p == builtin) {
      return Status(Code::kInvalidArgument, "proxy chain prefix '" + p + "' is a built-in chain");
    }
  }
  const std::string& cidr = options.cluster_cidr;
  const size_t slash = cidr.find('/');
  int a = 0, b = 0, c = 0, d = 0, bits = -1;
  char tail = 0;
  if (slash == std::string::npos ||
      std::sscanf(cidr.c_str(), "%d.%d.%d.%d/%d%c", &a, &b, &c, &d, &bits, &tail) != 5 || a < 0 ||
      a > 255 || b < 0 || b > 255 || c < 0 || c > 255 || d < 0 || d > 255 || bits < 0 ||
      bits > 32) {
    return Status(Code::kInvalidArgument,
                  "cluster CIDR '" + cidr + "' is not an IPv4 CIDR like 10.1.0.0/16");
  }
  if (options.masquerade_bit < 0 || options.masquerade_bit > 31) {
    return Status(Code::kInvalidArgument, "masquerade mark bit must be in 0..31");
  }
  return Status::Ok();
}

bool OwnedChain(const std::string& prefix, const std::string& chain) {
  return chain.size() > prefix.size() + 1 && chain.compare(0, prefix.size(), prefix) == 0 &&
         chain[prefix.size()] == '-';
}

std::set<std::string> ParseChains(const std::string& output) {
  std::set<std::string> chains;
  std::istringstream lines(output);
  for (std::string line; std::getline(lines, line);) {
    if (line.size() < 2 || line[0] != ':') continue;
    const size_t end = line.find(' ');
    chains.insert(line.substr(1, end == std::string::npos ? std::string::npos : end - 1));
  }
  return chains;
}

std::string ServiceChain(const std::string& prefix, const ServicePort& port) {
  return prefix + "-SVC-" + Hash(port.Name() + port.protocol);
}

std::string ExternalChain(const std::string& prefix, const ServicePort& port) {
  return prefix + "-EXT-" + Hash(port.Name() + port.protocol);
}

std::string EndpointChain(const std::string& prefix, const ServicePort& port, const Endpoint& e) {
  return prefix + "-SEP-" + Hash(port.Name() + port.protocol + e.ip + ":" + std::to_string(e.port));
}

RuleSet GenerateRules(const ServiceSnapshot& snapshot, const RuleOptions& options,
                      const ExistingChains& existing) {
  const std::string& prefix = options.chain_prefix;
  const Names n(prefix);
  const std::string mark = MarkHex(options.masquerade_bit);
  Table nat, filter;
  for (const std::string& chain : {n.services, n.nodeports, n.postrouting, n.mark_masq}) {
    nat.Chain(chain);
  }
  for (const std::string& chain : {n.services, n.external_services, n.forward}) {
    filter.Chain(chain);
  }

  // Masquerade: mark, then MASQUERADE in POSTROUTING and clear the bit (it may be reused).
  nat.Rule(n.mark_masq, "-j MARK --or-mark " + mark);
  nat.Rule(n.postrouting, "-m mark ! --mark " + mark + "/" + mark + " -j RETURN");
  nat.Rule(n.postrouting, "-j MARK --xor-mark " + mark);
  nat.Rule(n.postrouting,
           Comment("kubernetes service traffic requiring SNAT") + " -j MASQUERADE --random-fully");
  filter.Rule(n.forward, Comment("forwarding rules for traffic marked for SNAT") +
                             " -m mark --mark " + mark + "/" + mark + " -j ACCEPT");
  filter.Rule(n.forward, Comment("established forwarded service traffic") +
                             " -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT");

  for (const ServicePort& port : snapshot.ports) {
    const std::string name = port.Name();
    const std::string match = PortMatch(port.protocol, port.port);
    const std::vector<Endpoint> endpoints = UsableEndpoints(port);
    if (endpoints.empty()) {
      // Nothing to DNAT to: reject at once so clients see "connection refused".
      if (!port.cluster_ip.empty()) {
        filter.Rule(n.services, Comment(name + " has no endpoints") + " -d " + port.cluster_ip +
                                    "/32 " + match + " -j REJECT");
      }
      for (const std::string& ip : port.external_ips) {
        filter.Rule(n.external_services, Comment(name + " has no endpoints") + " -d " + ip +
                                             "/32 " + match + " -j REJECT");
      }
      if (port.node_port != 0) {
        filter.Rule(n.external_services, Comment(name + " has no endpoints") +
                                             " ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL " +
                                             PortMatch(port.protocol, port.node_port) +
                                             " -j REJECT");
      }
      continue;
    }

    const std::string svc = ServiceChain(prefix, port);
    nat.Chain(svc);
    if (!port.cluster_ip.empty()) {
      const std::string dest = " -d " + port.cluster_ip + "/32 " + match;
      nat.Rule(n.services, Comment(name + " cluster IP") + dest + " -j " + svc);
      nat.Rule(svc, Comment(name + " cluster IP") + " ! -s " + options.cluster_cidr + dest +
                        " -j " + n.mark_masq);
    }
    if (port.node_port != 0 || !port.external_ips.empty()) {
      const std::string ext = ExternalChain(prefix, port);
      nat.Chain(ext);
      nat.Rule(ext, Comment("masquerade traffic for " + name + " external destinations") + " -j " +
                        n.mark_masq);
      nat.Rule(ext, "-j " + svc);
      for (const std::string& ip : port.external_ips) {
        nat.Rule(n.services,
                 Comment(name + " external IP") + " -d " + ip + "/32 " + match + " -j " + ext);
      }
      if (port.node_port != 0) {
        nat.Rule(n.nodeports,
                 Comment(name) + " " + PortMatch(port.protocol, port.node_port) + " -j " + ext);
      }
    }

    std::vector<std::string> sep_chains;
    for (const Endpoint& e : endpoints) sep_chains.push_back(EndpointChain(prefix, port, e));
    const std::string timeout = std::to_string(port.affinity_timeout_seconds);
    if (port.affinity_client_ip) {
      for (size_t i = 0; i < endpoints.size(); ++i) {
        nat.Rule(svc, Comment(name + " -> " + endpoints[i].ip + ":" +
                              std::to_string(endpoints[i].port)) +
                          " -m recent --name " + sep_chains[i] +
                          " --mask 255.255.255.255 --rsource --rcheck --seconds " + timeout +
                          " --reap -j " + sep_chains[i]);
      }
    }
    for (size_t i = 0; i < endpoints.size(); ++i) {
      const std::string target = endpoints[i].ip + ":" + std::to_string(endpoints[i].port);
      const size_t remaining = endpoints.size() - i;
      std::string rule = Comment(name + " -> " + target);
      if (remaining > 1) {
        char probability[32];
        std::snprintf(probability, sizeof(probability), "%0.10f", 1.0 / remaining);
        rule += " -m statistic --mode random --probability " + std::string(probability);
      }
      nat.Rule(svc, rule + " -j " + sep_chains[i]);

      const std::string& sep = sep_chains[i];
      nat.Chain(sep);
      nat.Rule(sep, Comment(name) + " -s " + endpoints[i].ip + "/32 -j " + n.mark_masq);
      std::string dnat = Comment(name) + " -p " + Lower(port.protocol);
      if (port.affinity_client_ip) {
        dnat += " -m recent --name " + sep + " --mask 255.255.255.255 --rsource --set";
      }
      dnat += " -m " + Lower(port.protocol) + " -j DNAT --to-destination " + target;
      nat.Rule(sep, dnat);
    }
  }
  // Node ports last, after every specific destination (not for 127/8: that needs route_localnet).
  nat.Rule(n.services,
           Comment("service nodeports; NOTE: this must be the last rule in this chain") +
               " ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j " + n.nodeports);

  RuleSet out;
  out.chains.nat = nat.declared();
  out.chains.filter = filter.declared();
  nat.DeleteStale(prefix, existing.nat);
  filter.DeleteStale(prefix, existing.filter);
  out.text = nat.Text("nat") + filter.Text("filter");
  return out;
}

std::string GenerateCleanUp(const RuleOptions& options, const ExistingChains& existing) {
  Table nat, filter;
  nat.DeleteStale(options.chain_prefix, existing.nat);
  filter.DeleteStale(options.chain_prefix, existing.filter);
  std::string text;
  if (!nat.empty()) text += nat.Text("nat");
  if (!filter.empty()) text += filter.Text("filter");
  return text;
}

std::vector<BuiltinJump> BuiltinJumps(const RuleOptions& options) {
  const std::string& p = options.chain_prefix;
  const Names n(p);
  auto jump = [](const std::string& comment, const std::string& target) {
    return std::vector<std::string>{"-m", "comment", "--comment", comment, "-j", target};
  };
  auto new_jump = [](const std::string& comment, const std::string& target) {
    return std::vector<std::string>{"-m",      "conntrack", "--ctstate", "NEW", "-m",
                                    "comment", "--comment", comment,     "-j",  target};
  };
  const std::string portals = p + " service portals";
  const std::string external = p + " externally-visible service portals";
  return {
      {"nat", "PREROUTING", jump(portals, n.services)},
      {"nat", "OUTPUT", jump(portals, n.services)},
      {"nat", "POSTROUTING", jump(p + " postrouting rules", n.postrouting)},
      {"filter", "INPUT", new_jump(external, n.external_services)},
      {"filter", "FORWARD", new_jump(portals, n.services)},
      {"filter", "FORWARD", new_jump(external, n.external_services)},
      {"filter", "FORWARD", jump(p + " forwarding rules", n.forward)},
      {"filter", "OUTPUT", new_jump(portals, n.services)},
  };
}

}  // namespace mk8s::proxy
