// GenerateRules: the iptables-restore text for a snapshot (upstream kube-proxy's layout).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <regex>
#include <sstream>

#include "fixtures.h"
#include "proxy/rules.h"

namespace mk8s::proxy {
namespace {

using namespace testing;  // NOLINT

RuleOptions Options() {
  RuleOptions options;
  options.chain_prefix = "T1";
  return options;
}

// Lines of `text` that contain every one of `parts`.
std::vector<std::string> Lines(const std::string& text, std::vector<std::string> parts) {
  std::vector<std::string> found;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    bool all = true;
    for (const std::string& part : parts) all = all && line.find(part) != std::string::npos;
    if (all) found.push_back(line);
  }
  return found;
}

// The lines between "*<table>" and its COMMIT.
std::string Table(const std::string& text, const std::string& table) {
  const size_t start = text.find("*" + table + "\n");
  if (start == std::string::npos) return "";
  return text.substr(start, text.find("COMMIT\n", start) - start);
}

ServicePort Find(const ServiceSnapshot& snapshot, const std::string& service) {
  for (const ServicePort& port : snapshot.ports) {
    if (port.service == service) return port;
  }
  ADD_FAILURE() << "no port for " << service;
  return {};
}

class RulesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    json node_port = Port(80, 8080, "web");
    node_port["nodePort"] = 30080;
    json named = Port(8443, 0, "https");
    named["targetPort"] = "tls";
    services_ = {
        Service("three", "10.152.183.10", {Port(80, 8080)}),
        Service("partly", "10.152.183.11", {Port(80, 8080)}),
        Service("empty", "10.152.183.12", {Port(80, 8080)}),
        Service("np", "10.152.183.13", {node_port}, {{"type", "NodePort"}}),
        Service("sticky", "10.152.183.14", {Port(80, 8080)}, {{"sessionAffinity", "ClientIP"}}),
        Service("dns", "10.152.183.10", {Port(53, 53, "dns", "UDP")}),
        Service("named", "10.152.183.15", {named}),
        Service("np-empty", "10.152.183.16", {node_port}, {{"type", "NodePort"}}),
    };
    slices_ = {
        Slice("three", {Ep("10.1.0.2"), Ep("10.1.0.3"), Ep("10.1.0.4")}, {SlicePort(8080)}),
        Slice("partly", {Ep("10.1.0.5"), Ep("10.1.0.6", false)}, {SlicePort(8080)}),
        Slice("np", {Ep("10.1.0.7")}, {SlicePort(8080, "web")}),
        Slice("sticky", {Ep("10.1.0.8"), Ep("10.1.0.9")}, {SlicePort(8080)}),
        Slice("dns", {Ep("10.1.0.10")}, {SlicePort(5353, "dns", "UDP")}),
        Slice("named", {Ep("10.1.0.11")}, {SlicePort(9443, "https")}),
    };
    snapshot_ = BuildSnapshot(services_, slices_);
    rules_ = GenerateRules(snapshot_, Options(), {});
    nat_ = Table(rules_.text, "nat");
    filter_ = Table(rules_.text, "filter");
  }

  Objects services_, slices_;
  ServiceSnapshot snapshot_;
  RuleSet rules_;
  std::string nat_, filter_;
};

TEST_F(RulesTest, ClusterIpSpreadsOverThreeEndpointsWithDecreasingProbabilities) {
  const ServicePort three = Find(snapshot_, "three");
  const std::string svc = ServiceChain("T1", three);
  ASSERT_EQ(
      Lines(nat_, {"-A T1-SERVICES", "-d 10.152.183.10/32 -p tcp -m tcp --dport 80", "-j " + svc})
          .size(),
      1u);
  EXPECT_EQ(
      Lines(nat_, {"-A " + svc, "! -s 10.1.0.0/16 -d 10.152.183.10/32", "-j T1-MARK-MASQ"}).size(),
      1u);
  const std::vector<std::string> spread = Lines(nat_, {"-A " + svc, "-j T1-SEP-"});
  ASSERT_EQ(spread.size(), 3u);
  EXPECT_NE(spread[0].find("--probability 0.3333333333"), std::string::npos) << spread[0];
  EXPECT_NE(spread[1].find("--probability 0.5000000000"), std::string::npos) << spread[1];
  EXPECT_EQ(spread[2].find("statistic"), std::string::npos) << spread[2];
  int index = 0;
  for (const char* ip : {"10.1.0.2", "10.1.0.3", "10.1.0.4"}) {
    const std::string sep = EndpointChain("T1", three, three.endpoints[index++]);
    EXPECT_NE(spread[index - 1].find("-j " + sep), std::string::npos);
    EXPECT_EQ(Lines(nat_, {":" + sep + " - [0:0]"}).size(), 1u);
    EXPECT_EQ(Lines(nat_, {"-A " + sep, std::string("-s ") + ip + "/32 -j T1-MARK-MASQ"}).size(),
              1u);
    EXPECT_EQ(Lines(nat_, {"-A " + sep,
                           "-p tcp -m tcp -j DNAT --to-destination " + std::string(ip) + ":8080"})
                  .size(),
              1u);
  }
}

