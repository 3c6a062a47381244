// CSRs and the kubernetes.io/kubelet-serving signing and approval rules (pki/csr.h), and
// issuing a serving certificate for a CSR's key.
#include "pki/csr.h"

#include <gtest/gtest.h>

#include "pki/certificates.h"

namespace mk8s::pki {
namespace {

const std::vector<std::string> kUsages = {"digital signature", "server auth"};
const std::vector<std::string> kNodeGroups = {"system:nodes", "system:authenticated"};

std::string Key() {
  auto key = GenerateEcKeyPem();
  EXPECT_TRUE(key.ok());
  return key.ok() ? *key : "";
}

CsrOptions NodeCsr(const std::string& node, std::vector<std::string> ips = {"10.0.0.2"}) {
  CsrOptions options;
  options.common_name = "system:node:" + node;
  options.organizations = {"system:nodes"};
  options.dns_names = {node};
  options.ip_addresses = std::move(ips);
  return options;
}

CsrInfo Parsed(const CsrOptions& options, const std::string& key = Key()) {
  auto pem = CreateCsr(key, options);
  EXPECT_TRUE(pem.ok()) << pem.status().message();
  auto info = ParseCsr(pem.ok() ? *pem : "");
  EXPECT_TRUE(info.ok()) << info.status().message();
  return info.ok() ? *info : CsrInfo{};
}

TEST(CsrTest, RoundTripsSubjectSansAndKey) {
  const std::string key = Key();
  const CsrInfo info = Parsed(NodeCsr("worker", {"10.0.0.2", "fd00:0:0::2"}), key);
  EXPECT_EQ(info.common_name, "system:node:worker");
  EXPECT_EQ(info.organizations, std::vector<std::string>{"system:nodes"});
  EXPECT_EQ(info.dns_names, std::vector<std::string>{"worker"});
  EXPECT_EQ(info.ip_addresses, (std::vector<std::string>{"10.0.0.2", "fd00::2"}));
  EXPECT_TRUE(info.emails.empty());
  EXPECT_EQ(info.public_key_pem, *PublicKeyPem(key));
}

TEST(CsrTest, RejectsGarbageAndOtherBlocks) {
  for (const std::string& text :
       {std::string(""), std::string("garbage"),
        std::string("-----BEGIN CERTIFICATE REQUEST-----\n"),
        std::string(
            "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n")}) {
    auto parsed = ParseCsr(text);
    ASSERT_FALSE(parsed.ok()) << text;
    EXPECT_EQ(parsed.status().code(), Code::kInvalidArgument);
  }
  auto ca = CreateCa();
  ASSERT_TRUE(ca.ok());
  auto cert = ParseCsr(ca->cert_pem);  // a certificate is not a request
  ASSERT_FALSE(cert.ok());
  EXPECT_NE(cert.status().message().find("CERTIFICATE REQUEST"), std::string::npos);
  auto pem = CreateCsr(Key(), NodeCsr("worker"));
  ASSERT_TRUE(pem.ok());
  EXPECT_FALSE(ParseCsr(*pem + *pem).ok());  // two requests
  EXPECT_TRUE(ParseCsr("explanatory text\n" + *pem + "trailer\n").ok());
}

TEST(CsrTest, RejectsATamperedRequest) {
  auto pem = CreateCsr(Key(), NodeCsr("worker"));
  ASSERT_TRUE(pem.ok());
  // Flip a character inside the base64 body (in the subject, well before the signature).
  std::string tampered = *pem;
  const size_t at = tampered.find('\n') + 60;
  tampered[at] = tampered[at] == 'A' ? 'B' : 'A';
  auto parsed = ParseCsr(tampered);
  EXPECT_FALSE(parsed.ok());
}

TEST(CsrTest, KubeletServingSignerRules) {
  EXPECT_TRUE(CheckKubeletServingCsr(Parsed(NodeCsr("worker")), kUsages).ok());
  EXPECT_TRUE(CheckKubeletServingCsr(Parsed(NodeCsr("worker")),
                                     {"key encipherment", "digital signature", "server auth"})
                  .ok());
  CsrOptions not_a_node = NodeCsr("worker");
  not_a_node.common_name = "admin";
  EXPECT_FALSE(CheckKubeletServingCsr(Parsed(not_a_node), kUsages).ok());
  CsrOptions empty_name = NodeCsr("worker");
  empty_name.common_name = "system:node:";
  EXPECT_FALSE(CheckKubeletServingCsr(Parsed(empty_name), kUsages).ok());
  CsrOptions masters = NodeCsr("worker");
  masters.organizations = {"system:nodes", "system:masters"};
  EXPECT_FALSE(CheckKubeletServingCsr(Parsed(masters), kUsages).ok());
  CsrOptions no_sans = NodeCsr("worker");
  no_sans.dns_names.clear();
  no_sans.ip_addresses.clear();
  EXPECT_FALSE(CheckKubeletServingCsr(Parsed(no_sans), kUsages).ok());
  EXPECT_FALSE(
      CheckKubeletServingCsr(Parsed(NodeCsr("worker")), {"digital signature", "client auth"}).ok());
  EXPECT_FALSE(CheckKubeletServingCsr(Parsed(NodeCsr("worker")), {}).ok());
  CsrInfo with_email = Parsed(NodeCsr("worker"));
  with_email.emails = {"a@example.com"};
  EXPECT_FALSE(CheckKubeletServingCsr(with_email, kUsages).ok());
}

TEST(CsrTest, OnlyTheNodeItselfForItsOwnNamesAndAddresses) {
  const CsrInfo info = Parsed(NodeCsr("worker", {"10.0.0.2"}));
  const std::vector<std::string> names = {"worker", "10.0.0.2", "worker.example"};
  EXPECT_TRUE(CheckCsrFromItsNode(info, "system:node:worker", kNodeGroups, names).ok());
  // Another node, a non-node user, a node without its group.
  Status other = CheckCsrFromItsNode(info, "system:node:cp", kNodeGroups, names);
  EXPECT_FALSE(other.ok());
  EXPECT_NE(other.message().find("may not request a certificate for"), std::string::npos);
  EXPECT_FALSE(CheckCsrFromItsNode(info, "admin", {"system:masters"}, names).ok());
  EXPECT_FALSE(
      CheckCsrFromItsNode(info, "system:node:worker", {"system:authenticated"}, names).ok());
  // A SAN that is not the node's.
  Status foreign = CheckCsrFromItsNode(Parsed(NodeCsr("worker", {"10.0.0.9"})),
                                       "system:node:worker", kNodeGroups, names);
  EXPECT_FALSE(foreign.ok());
  EXPECT_NE(foreign.message().find("10.0.0.9"), std::string::npos);
  CsrOptions extra_dns = NodeCsr("worker");
  extra_dns.dns_names.push_back("kubernetes.default");
  EXPECT_FALSE(
      CheckCsrFromItsNode(Parsed(extra_dns), "system:node:worker", kNodeGroups, names).ok());
  // IPv6 addresses compare canonically.
  EXPECT_TRUE(CheckCsrFromItsNode(Parsed(NodeCsr("worker", {"fd00::2"})), "system:node:worker",
                                  kNodeGroups, {"worker", "fd00:0000::0002"})
                  .ok());
}

TEST(CsrTest, NodeNameOfUser) {
  EXPECT_EQ(NodeNameOfUser("system:node:worker"), "worker");
  EXPECT_EQ(NodeNameOfUser("system:node:"), "");
  EXPECT_EQ(NodeNameOfUser("system:nodes"), "");
  EXPECT_EQ(NodeNameOfUser("admin"), "");
}

TEST(CsrTest, IssuesAServingCertificateForTheRequestsKey) {
  auto ca = CreateCa();
  ASSERT_TRUE(ca.ok());
  const std::string key = Key();
  const CsrInfo info = Parsed(NodeCsr("worker"), key);
  ServingCertOptions options;
  options.common_name = info.common_name;
  options.organizations = info.organizations;
  options.dns_names = info.dns_names;
  options.ip_addresses = info.ip_addresses;
  options.validity = std::chrono::hours(1);
  auto cert = IssueServingCertForKey(*ca, info.public_key_pem, options);
  ASSERT_TRUE(cert.ok()) << cert.status().message();
  EXPECT_TRUE(*CertMatchesKey(*cert, key));
  const auto now = std::chrono::system_clock::now();
  EXPECT_TRUE(VerifyCertificate(*cert, ca->cert_pem, now, Usage::kServer).ok());
  EXPECT_FALSE(VerifyCertificate(*cert, ca->cert_pem, now, Usage::kClient).ok());
  auto parsed = ParseCertificate(*cert);
  ASSERT_TRUE(parsed.ok());
  EXPECT_EQ(parsed->common_name, "system:node:worker");
  EXPECT_EQ(parsed->organizations, std::vector<std::string>{"system:nodes"});
  EXPECT_EQ(parsed->ip_addresses, std::vector<std::string>{"10.0.0.2"});
  EXPECT_LE(parsed->not_after - now, std::chrono::hours(1));
  // The private key never goes to the signer.
  EXPECT_FALSE(IssueServingCertForKey(*ca, key, options).ok());
  EXPECT_FALSE(IssueServingCertForKey(*ca, "garbage", options).ok());
}

}  // namespace
}  // namespace mk8s::pki
