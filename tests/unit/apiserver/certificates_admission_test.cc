// CertificateSigningRequest admission: the requester stamp, validation of hostile requests, and
// which fields /approval and /status may change.
#include "apiserver/registry/certificates_admission.h"

#include <gtest/gtest.h>

#include "apiserver/registry/rest_storage.h"
#include "pki/certificates.h"
#include "pki/csr.h"
#include "pki/encoding.h"

namespace mk8s::apiserver {
namespace {

using nlohmann::json;

const UserInfo kWorker{"system:node:worker", "worker", {"system:nodes", "system:authenticated"}};
const UserInfo kAdmin{"admin", "", {"system:masters", "system:authenticated"}};

std::string RequestFor(const std::string& node) {
  auto key = pki::GenerateEcKeyPem();
  pki::CsrOptions options;
  options.common_name = "system:node:" + node;
  options.organizations = {"system:nodes"};
  options.dns_names = {node};
  options.ip_addresses = {"10.0.0.2"};
  auto pem = pki::CreateCsr(*key, options);
  EXPECT_TRUE(pem.ok());
  return pki::Base64Encode(*pem);
}

json Csr(const std::string& request, const std::string& signer = "kubernetes.io/kubelet-serving") {
  return {{"apiVersion", "certificates.k8s.io/v1"},
          {"kind", "CertificateSigningRequest"},
          {"metadata", {{"name", "csr-1"}}},
          {"spec",
           {{"request", request},
            {"signerName", signer},
            {"usages", {"digital signature", "server auth"}}}}};
}

std::string CauseFields(const ApiError& error) {
  std::string fields;
  for (const StatusCause& cause : error.causes) fields += cause.field + ";";
  return fields;
}

TEST(CsrAdmissionTest, StampsTheRequesterOverWhatTheClientClaims) {
  json csr = Csr(RequestFor("worker"));
  csr["spec"]["username"] = "system:node:cp";
  csr["spec"]["groups"] = {"system:masters"};
  csr["spec"]["extra"] = {{"x", {"y"}}};
  csr["status"] = {{"certificate", "Zm9v"}};
  ASSERT_FALSE(AdmitCsrCreate(csr, &kWorker));
  EXPECT_EQ(csr["spec"]["username"], "system:node:worker");
  EXPECT_EQ(csr["spec"]["uid"], "worker");
  EXPECT_EQ(csr["spec"]["groups"], json({"system:nodes", "system:authenticated"}));
  EXPECT_FALSE(csr["spec"].contains("extra"));
  EXPECT_EQ(csr["status"], json::object());
}

TEST(CsrAdmissionTest, RefusesHostileRequests) {
  json unknown = Csr(RequestFor("worker"));
  auto error = AdmitCsrCreate(unknown, nullptr);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, 403);

  json garbage = Csr(pki::Base64Encode("not a certificate request"));
  error = AdmitCsrCreate(garbage, &kWorker);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, 422);
  EXPECT_EQ(CauseFields(*error), "spec.request;");

  json not_base64 = Csr("%%%");
  error = AdmitCsrCreate(not_base64, &kWorker);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, 422);

  json other_node = Csr(RequestFor("cp"));
  error = AdmitCsrCreate(other_node, &kWorker);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, 403);
  EXPECT_NE(error->message.find("may not request a certificate for \"system:node:cp\""),
            std::string::npos);

  for (const char* signer : {"", "kubelet-serving", "kubernetes.io/legacy-unknown", "Bad/x"}) {
    json wrong_signer = Csr(RequestFor("worker"), signer);
    error = AdmitCsrCreate(wrong_signer, &kWorker);
    ASSERT_TRUE(error) << signer;
    EXPECT_EQ(error->code, 422) << signer;
    EXPECT_EQ(CauseFields(*error), "spec.signerName;") << signer;
  }

  json client_usage = Csr(RequestFor("worker"));
  client_usage["spec"]["usages"] = {"digital signature", "client auth"};
  error = AdmitCsrCreate(client_usage, &kWorker);
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, 422);

  json bad_usage = Csr(RequestFor("worker"));
  bad_usage["spec"]["usages"] = {"everything"};
  EXPECT_TRUE(AdmitCsrCreate(bad_usage, &kWorker));

  json short_life = Csr(RequestFor("worker"));
  short_life["spec"]["expirationSeconds"] = 60;
  error = AdmitCsrCreate(short_life, &kWorker);
  ASSERT_TRUE(error);
  EXPECT_EQ(CauseFields(*error), "spec.expirationSeconds;");
}