TEST_F(RulesTest, NotReadyEndpointsAreLeftOut) {
  EXPECT_EQ(Lines(nat_, {"DNAT --to-destination 10.1.0.5:8080"}).size(), 1u);
  EXPECT_TRUE(Lines(nat_, {"10.1.0.6"}).empty());
  const std::string svc = ServiceChain("T1", Find(snapshot_, "partly"));
  const std::vector<std::string> spread = Lines(nat_, {"-A " + svc, "-j T1-SEP-"});
  ASSERT_EQ(spread.size(), 1u);
  EXPECT_EQ(spread[0].find("statistic"), std::string::npos);
}

TEST_F(RulesTest, ServiceWithoutEndpointsIsRejectedInFilter) {
  EXPECT_EQ(Lines(filter_, {"-A T1-SERVICES", "default/empty: has no endpoints",
                            "-d 10.152.183.12/32 -p tcp -m tcp --dport 80 -j REJECT"})
                .size(),
            1u);
  EXPECT_TRUE(Lines(nat_, {"10.152.183.12"}).empty());
  EXPECT_TRUE(Lines(rules_.text, {ServiceChain("T1", Find(snapshot_, "empty"))}).empty());
  // A node port without endpoints is rejected on local destinations.
  EXPECT_EQ(Lines(filter_, {"-A T1-EXTERNAL-SERVICES", "default/np-empty:web has no endpoints",
                            "-m addrtype --dst-type LOCAL -p tcp -m tcp --dport 30080 -j REJECT"})
                .size(),
            1u);
  // Services with endpoints have no REJECT.
  EXPECT_TRUE(Lines(filter_, {"10.152.183.11"}).empty());
}

TEST_F(RulesTest, NodePortGoesThroughTheMasqueradingExternalChain) {
  const ServicePort np = Find(snapshot_, "np");
  const std::string ext = ExternalChain("T1", np);
  const std::string svc = ServiceChain("T1", np);
  EXPECT_EQ(Lines(nat_, {"-A T1-NODEPORTS", "-p tcp -m tcp --dport 30080 -j " + ext}).size(), 1u);
  const std::vector<std::string> ext_rules = Lines(nat_, {"-A " + ext + " "});
  ASSERT_EQ(ext_rules.size(), 2u);
  EXPECT_NE(ext_rules[0].find("-j T1-MARK-MASQ"), std::string::npos);
  EXPECT_NE(ext_rules[1].find("-j " + svc), std::string::npos);
  // The jump to the node ports is the last rule of T1-SERVICES.
  const std::vector<std::string> services = Lines(nat_, {"-A T1-SERVICES "});
  ASSERT_FALSE(services.empty());
  EXPECT_NE(services.back().find("-m addrtype --dst-type LOCAL -j T1-NODEPORTS"),
            std::string::npos);
  // Masquerading: mark, then MASQUERADE marked packets in postrouting.
  EXPECT_EQ(Lines(nat_, {"-A T1-MARK-MASQ -j MARK --or-mark 0x4000"}).size(), 1u);
  EXPECT_EQ(Lines(nat_, {"-A T1-POSTROUTING", "MASQUERADE"}).size(), 1u);
}

TEST_F(RulesTest, ClientIpAffinityUsesRecentLists) {
  const ServicePort sticky = Find(snapshot_, "sticky");
  const std::string svc = ServiceChain("T1", sticky);
  const std::vector<std::string> svc_rules = Lines(nat_, {"-A " + svc + " "});
  ASSERT_EQ(svc_rules.size(), 5u);  // masquerade, 2 affinity checks, 2 spread
  for (int i = 0; i < 2; ++i) {
    const std::string sep = EndpointChain("T1", sticky, sticky.endpoints[i]);
    EXPECT_NE(svc_rules[1 + i].find("-m recent --name " + sep +
                                    " --mask 255.255.255.255 --rsource --rcheck --seconds 10800"
                                    " --reap -j " +
                                    sep),
              std::string::npos)
        << svc_rules[1 + i];
    EXPECT_EQ(Lines(nat_, {"-A " + sep, "-m recent --name " + sep, "--set", "DNAT"}).size(), 1u);
  }
  // Services without affinity have no recent lists.
  EXPECT_TRUE(
      Lines(nat_, {"-A " + ServiceChain("T1", Find(snapshot_, "three")), "recent"}).empty());
}

