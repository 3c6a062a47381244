// Iptables: runs the iptables tools (iptables-restore, iptables-save, iptables) as child
// processes: posix_spawn with an argv (never a shell), stdin fed from a string, stdout/stderr
// captured, a deadline after which the child is killed.
//
// Thread-safe (no shared state); each call blocks until its child exits. The tools take the
// xtables lock themselves (-w), so concurrent callers are serialized by the kernel side.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/status.h"

namespace mk8s::proxy {

struct IptablesPaths {
  // Names without '/' are looked up in $PATH, then /usr/sbin and /sbin.
  std::string iptables = "iptables";
  std::string iptables_restore = "iptables-restore";
  std::string iptables_save = "iptables-save";
  std::string conntrack = "conntrack";       // optional: stale UDP flows are kept when missing
  std::chrono::milliseconds timeout{30000};  // per call
};

struct ProcessOutput {
  int exit_code = -1;  // -1 if killed or not run
  std::string out;
  std::string err;
};

// Runs argv[0] (resolved as above) with argv, feeding `input` to its stdin.
Result<ProcessOutput> RunProcess(const std::vector<std::string>& argv, const std::string& input,
                                 std::chrono::milliseconds timeout);

class Iptables {
 public:
  explicit Iptables(IptablesPaths paths) : paths_(std::move(paths)) {}

  // `iptables-restore -w 5 --noflush` with `input` on stdin: one transaction.
  Status Restore(const std::string& input) const;
  // `iptables-save -t <table>`.
  Result<std::string> Save(const std::string& table) const;
  // `iptables -w 5 -t <table> -C <chain> <args>`: true if the rule exists.
  Result<bool> Exists(const std::string& table, const std::string& chain,
                      const std::vector<std::string>& args) const;
  // `-I <chain> 1 <args>` (first position, as upstream) / `-D <chain> <args>`.
  Status Insert(const std::string& table, const std::string& chain,
                const std::vector<std::string>& args) const;
  Status Delete(const std::string& table, const std::string& chain,
                const std::vector<std::string>& args) const;
  // Creates a chain if missing (`-N`; "already exists" is fine).
  Status EnsureChain(const std::string& table, const std::string& chain) const;

 private:
  Result<ProcessOutput> Iptable(const std::string& table,
                                const std::vector<std::string>& args) const;
  const IptablesPaths paths_;
};

}  // namespace mk8s::proxy
