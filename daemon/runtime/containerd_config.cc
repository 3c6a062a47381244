#include "runtime/containerd_config.h"

#include <arpa/inet.h>

#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace mk8s::runtime {
namespace {

constexpr size_t kMaxUnixSocketPath = 107;  // sun_path is 108 bytes with the NUL

Status Invalid(const std::string& message) { return Status(Code::kInvalidArgument, message); }

bool ParseIPv4(const std::string& text, uint32_t* out) {
  in_addr addr{};
  if (::inet_pton(AF_INET, text.c_str(), &addr) != 1) return false;
  *out = ntohl(addr.s_addr);
  return true;
}

std::string FormatIPv4(uint32_t ip) {
  in_addr addr{};
  addr.s_addr = htonl(ip);
  char buf[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, &addr, buf, sizeof(buf));
  return buf;
}

}  // namespace

ContainerdPaths::ContainerdPaths(const std::string& state_dir)
    : dir(state_dir),
      config_file(state_dir + "/config.toml"),
      root(state_dir + "/root"),
      state(state_dir + "/state"),
      socket(state_dir + "/containerd.sock"),
      runc_root(state_dir + "/runc"),
      opt(state_dir + "/opt"),
      certs_d(state_dir + "/certs.d"),
      pid_file(state_dir + "/containerd.pid"),
      log_file(state_dir + "/containerd.log") {}