TEST_F(RulesTest, UdpAndNamedPorts) {
  EXPECT_EQ(Lines(nat_, {"-A T1-SERVICES", "-d 10.152.183.10/32 -p udp -m udp --dport 53"}).size(),
            1u);
  EXPECT_EQ(Lines(nat_, {"-p udp -m udp -j DNAT --to-destination 10.1.0.10:5353"}).size(), 1u);
  EXPECT_EQ(Lines(nat_, {"-j DNAT --to-destination 10.1.0.11:9443"}).size(), 1u);
}

TEST_F(RulesTest, StaleChainsOfOursAreDeletedOthersUntouched) {
  ExistingChains existing = rules_.chains;
  existing.nat.insert({"T1-SVC-GONEGONEGONE", "T1-SEP-OLDOLDOLDOLD", "T2-SVC-AAAAAAAAAAAA",
                       "KUBE-SERVICES", "T1X-SVC-A", "PREROUTING"});
  existing.filter.insert({"T1-OLD", "INPUT"});
  const std::string text = GenerateRules(snapshot_, Options(), existing).text;
  for (const char* chain : {"T1-SVC-GONEGONEGONE", "T1-SEP-OLDOLDOLDOLD", "T1-OLD"}) {
    EXPECT_EQ(Lines(text, {std::string(":") + chain + " - [0:0]"}).size(), 1u) << chain;
    EXPECT_EQ(Lines(text, {std::string("-X ") + chain}).size(), 1u) << chain;
  }
  for (const char* chain :
       {"T2-SVC-AAAAAAAAAAAA", "KUBE-SERVICES", "T1X-SVC-A", "PREROUTING", "INPUT"}) {
    EXPECT_TRUE(Lines(text, {chain}).empty()) << chain;
  }
  // Live chains are never deleted, and a removed endpoint's chain goes.
  EXPECT_TRUE(Lines(text, {"-X " + ServiceChain("T1", Find(snapshot_, "three"))}).empty());
  Objects fewer = slices_;
  fewer[0] = Slice("three", {Ep("10.1.0.2"), Ep("10.1.0.3")}, {SlicePort(8080)});
  const ServicePort three = Find(snapshot_, "three");
  const std::string gone = EndpointChain("T1", three, three.endpoints[2]);
  const std::string after =
      GenerateRules(BuildSnapshot(services_, fewer), Options(), rules_.chains).text;
  EXPECT_EQ(Lines(after, {"-X " + gone}).size(), 1u);
  EXPECT_TRUE(Lines(after, {"10.1.0.4"}).empty());
}

TEST_F(RulesTest, OutputIsDeterministicAndWellFormed) {
  Objects reversed(services_.rbegin(), services_.rend());
  EXPECT_EQ(GenerateRules(BuildSnapshot(reversed, slices_), Options(), {}).text, rules_.text);
  EXPECT_EQ(rules_.text.find("*nat\n"), 0u);
  EXPECT_EQ(Lines(rules_.text, {"COMMIT"}).size(), 2u);
  // Every chain a rule uses or jumps to is declared or built in.
  std::set<std::string> declared = rules_.chains.nat;
  declared.insert(rules_.chains.filter.begin(), rules_.chains.filter.end());
  const std::regex rule("^-A (\\S+) .*-j (\\S+)");
  std::istringstream lines(rules_.text);
  for (std::string line; std::getline(lines, line);) {
    std::smatch match;
    if (!std::regex_search(line, match, rule)) continue;
    EXPECT_TRUE(declared.count(match[1])) << line;
    const std::string target = match[2];
    if (target.rfind("T1-", 0) == 0) {
      EXPECT_TRUE(declared.count(target)) << line;
    }
  }
  for (const std::string& chain : declared) EXPECT_LE(chain.size(), 28u) << chain;
}

TEST(ExternalIpRulesTest, ExternalIpsGoThroughTheExternalChainOrAreRejected) {
  const Objects services = {
      Service("ext", "10.152.183.60", {Port(80, 8080)}, {{"externalIPs", {"192.0.2.1"}}}),
      Service("ext-empty", "10.152.183.61", {Port(80, 8080)}, {{"externalIPs", {"192.0.2.2"}}})};
  const ServiceSnapshot snapshot =
      BuildSnapshot(services, {Slice("ext", {Ep("10.1.0.2")}, {SlicePort(8080)})});
  const std::string text = GenerateRules(snapshot, Options(), {}).text;
  const std::string ext = ExternalChain("T1", Find(snapshot, "ext"));
  EXPECT_EQ(Lines(Table(text, "nat"), {"-A T1-SERVICES", "default/ext: external IP",
                                       "-d 192.0.2.1/32 -p tcp -m tcp --dport 80 -j " + ext})
                .size(),
            1u);
  EXPECT_EQ(Lines(Table(text, "filter"),
                  {"-A T1-EXTERNAL-SERVICES", "-d 192.0.2.2/32 -p tcp -m tcp --dport 80 -j REJECT"})
                .size(),
            1u);
}