TEST(CsrAdmissionTest, OtherSignersAndAdminsMayAsk) {
  json custom = Csr(RequestFor("cp"), "example.com/my-signer");
  EXPECT_FALSE(AdmitCsrCreate(custom, &kWorker));
  json for_a_node = Csr(RequestFor("worker"));
  EXPECT_FALSE(AdmitCsrCreate(for_a_node, &kAdmin));  // never auto-approved, but allowed
}

json Created() {
  json csr = Csr(RequestFor("worker"));
  EXPECT_FALSE(AdmitCsrCreate(csr, &kWorker));
  return csr;
}

json Condition(const std::string& type) {
  return {{"type", type}, {"status", "True"}, {"reason", "Test"}};
}

TEST(CsrAdmissionTest, SpecIsImmutable) {
  const json old = Created();
  json update = old;
  update["spec"]["signerName"] = "example.com/other";
  update["spec"]["username"] = "admin";
  update["metadata"]["labels"] = {{"a", "b"}};
  ASSERT_FALSE(AdmitCsrUpdate(update, old, ""));
  EXPECT_EQ(update["spec"], old["spec"]);
  EXPECT_EQ(update["metadata"]["labels"]["a"], "b");
}

TEST(CsrAdmissionTest, ApprovalChangesConditionsOnly) {
  const json old = Created();
  json approve = old;
  approve["status"] = {{"conditions", {Condition("Approved")}}, {"certificate", "Zm9v"}};
  ASSERT_FALSE(AdmitCsrUpdate(approve, old, "approval"));
  EXPECT_FALSE(approve["status"].contains("certificate"));
  EXPECT_TRUE(approve["status"]["conditions"][0].contains("lastUpdateTime"));

  json both = old;
  both["status"] = {{"conditions", {Condition("Approved"), Condition("Denied")}}};
  EXPECT_TRUE(AdmitCsrUpdate(both, old, "approval"));

  json untrue = old;
  untrue["status"] = {{"conditions", {{{"type", "Approved"}, {"status", "False"}}}}};
  EXPECT_TRUE(AdmitCsrUpdate(untrue, old, "approval"));

  json removed = approve;
  removed["status"]["conditions"] = json::array();
  auto error = AdmitCsrUpdate(removed, approve, "approval");
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, 422);
}

TEST(CsrAdmissionTest, StatusSetsTheCertificateOnceAndNeverApproves) {
  json old = Created();
  json sneaky = old;
  sneaky["status"] = {{"conditions", {Condition("Approved")}}};
  ASSERT_FALSE(AdmitCsrUpdate(sneaky, old, "status"));
  EXPECT_EQ(sneaky["status"]["conditions"], json::array());  // approval goes through /approval

  json garbage = old;
  garbage["status"] = {{"certificate", pki::Base64Encode("not a certificate")}};
  auto error = AdmitCsrUpdate(garbage, old, "status");
  ASSERT_TRUE(error);
  EXPECT_EQ(CauseFields(*error), "status.certificate;");

  auto ca = pki::CreateCa();
  ASSERT_TRUE(ca.ok());
  json issued = old;
  issued["status"] = {{"certificate", pki::Base64Encode(ca->cert_pem)}};
  ASSERT_FALSE(AdmitCsrUpdate(issued, old, "status"));

  auto other = pki::CreateCa();
  json changed = issued;
  changed["status"]["certificate"] = pki::Base64Encode(other->cert_pem);
  error = AdmitCsrUpdate(changed, issued, "status");
  ASSERT_TRUE(error);
  EXPECT_EQ(CauseFields(*error), "status.certificate;");
}

}  // namespace
}  // namespace mk8s::apiserver