std::string TomlQuote(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

Result<std::string> ContainerdConfigToml(const ContainerdConfigOptions& o) {
  if (o.state_dir.empty()) return Invalid("containerd config: empty state folder");
  if (o.cni_conf_dir.empty()) return Invalid("containerd config: empty CNI config folder");
  if (o.sandbox_image.empty()) return Invalid("containerd config: empty sandbox (pause) image");
  const ContainerdPaths p(o.state_dir);
  // containerd also listens on <socket>.ttrpc.
  if (p.socket.size() + 6 > kMaxUnixSocketPath) {
    return Invalid("containerd config: socket path " + p.socket + " is longer than " +
                   std::to_string(kMaxUnixSocketPath - 6) +
                   " characters (unix socket limit): use a shorter state folder");
  }
  const std::string cri = "[plugins.\"io.containerd.grpc.v1.cri\"";
  std::string t;
  t += "# Written by mk8sd at every start; edits are overwritten.\n";
  t += "version = 2\n";
  t += "root = " + TomlQuote(p.root) + "\n";
  t += "state = " + TomlQuote(p.state) + "\n";
  t += "\n[grpc]\n  address = " + TomlQuote(p.socket) + "\n";
  t += "\n[debug]\n  level = " + TomlQuote(o.log_level) + "\n";
  t += "\n[plugins.\"io.containerd.internal.v1.opt\"]\n  path = " + TomlQuote(p.opt) + "\n";
  t += "\n" + cri + "]\n";
  t += "  sandbox_image = " + TomlQuote(o.sandbox_image) + "\n";
  t += "  netns_mounts_under_state_dir = true\n";
  // The sandbox lacks CAP_SYS_RESOURCE here: negative oom_score_adj values must be clamped.
  t += "  restrict_oom_score_adj = true\n";
  t += "  stream_server_address = \"127.0.0.1\"\n";
  t += "  stream_server_port = \"0\"\n";
  t += "  enable_tls_streaming = false\n";
  t += "\n  " + cri + ".containerd]\n";
  t += "    snapshotter = \"overlayfs\"\n";
  t += "    default_runtime_name = \"runc\"\n";
  t += "\n    " + cri + ".containerd.runtimes.runc]\n";
  t += "      runtime_type = \"io.containerd.runc.v2\"\n";
  t += "\n      " + cri + ".containerd.runtimes.runc.options]\n";
  t += "        BinaryName = " + TomlQuote(o.runc_binary) + "\n";
  t += "        Root = " + TomlQuote(p.runc_root) + "\n";
  t += "        SystemdCgroup = false\n";
  t += "\n  " + cri + ".cni]\n";
  t += "    bin_dir = " + TomlQuote(o.cni_bin_dir) + "\n";
  t += "    conf_dir = " + TomlQuote(o.cni_conf_dir) + "\n";
  t += "    max_conf_num = 1\n";
  t += "\n  " + cri + ".registry]\n";
  t += "    config_path = " + TomlQuote(p.certs_d) + "\n";
  return t;
}

Result<std::string> CniConflist(const CniNetworkOptions& o) {
  if (o.network_name.empty()) return Invalid("CNI config: empty network name");
  if (o.bridge_name.empty() || o.bridge_name.size() > 15) {
    return Invalid("CNI config: bridge name '" + o.bridge_name + "' must have 1 to 15 characters");
  }
  for (char c : o.bridge_name) {
    if (c == '/' || c == ' ' || c == ':' || static_cast<unsigned char>(c) < 0x21) {
      return Invalid("CNI config: bridge name '" + o.bridge_name + "' has a forbidden character");
    }
  }
  if (o.ipam_data_dir.empty()) return Invalid("CNI config: empty IPAM data folder");
  const auto slash = o.subnet.find('/');
  uint32_t base = 0;
  int prefix = -1;
  if (slash != std::string::npos && ParseIPv4(o.subnet.substr(0, slash), &base)) {
    try {
      size_t used = 0;
      prefix = std::stoi(o.subnet.substr(slash + 1), &used);
      if (used != o.subnet.size() - slash - 1) prefix = -1;
    } catch (const std::exception&) {
      prefix = -1;
    }
  }
  if (prefix < 8 || prefix > 30) {
    return Invalid("CNI config: pod subnet '" + o.subnet +
                   "' is not an IPv4 CIDR with a prefix of 8 to 30 bits (e.g. 10.1.7.0/24)");
  }
  const uint32_t mask = prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
  if ((base & ~mask) != 0) {
    return Invalid("CNI config: pod subnet '" + o.subnet + "' has host bits set; use " +
                   FormatIPv4(base & mask) + "/" + std::to_string(prefix));
  }
  uint32_t gateway = base + 1;
  if (!o.gateway.empty()) {
    if (!ParseIPv4(o.gateway, &gateway) || (gateway & mask) != base || gateway == base ||
        gateway == (base | ~mask)) {
      return Invalid("CNI config: gateway '" + o.gateway + "' is not a host address of " +
                     o.subnet);
    }
  }

  nlohmann::json bridge = {
      {"type", "bridge"},
      {"bridge", o.bridge_name},
      {"isGateway", true},
      {"hairpinMode", true},
      {"ipMasq", o.ip_masq},
      {"ipam",
       {{"type", "host-local"},
        {"dataDir", o.ipam_data_dir},
        {"ranges", nlohmann::json::array({nlohmann::json::array(
                       {{{"subnet", o.subnet}, {"gateway", FormatIPv4(gateway)}}})})},
        {"routes", nlohmann::json::array({{{"dst", "0.0.0.0/0"}}})}}},
  };
  if (o.mtu > 0) bridge["mtu"] = o.mtu;
  nlohmann::json portmap = {
      {"type", "portmap"}, {"capabilities", {{"portMappings", true}}}, {"snat", true}};
  nlohmann::json conflist = {{"cniVersion", "1.0.0"},
                             {"name", o.network_name},
                             {"plugins", nlohmann::json::array({bridge, portmap})}};
  return conflist.dump(2) + "\n";
}

Result<std::string> RegistryHostsToml(const std::string& server_url) {
  const bool http = server_url.rfind("http://", 0) == 0;
  const bool https = server_url.rfind("https://", 0) == 0;
  if ((!http && !https) || server_url.size() <= (http ? 7u : 8u)) {
    return Invalid("registry mirror '" + server_url +
                   "' must be a URL such as http://127.0.0.1:32000");
  }
  std::string t;
  t += "# Written by mk8sd.\n";
  t += "server = " + TomlQuote(server_url) + "\n\n";
  t += "[host." + TomlQuote(server_url) + "]\n";
  t += "  capabilities = [\"pull\", \"resolve\"]\n";
  if (http) t += "  skip_verify = true\n";
  return t;
}

}  // namespace mk8s::runtime
