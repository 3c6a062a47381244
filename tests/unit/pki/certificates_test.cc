// Tests of the CA, leaf issuance, parsing and verification (also against the openssl CLI).
#include "pki/certificates.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "pki/encoding.h"
#include "test_util.h"

namespace mk8s::pki {
namespace {

using std::chrono::hours;
using testing::RunCommand;
using testing::TempDir;

TimePoint Now() { return std::chrono::system_clock::now(); }

CaOptions Named(const std::string& cn) {
  CaOptions o;
  o.common_name = cn;
  return o;
}

// PEM -> DER by decoding the base64 body.
std::string PemToDer(const std::string& pem) {
  std::string body;
  std::istringstream in(pem);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("-----", 0) != 0) body += line;
  }
  auto der = Base64Decode(body);
  return der ? *der : std::string();
}

class CertificatesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto ca = CreateCa();
    ASSERT_TRUE(ca.ok()) << ca.status().ToString();
    ca_ = new KeyPair(*ca);
  }
  static void TearDownTestSuite() { delete ca_; }
  static const KeyPair& ca() { return *ca_; }

  static KeyPair Serving() {
    ServingCertOptions o;
    o.dns_names = {"localhost", "kubernetes.default.svc"};
    o.ip_addresses = {"127.0.0.1", "::1", "10.152.183.1"};
    auto kp = IssueServingCert(ca(), o);
    EXPECT_TRUE(kp.ok()) << kp.status().ToString();
    return kp.ok() ? *kp : KeyPair{};
  }
  static KeyPair Client(const std::string& user, std::vector<std::string> groups) {
    ClientCertOptions o;
    o.user = user;
    o.groups = std::move(groups);
    auto kp = IssueClientCert(ca(), o);
    EXPECT_TRUE(kp.ok()) << kp.status().ToString();
    return kp.ok() ? *kp : KeyPair{};
  }

 private:
  static KeyPair* ca_;
};
KeyPair* CertificatesTest::ca_ = nullptr;

TEST_F(CertificatesTest, CaIsSelfSignedCaWithTenYears) {
  auto info = ParseCertificate(ca().cert_pem);
  ASSERT_TRUE(info.ok()) << info.status().ToString();
  EXPECT_EQ(info->common_name, "mk8s-ca");
  EXPECT_TRUE(info->is_ca);
  auto years =
      std::chrono::duration_cast<hours>(info->not_after - info->not_before).count() / (24 * 365);
  EXPECT_EQ(years, 10);
  EXPECT_LE(info->not_before, Now());
  EXPECT_NE(ca().key_pem.find("BEGIN PRIVATE KEY"), std::string::npos);
  EXPECT_TRUE(VerifyCertificate(ca().cert_pem, ca().cert_pem, Now()).ok());
}

TEST_F(CertificatesTest, ServingCertHasSansAndVerifies) {
  KeyPair kp = Serving();
  auto info = ParseCertificate(kp.cert_pem);
  ASSERT_TRUE(info.ok());
  EXPECT_FALSE(info->is_ca);
  EXPECT_EQ(info->dns_names, (std::vector<std::string>{"localhost", "kubernetes.default.svc"}));
  EXPECT_EQ(info->ip_addresses, (std::vector<std::string>{"127.0.0.1", "::1", "10.152.183.1"}));
  auto days = std::chrono::duration_cast<hours>(info->not_after - info->not_before).count() / 24;
  EXPECT_EQ(days, 365);
  EXPECT_TRUE(VerifyCertificate(kp.cert_pem, ca().cert_pem, Now(), Usage::kServer).ok());
  // serverAuth only: not usable as a client certificate.
  EXPECT_FALSE(VerifyCertificate(kp.cert_pem, ca().cert_pem, Now(), Usage::kClient).ok());
  EXPECT_FALSE(AuthenticateClientCert(kp.cert_pem, ca().cert_pem, Now()).ok());
  auto match = CertMatchesKey(kp.cert_pem, kp.key_pem);
  ASSERT_TRUE(match.ok());
  EXPECT_TRUE(*match);
  match = CertMatchesKey(kp.cert_pem, ca().key_pem);
  ASSERT_TRUE(match.ok());
  EXPECT_FALSE(*match);
}

