// Unit tests of the generated containerd config, CNI conflist and registry hosts files, and of
// the small process helpers.
#include "runtime/containerd_config.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/process_util.h"

namespace mk8s::runtime {
namespace {

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    const auto first = line.find_first_not_of(' ');
    out.push_back(first == std::string::npos ? "" : line.substr(first));
  }
  return out;
}

bool HasLine(const std::string& text, const std::string& line) {
  for (const auto& l : Lines(text)) {
    if (l == line) return true;
  }
  return false;
}

// The value of `key = ...` inside [section] (sections matched exactly, keys trimmed).
std::string TomlValue(const std::string& text, const std::string& section, const std::string& key) {
  std::string current;
  for (const auto& l : Lines(text)) {
    if (!l.empty() && l[0] == '[') {
      current = l;
      continue;
    }
    if (current == section && l.rfind(key + " = ", 0) == 0) return l.substr(key.size() + 3);
  }
  return "<missing>";
}

ContainerdConfigOptions Options() {
  ContainerdConfigOptions o;
  o.state_dir = "/var/lib/mk8s/containerd";
  o.cni_conf_dir = "/var/lib/mk8s/cni/net.d";
  o.runc_binary = "/usr/sbin/runc";
  o.sandbox_image = "localhost/mk8s/pause:0.1.0";
  return o;
}

TEST(ContainerdConfig, HasOwnPathsAndTheOomTrapFix) {
  auto toml = ContainerdConfigToml(Options());
  ASSERT_TRUE(toml.ok()) << toml.status().ToString();
  const std::string& t = *toml;
  const std::string cri = "[plugins.\"io.containerd.grpc.v1.cri\"";
  EXPECT_TRUE(HasLine(t, "version = 2"));
  EXPECT_EQ(TomlValue(t, "", "root"), "\"/var/lib/mk8s/containerd/root\"");
  EXPECT_EQ(TomlValue(t, "", "state"), "\"/var/lib/mk8s/containerd/state\"");
  EXPECT_EQ(TomlValue(t, "[grpc]", "address"), "\"/var/lib/mk8s/containerd/containerd.sock\"");
  EXPECT_EQ(TomlValue(t, "[plugins.\"io.containerd.internal.v1.opt\"]", "path"),
            "\"/var/lib/mk8s/containerd/opt\"");
  EXPECT_EQ(TomlValue(t, cri + "]", "sandbox_image"), "\"localhost/mk8s/pause:0.1.0\"");
  EXPECT_EQ(TomlValue(t, cri + "]", "restrict_oom_score_adj"), "true");
  EXPECT_EQ(TomlValue(t, cri + "]", "netns_mounts_under_state_dir"), "true");
  EXPECT_EQ(TomlValue(t, cri + ".containerd]", "snapshotter"), "\"overlayfs\"");
  EXPECT_EQ(TomlValue(t, cri + ".containerd.runtimes.runc]", "runtime_type"),
            "\"io.containerd.runc.v2\"");
  EXPECT_EQ(TomlValue(t, cri + ".containerd.runtimes.runc.options]", "BinaryName"),
            "\"/usr/sbin/runc\"");
  EXPECT_EQ(TomlValue(t, cri + ".containerd.runtimes.runc.options]", "Root"),
            "\"/var/lib/mk8s/containerd/runc\"");
  EXPECT_EQ(TomlValue(t, cri + ".containerd.runtimes.runc.options]", "SystemdCgroup"), "false");
  EXPECT_EQ(TomlValue(t, cri + ".cni]", "bin_dir"), "\"/usr/lib/cni\"");
  EXPECT_EQ(TomlValue(t, cri + ".cni]", "conf_dir"), "\"/var/lib/mk8s/cni/net.d\"");
  EXPECT_EQ(TomlValue(t, cri + ".registry]", "config_path"),
            "\"/var/lib/mk8s/containerd/certs.d\"");
}

TEST(ContainerdConfig, RejectsMissingInputsAndLongSockets) {
  auto o = Options();
  o.sandbox_image.clear();
  EXPECT_EQ(ContainerdConfigToml(o).status().code(), Code::kInvalidArgument);
  o = Options();
  o.state_dir = "/" + std::string(120, 'x');
  auto r = ContainerdConfigToml(o);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("shorter state folder"), std::string::npos);
}

TEST(ContainerdConfig, QuotesTomlStrings) {
  EXPECT_EQ(TomlQuote("a\"b\\c\n"), "\"a\\\"b\\\\c\\n\"");
  auto o = Options();
  o.sandbox_image = "x\"y";
  EXPECT_EQ(TomlValue(*ContainerdConfigToml(o), "[plugins.\"io.containerd.grpc.v1.cri\"]",
                      "sandbox_image"),
            "\"x\\\"y\"");
}

CniNetworkOptions Net() {
  CniNetworkOptions o;
  o.bridge_name = "mk8s0";
  o.subnet = "10.1.7.0/24";
  o.ipam_data_dir = "/var/lib/mk8s/cni/ipam";
  return o;
}

