// csr-approving and csr-signing: a node's own kubelet-serving request is approved and signed by
// the cluster CA; a node's request naming an address that is not its own is denied and never
// signed; a request of another user waits for a human's approval, then is signed.
#include "fixture.h"

#include "pki/certificates.h"
#include "pki/csr.h"
#include "pki/encoding.h"

namespace mk8s::controllers::test {
namespace {

const client::ResourceRef kCsrs{"certificates.k8s.io", "v1", "certificatesigningrequests", false};

class CertificatesTest : public ControllerTest {
 protected:
  void SetUp() override {
    ControllerTest::SetUp();
    if (HasFatalFailure()) return;
    node_ = Unique("wk");
    json node = Create(client::kNodes, MakeNode(node_));
    ASSERT_FALSE(node.is_null());
    node["status"] = {{"addresses",
                       {{{"type", "InternalIP"}, {"address", "10.9.0.2"}},
                        {{"type", "Hostname"}, {"address", node_}}}}};
    ASSERT_TRUE(api().UpdateStatus(client::kNodes, node).ok());
    StartControllers({"csr-approving", "csr-signing"});
    key_ = *pki::GenerateEcKeyPem();
  }

  json Request(const std::string& name, const std::string& ip) {
    pki::CsrOptions options;
    options.common_name = "system:node:" + node_;
    options.organizations = {"system:nodes"};
    options.dns_names = {node_};
    options.ip_addresses = {ip};
    auto pem = pki::CreateCsr(key_, options);
    EXPECT_TRUE(pem.ok());
    return MakeCsr(name, pem.ok() ? *pem : "", "kubernetes.io/kubelet-serving",
                   {"digital signature", "server auth"});
  }

  std::shared_ptr<client::Client> AsNode() {
    return ClientAs("system:node:" + node_, {"system:nodes", "system:authenticated"});
  }

  std::string Condition(const json& csr, const std::string& type) {
    for (const json& c : csr.value("/status/conditions"_json_pointer, json::array())) {
      if (c.value("type", "") == type) return c.value("reason", "?");
    }
    return "";
  }

  std::string node_;
  std::string key_;
};

TEST_F(CertificatesTest, NodesOwnRequestIsApprovedAndSigned) {
  const std::string name = Unique("own");
  ASSERT_TRUE(AsNode()->Create(kCsrs, "", Request(name, "10.9.0.2")).ok());
  std::optional<json> csr;
  ASSERT_TRUE(WaitFor(
      [&] {
        csr = Get(kCsrs, name);
        return csr && !csr->value("/status/certificate"_json_pointer, std::string()).empty();
      },
      "the certificate issued"));
  EXPECT_EQ(Condition(*csr, "Approved"), "AutoApproved");
  EXPECT_EQ(csr->value("/spec/username"_json_pointer, std::string()), "system:node:" + node_);
  const auto cert =
      pki::Base64Decode(csr->value("/status/certificate"_json_pointer, std::string()));
  ASSERT_TRUE(cert);
  EXPECT_TRUE(*pki::CertMatchesKey(*cert, key_));
  EXPECT_TRUE(pki::VerifyCertificate(*cert, cluster_ca_pem(), std::chrono::system_clock::now(),
                                     pki::Usage::kServer)
                  .ok());
  auto info = pki::ParseCertificate(*cert);
  ASSERT_TRUE(info.ok());
  EXPECT_EQ(info->common_name, "system:node:" + node_);
  EXPECT_EQ(info->ip_addresses, std::vector<std::string>{"10.9.0.2"});
}

TEST_F(CertificatesTest, AnAddressThatIsNotTheNodesIsDenied) {
  const std::string name = Unique("foreign");
  ASSERT_TRUE(AsNode()->Create(kCsrs, "", Request(name, "10.9.0.99")).ok());
  std::optional<json> csr;
  ASSERT_TRUE(WaitFor(
      [&] {
        csr = Get(kCsrs, name);
        return csr && !Condition(*csr, "Denied").empty();
      },
      "the request denied"));
  EXPECT_EQ(Condition(*csr, "Denied"), "NotTheNodesOwn");
  EXPECT_EQ(Condition(*csr, "Approved"), "");
  EXPECT_EQ(csr->value("/status/certificate"_json_pointer, std::string()), "");
}

TEST_F(CertificatesTest, AnotherUsersRequestWaitsForAHuman) {
  const std::string name = Unique("admin");
  json created = Create(kCsrs, Request(name, "10.9.0.2"));  // as system:admin
  ASSERT_FALSE(created.is_null());
  // `kubectl certificate approve`: the Approved condition through /approval.
  json approval = {
      {"status",
       {{"conditions",
         {{{"type", "Approved"}, {"status", "True"}, {"reason", "KubectlApprove"}}}}}}};
  ASSERT_TRUE(api().Patch(kCsrs, "", name, client::PatchType::kMerge, approval, "approval").ok());
  std::optional<json> csr;
  ASSERT_TRUE(WaitFor(
      [&] {
        csr = Get(kCsrs, name);
        return csr && !csr->value("/status/certificate"_json_pointer, std::string()).empty();
      },
      "the approved request signed"));
  EXPECT_EQ(Condition(*csr, "Approved"), "KubectlApprove");  // not auto-approved
}

}  // namespace
}  // namespace mk8s::controllers::test