TEST_F(CertificatesTest, ClientCertsMapToUserAndGroups) {
  KeyPair admin = Client("admin", {"system:masters"});
  auto user = AuthenticateClientCert(admin.cert_pem, ca().cert_pem, Now());
  ASSERT_TRUE(user.ok()) << user.status().ToString();
  EXPECT_EQ(user->user, "admin");
  EXPECT_EQ(user->groups, std::vector<std::string>{"system:masters"});

  KeyPair node = Client("system:node:n1", {"system:nodes", "extra-group"});
  auto info = ParseCertificate(node.cert_pem);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->common_name, "system:node:n1");
  EXPECT_EQ(info->organizations, (std::vector<std::string>{"system:nodes", "extra-group"}));
  EXPECT_TRUE(info->dns_names.empty());

  // DER input (as taken from a TLS session) works too, through a shared verifier.
  auto verifier = CertVerifier::Create(ca().cert_pem);
  ASSERT_TRUE(verifier.ok());
  std::string der = PemToDer(node.cert_pem);
  ASSERT_FALSE(der.empty());
  auto node_user = (*verifier)->Authenticate(der, Now());
  ASSERT_TRUE(node_user.ok()) << node_user.status().ToString();
  EXPECT_EQ(node_user->user, "system:node:n1");
  EXPECT_EQ(node_user->groups, (std::vector<std::string>{"system:nodes", "extra-group"}));
  EXPECT_FALSE(VerifyCertificate(node.cert_pem, ca().cert_pem, Now(), Usage::kServer).ok());
}

TEST_F(CertificatesTest, CertFromAnotherCaIsRejected) {
  auto other_ca = CreateCa(Named("other-ca"));
  ASSERT_TRUE(other_ca.ok());
  ClientCertOptions o;
  o.user = "admin";
  o.groups = {"system:masters"};
  auto forged = IssueClientCert(*other_ca, o);
  ASSERT_TRUE(forged.ok());
  auto user = AuthenticateClientCert(forged->cert_pem, ca().cert_pem, Now());
  ASSERT_FALSE(user.ok());
  EXPECT_EQ(user.status().code(), Code::kInvalidArgument);
  EXPECT_FALSE(VerifyCertificate(Serving().cert_pem, other_ca->cert_pem, Now()).ok());
  // A CA key that does not belong to the CA cert is refused at issuance.
  KeyPair mixed{ca().cert_pem, other_ca->key_pem};
  EXPECT_FALSE(IssueClientCert(mixed, o).ok());
}

TEST_F(CertificatesTest, ExpiredAndNotYetValidCertsAreRejected) {
  KeyPair admin = Client("admin", {"system:masters"});
  EXPECT_FALSE(AuthenticateClientCert(admin.cert_pem, ca().cert_pem, Now() + hours(24 * 366)).ok());
  EXPECT_FALSE(AuthenticateClientCert(admin.cert_pem, ca().cert_pem, Now() - hours(2)).ok());

  CaOptions ca_opts;
  ca_opts.not_before = Now() - hours(72);
  auto old_ca = CreateCa(ca_opts);
  ASSERT_TRUE(old_ca.ok());
  ClientCertOptions o;
  o.user = "old";
  o.not_before = Now() - hours(48);
  o.validity = std::chrono::hours(24);
  auto old = IssueClientCert(*old_ca, o);
  ASSERT_TRUE(old.ok());
  auto user = AuthenticateClientCert(old->cert_pem, old_ca->cert_pem, Now());
  ASSERT_FALSE(user.ok());
  EXPECT_NE(user.status().message().find("expired"), std::string::npos) << user.status().message();
  EXPECT_TRUE(AuthenticateClientCert(old->cert_pem, old_ca->cert_pem, Now() - hours(36)).ok());
  // The CA itself was not valid yet 36 hours ago: the chain is checked at `now` too.
  EXPECT_FALSE(
      AuthenticateClientCert(Client("x", {}).cert_pem, ca().cert_pem, Now() - hours(36)).ok());
}

TEST_F(CertificatesTest, CaCertIsNotAClientIdentity) {
  EXPECT_FALSE(AuthenticateClientCert(ca().cert_pem, ca().cert_pem, Now()).ok());
}