TEST(CniConflist, BridgeHostLocalAndPortmap) {
  auto text = CniConflist(Net());
  ASSERT_TRUE(text.ok()) << text.status().ToString();
  const auto j = nlohmann::json::parse(*text);
  EXPECT_EQ(j["cniVersion"], "1.0.0");
  EXPECT_EQ(j["name"], "mk8s");
  ASSERT_EQ(j["plugins"].size(), 2u);
  const auto& bridge = j["plugins"][0];
  EXPECT_EQ(bridge["type"], "bridge");
  EXPECT_EQ(bridge["bridge"], "mk8s0");
  EXPECT_EQ(bridge["isGateway"], true);
  EXPECT_EQ(bridge["hairpinMode"], true);
  EXPECT_EQ(bridge["ipMasq"], true);
  EXPECT_FALSE(bridge.contains("mtu"));
  const auto& ipam = bridge["ipam"];
  EXPECT_EQ(ipam["type"], "host-local");
  EXPECT_EQ(ipam["dataDir"], "/var/lib/mk8s/cni/ipam");
  EXPECT_EQ(ipam["ranges"][0][0]["subnet"], "10.1.7.0/24");
  EXPECT_EQ(ipam["ranges"][0][0]["gateway"], "10.1.7.1");
  EXPECT_EQ(ipam["routes"][0]["dst"], "0.0.0.0/0");
  const auto& portmap = j["plugins"][1];
  EXPECT_EQ(portmap["type"], "portmap");
  EXPECT_EQ(portmap["capabilities"]["portMappings"], true);
}

TEST(CniConflist, ExplicitGatewayAndMtu) {
  auto o = Net();
  o.gateway = "10.1.7.254";
  o.mtu = 1400;
  o.ip_masq = false;
  const auto j = nlohmann::json::parse(*CniConflist(o));
  EXPECT_EQ(j["plugins"][0]["ipam"]["ranges"][0][0]["gateway"], "10.1.7.254");
  EXPECT_EQ(j["plugins"][0]["mtu"], 1400);
  EXPECT_EQ(j["plugins"][0]["ipMasq"], false);
}

TEST(CniConflist, RejectsBadInput) {
  for (const std::string subnet : {"", "10.1.7.0", "10.1.7.0/33", "10.1.7.0/x", "10.1.7.5/24",
                                   "300.1.1.0/24", "10.1.7.0/24x"}) {
    auto o = Net();
    o.subnet = subnet;
    auto r = CniConflist(o);
    EXPECT_EQ(r.status().code(), Code::kInvalidArgument) << subnet;
  }
  auto o = Net();
  o.bridge_name = "a-very-long-bridge-name";
  EXPECT_EQ(CniConflist(o).status().code(), Code::kInvalidArgument);
  o = Net();
  o.gateway = "10.1.8.1";
  EXPECT_EQ(CniConflist(o).status().code(), Code::kInvalidArgument);
  o = Net();
  o.gateway = "10.1.7.255";
  EXPECT_EQ(CniConflist(o).status().code(), Code::kInvalidArgument);
  o = Net();
  o.ipam_data_dir.clear();
  EXPECT_EQ(CniConflist(o).status().code(), Code::kInvalidArgument);
}

TEST(RegistryHosts, PlainHttpMirror) {
  auto t = RegistryHostsToml("http://127.0.0.1:32000");
  ASSERT_TRUE(t.ok());
  EXPECT_TRUE(HasLine(*t, "server = \"http://127.0.0.1:32000\""));
  EXPECT_TRUE(HasLine(*t, "[host.\"http://127.0.0.1:32000\"]"));
  EXPECT_EQ(TomlValue(*t, "[host.\"http://127.0.0.1:32000\"]", "capabilities"),
            "[\"pull\", \"resolve\"]");
  EXPECT_EQ(RegistryHostsToml("127.0.0.1:32000").status().code(), Code::kInvalidArgument);
  EXPECT_EQ(RegistryHostsToml("http://").status().code(), Code::kInvalidArgument);
}

TEST(ContainerdPaths, AllUnderTheStateFolder) {
  const ContainerdPaths p("/s/containerd");
  for (const auto& path : {p.config_file, p.root, p.state, p.socket, p.runc_root, p.opt, p.certs_d,
                           p.pid_file, p.log_file}) {
    EXPECT_EQ(path.rfind("/s/containerd/", 0), 0u) << path;
  }
}

TEST(ProcessUtil, RunCommandCapturesOutputAndExitCode) {
  auto r =
      RunCommand({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}, std::chrono::seconds(10));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->exit_code, 3);
  EXPECT_NE(r->output.find("out"), std::string::npos);
  EXPECT_NE(r->output.find("err"), std::string::npos);
  EXPECT_EQ(RunCommand({"sh"}, std::chrono::seconds(1)).status().code(), Code::kInvalidArgument);
  EXPECT_EQ(RunCommand({"/nonexistent/x"}, std::chrono::seconds(1)).status().code(),
            Code::kNotFound);
  auto slow = RunCommand({"/bin/sh", "-c", "exec sleep 30"}, std::chrono::milliseconds(100));
  EXPECT_EQ(slow.status().code(), Code::kDeadlineExceeded);
}

TEST(ProcessUtil, FileTailAndAtomicWrite) {
  const std::string path = ::testing::TempDir() + "/mk8s-tail-test.txt";
  ASSERT_TRUE(WriteFileAtomic(path, "a\nb\nc\nd\n").ok());
  EXPECT_EQ(FileTail(path, 2), "c\nd");
  EXPECT_EQ(FileTail(path, 10), "a\nb\nc\nd");
  EXPECT_EQ(FileTail(path + ".missing", 3), "");
  ASSERT_TRUE(WriteFileAtomic(path, "").ok());
  EXPECT_EQ(FileTail(path, 3), "");
  ASSERT_TRUE(WriteFileAtomic(path, "\n\n").ok());
  EXPECT_EQ(FileTail(path, 3), "");
  ASSERT_TRUE(WriteFileAtomic(path, "one line").ok());
  EXPECT_EQ(FileTail(path, 3), "one line");
  EXPECT_EQ(FileTail(path, 0), "");
}

}  // namespace
}  // namespace mk8s::runtime