// Prints how long building and generating take for 1000 services (a figure, not an assertion).
TEST(RulesScaleTest, ThousandServicesPrintsGenerationTime) {
  Objects services, slices;
  for (int i = 0; i < 1000; ++i) {
    const std::string name = "svc-" + std::to_string(i);
    const std::string ip = "10.152." + std::to_string(i / 250) + "." + std::to_string(i % 250 + 1);
    services.push_back(Service(name, ip, {Port(80, 8080)}));
    slices.push_back(Slice(
        name,
        {Ep("10.1." + std::to_string(i % 250) + ".2"), Ep("10.1." + std::to_string(i % 250) + ".3"),
         Ep("10.1." + std::to_string(i % 250) + ".4")},
        {SlicePort(8080)}));
  }
  const auto start = std::chrono::steady_clock::now();
  const RuleSet rules = GenerateRules(BuildSnapshot(services, slices), Options(), {});
  const auto took = std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now() - start);
  std::printf("snapshot + rules for 1000 services x 3 endpoints: %.1f ms, %zu bytes, %zu chains\n",
              took.count() / 1000.0, rules.text.size(), rules.chains.nat.size());
  EXPECT_EQ(rules.chains.nat.size(), 4u + 1000u * 4u);  // base + SVC + 3 SEP each
}

TEST(RuleOptionsTest, ValidationAndNameLengths) {
  RuleOptions options;
  EXPECT_TRUE(ValidateRuleOptions(options).ok());
  options.chain_prefix = "MK8S-abcde";  // 10: the longest
  EXPECT_TRUE(ValidateRuleOptions(options).ok());
  ServicePort port;
  port.ns = "a-very-long-namespace-name";
  port.service = "and-a-long-service-name";
  port.protocol = "SCTP";
  EXPECT_LE(ServiceChain(options.chain_prefix, port).size(), 28u);
  EXPECT_LE(EndpointChain(options.chain_prefix, port, Endpoint{"10.1.2.3", 80}).size(), 28u);
  EXPECT_LE((options.chain_prefix + "-EXTERNAL-SERVICES").size(), 28u);
  for (const char* bad : {"", "MK8S-abcdef", "has space", "a\"b", "OUTPUT"}) {
    options.chain_prefix = bad;
    EXPECT_FALSE(ValidateRuleOptions(options).ok()) << bad;
  }
  options.chain_prefix = "OK";
  for (const char* bad : {"10.1.0.0", "10.1.0.0/33", "x/16", "10.1.0.0/16 -j ACCEPT"}) {
    options.cluster_cidr = bad;
    EXPECT_FALSE(ValidateRuleOptions(options).ok()) << bad;
  }
}

TEST(ParseChainsTest, ReadsChainDeclarations) {
  const std::string saved =
      "# Generated by iptables-save\n*nat\n:PREROUTING ACCEPT [0:0]\n:T1-SERVICES - [0:0]\n"
      "-A PREROUTING -j T1-SERVICES\nCOMMIT\n";
  EXPECT_EQ(ParseChains(saved), (std::set<std::string>{"PREROUTING", "T1-SERVICES"}));
}

TEST(CleanUpTest, DeletesOnlyOurChainsAndListsOurJumps) {
  ExistingChains existing;
  existing.nat = {"PREROUTING", "T1-SERVICES", "T1-SVC-X", "T2-SERVICES"};
  const std::string text = GenerateCleanUp(Options(), existing);
  EXPECT_EQ(Lines(text, {"-X T1-SERVICES"}).size(), 1u);
  EXPECT_EQ(Lines(text, {"-X T1-SVC-X"}).size(), 1u);
  EXPECT_TRUE(Lines(text, {"T2-"}).empty());
  EXPECT_TRUE(Lines(text, {"*filter"}).empty());
  EXPECT_TRUE(GenerateCleanUp(Options(), {}).empty());
  const std::vector<BuiltinJump> jumps = BuiltinJumps(Options());
  ASSERT_EQ(jumps.size(), 8u);
  for (const BuiltinJump& jump : jumps) EXPECT_EQ(jump.args.back().rfind("T1-", 0), 0u);
}

}  // namespace
}  // namespace mk8s::proxy