TEST_F(CertificatesTest, BadInputIsRejected) {
  ServingCertOptions o;
  o.ip_addresses = {"999.1.1.1"};
  auto bad_ip = IssueServingCert(ca(), o);
  ASSERT_FALSE(bad_ip.ok());
  EXPECT_EQ(bad_ip.status().code(), Code::kInvalidArgument);
  o.ip_addresses = {};
  EXPECT_FALSE(IssueServingCert(ca(), o).ok());  // no SAN at all
  o.dns_names = {"bad name"};
  EXPECT_FALSE(IssueServingCert(ca(), o).ok());
  EXPECT_FALSE(IssueClientCert(ca(), {}).ok());  // no user
  EXPECT_FALSE(ParseCertificate("garbage").ok());
  EXPECT_FALSE(ParseCertificate("").ok());
  EXPECT_FALSE(
      AuthenticateClientCert("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                             ca().cert_pem, Now())
          .ok());
  EXPECT_FALSE(CertVerifier::Create("not a pem").ok());
  EXPECT_FALSE(CertVerifier::Create(Serving().cert_pem).ok());  // a leaf is not a CA
}

TEST_F(CertificatesTest, SerialsAreRandomAndWide) {
  auto a = ParseCertificate(Client("a", {}).cert_pem);
  auto b = ParseCertificate(Client("a", {}).cert_pem);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_NE(a->serial_hex, b->serial_hex);
  EXPECT_EQ(a->serial_hex.size(), 32u);  // 128 bits
}

TEST_F(CertificatesTest, RsaKeyGeneration) {
  auto key = GenerateRsaKeyPem(2048);
  ASSERT_TRUE(key.ok());
  auto pub = PublicKeyPem(*key);
  ASSERT_TRUE(pub.ok());
  EXPECT_NE(pub->find("BEGIN PUBLIC KEY"), std::string::npos);
  EXPECT_FALSE(GenerateRsaKeyPem(1024).ok());
}

TEST_F(CertificatesTest, OpenSslCliAgrees) {
  if (!testing::HaveTool("openssl")) GTEST_SKIP() << "openssl CLI not installed";
  TempDir dir;
  KeyPair server = Serving();
  KeyPair client = Client("admin", {"system:masters"});
  testing::WriteFile(dir.File("ca.crt"), ca().cert_pem);
  testing::WriteFile(dir.File("server.crt"), server.cert_pem);
  testing::WriteFile(dir.File("client.crt"), client.cert_pem);
  auto other = CreateCa(Named("other"));
  ASSERT_TRUE(other.ok());
  testing::WriteFile(dir.File("other.crt"), other->cert_pem);

  auto r = RunCommand("openssl verify -x509_strict -CAfile " + dir.File("ca.crt") +
                      " -purpose sslserver " + dir.File("server.crt"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find(": OK"), std::string::npos) << r.output;
  r = RunCommand("openssl verify -x509_strict -CAfile " + dir.File("ca.crt") +
                 " -purpose sslclient " + dir.File("client.crt"));
  EXPECT_EQ(r.exit_code, 0) << r.output;
  r = RunCommand("openssl verify -CAfile " + dir.File("other.crt") + " " + dir.File("client.crt"));
  EXPECT_NE(r.exit_code, 0) << r.output;

  r = RunCommand("openssl x509 -noout -text -in " + dir.File("server.crt"));
  ASSERT_EQ(r.exit_code, 0) << r.output;
  for (const char* want : {"DNS:localhost", "IP Address:127.0.0.1", "IP Address:0:0:0:0:0:0:0:1",
                           "TLS Web Server Authentication", "CA:FALSE",
                           "X509v3 Subject Key Identifier", "X509v3 Authority Key Identifier"})
    EXPECT_NE(r.output.find(want), std::string::npos) << want << "\n" << r.output;
  r = RunCommand("openssl x509 -noout -text -in " + dir.File("ca.crt"));
  for (const char* want : {"CA:TRUE", "Certificate Sign, CRL Sign", "critical"})
    EXPECT_NE(r.output.find(want), std::string::npos) << want << "\n" << r.output;
  r = RunCommand("openssl x509 -noout -subject -in " + dir.File("client.crt"));
  EXPECT_NE(r.output.find("O = system:masters, CN = admin"), std::string::npos) << r.output;
}

}  // namespace
}  // namespace mk8s::pki
