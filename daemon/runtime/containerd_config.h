// Text of the files the bundled containerd reads: its config.toml, the CNI conflist of the node's
// pod network and certs.d hosts.toml files for plain-HTTP registry mirrors.
//
// Pure functions (no I/O): callers write the text where ContainerdPaths says. See
// shared/reference/containerd-cri.md for why each setting is there (notably
// restrict_oom_score_adj, without which every sandbox fails to start here).
#pragma once

#include <string>

#include "common/status.h"

namespace mk8s::runtime {

// Everything of one containerd instance lives under one folder (<mk8s state>/containerd), so
// several daemons run side by side. Paths are absolute when state_dir is.
struct ContainerdPaths {
  explicit ContainerdPaths(const std::string& state_dir);

  std::string dir;          // the folder itself
  std::string config_file;  // config.toml
  std::string root;         // persistent data (content store, snapshots, metadata)
  std::string state;        // runtime state (tmp-like)
  std::string socket;       // gRPC socket: CRI and containerd's API (ctr -a)
  std::string runc_root;    // runc's state folder
  std::string opt;          // the opt plugin's folder
  std::string certs_d;      // registry hosts: certs.d/<host>/hosts.toml
  std::string pid_file;     // pid of the containerd process we launched
  std::string log_file;     // default stdout/stderr of containerd
};

struct ContainerdConfigOptions {
  std::string state_dir;  // <mk8s state>/containerd (see ContainerdPaths)
  std::string cni_bin_dir = "/usr/lib/cni";
  std::string cni_conf_dir;  // where the conflist is written
  std::string runc_binary = "/usr/sbin/runc";
  std::string sandbox_image;  // e.g. localhost/mk8s/pause:0.1.0 (imported, never pulled)
  std::string log_level = "info";
};

// config.toml (version 2) for options. Fails on an empty state_dir, cni_conf_dir or sandbox_image,
// or a socket path too long for a unix socket.
Result<std::string> ContainerdConfigToml(const ContainerdConfigOptions& options);

struct CniNetworkOptions {
  std::string network_name = "mk8s";
  std::string bridge_name;    // the Linux bridge, 1..15 chars; unique per daemon (e.g. "mk8s0")
  std::string subnet;         // the node's pod subnet, IPv4 CIDR, e.g. "10.1.7.0/24"
  std::string gateway;        // "" = the subnet's first address (given to the bridge)
  std::string ipam_data_dir;  // host-local's lease folder; unique per daemon
  bool ip_masq = true;        // SNAT traffic leaving the pod subnet
  int mtu = 0;                // 0 = the plugin's default
};

// A CNI conflist (cniVersion 1.0.0): bridge + host-local IPAM with a default route, then portmap
// (capabilities.portMappings). Fails with kInvalidArgument on a bad subnet, gateway outside the
// subnet, bridge name, or an empty name/data dir.
Result<std::string> CniConflist(const CniNetworkOptions& options);

// certs.d/<host>/hosts.toml making `host` (e.g. "localhost:32000") resolve and pull through
// `server_url` (e.g. "http://127.0.0.1:32000"). Fails on a URL without http:// or https://.
Result<std::string> RegistryHostsToml(const std::string& server_url);

// Quotes s as a TOML basic string ("..." with \\, \" and control characters escaped).
std::string TomlQuote(const std::string& s);

}  // namespace mk8s::runtime
