// csr-cleaner: CertificateSigningRequests go away at upstream's deadlines (decided: one hour after
// the decision; pending: 24 hours after creation; issued: when the certificate expires) on the
// fake clock, never earlier; requests without usable times or with garbage fields are left
// alone without a crash.
#include "controllers/certificates/csr_cleaner.h"

#include "common/time_format.h"
#include "fixture.h"
#include "pki/certificates.h"
#include "pki/csr.h"
#include "pki/encoding.h"

namespace mk8s::controllers::test {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using TimePoint = std::chrono::system_clock::time_point;

const client::ResourceRef kCsrs{"certificates.k8s.io", "v1", "certificatesigningrequests", false};

std::string Rfc3339(TimePoint at) { return FormatRfc3339(at); }

json Condition(const std::string& type, TimePoint at) {
  return {{"type", type},          {"status", "True"},          {"reason", "Test"},
          {"message", "by a test"}, {"lastUpdateTime", Rfc3339(at)}, {"lastTransitionTime", Rfc3339(at)}};
}

TEST(CsrDeletionDeadlineTest, FollowsUpstreamsDeadlines) {
  const TimePoint created = std::chrono::system_clock::now() - hours(2);
  json csr = {{"metadata", {{"name", "r"}, {"creationTimestamp", Rfc3339(created)}}}};
  auto near = [](std::optional<TimePoint> got, TimePoint want) {
    return got && std::chrono::abs(*got - want) < std::chrono::seconds(2);
  };
  EXPECT_TRUE(near(CsrDeletionDeadline(csr), created + hours(24))) << "pending";

  const TimePoint decided = created + hours(1);
  for (const char* type : {"Approved", "Denied", "Failed"}) {
    json copy = csr;
    copy["status"]["conditions"] = json::array({Condition(type, decided)});
    EXPECT_TRUE(near(CsrDeletionDeadline(copy), decided + hours(1))) << type;
  }

  // An issued certificate that expires before the hour is up: its expiry wins.
  auto ca = pki::CreateCa();
  ASSERT_TRUE(ca.ok());
  pki::ServingCertOptions options;
  options.dns_names = {"node"};
  options.validity = std::chrono::seconds(600);
  options.not_before = decided;
  auto issued = pki::IssueServingCert(*ca, options);
  ASSERT_TRUE(issued.ok()) << issued.status().message();
  json approved = csr;
  approved["status"] = {{"conditions", json::array({Condition("Approved", decided)})},
                        {"certificate", pki::Base64Encode(issued->cert_pem)}};
  EXPECT_TRUE(near(CsrDeletionDeadline(approved), decided + minutes(10)));
}

TEST(CsrDeletionDeadlineTest, HostileFieldsAreLeftAloneWithoutACrash) {
  EXPECT_FALSE(CsrDeletionDeadline(json::object()));
  EXPECT_FALSE(CsrDeletionDeadline(json::array()));
  EXPECT_FALSE(CsrDeletionDeadline(json{{"metadata", {{"creationTimestamp", "yesterday"}}}}));
  EXPECT_FALSE(CsrDeletionDeadline(json{{"metadata", 7}, {"status", "x"}}));
  json garbage = {{"status",
                   {{"conditions", {{{"type", "Approved"}, {"lastUpdateTime", 42}}, "junk", 3}},
                    {"certificate", "!!! not base64 !!!"}}}};
  EXPECT_FALSE(CsrDeletionDeadline(garbage)) << "decided with no readable time: no deadline";
  garbage["status"]["certificate"] = pki::Base64Encode("not a certificate");
  EXPECT_FALSE(CsrDeletionDeadline(garbage));
}

class CsrCleanerTest : public ControllerTest {
 protected:
  json Request(const std::string& name) { return MakeClientCsr(name); }
};

TEST_F(CsrCleanerTest, PendingRequestGoesAfter24Hours) {
  StartController("csr-cleaner");
  const std::string name = Unique("pending");
  ASSERT_FALSE(Create(kCsrs, Request(name)).is_null());
  WaitUntilCached(kCsrs, *Get(kCsrs, name));
  Advance(hours(23));
  EXPECT_TRUE(Get(kCsrs, name).has_value()) << "deleted before its 24 hours";
  ASSERT_TRUE(AdvanceUntil([&] { return !Get(kCsrs, name).has_value(); }, minutes(30), hours(2),
                           "the pending request deleted"));
}

TEST_F(CsrCleanerTest, DecidedRequestGoesAnHourAfterTheDecision) {
  StartController("csr-cleaner");
  const std::string name = Unique("approved");
  ASSERT_FALSE(Create(kCsrs, Request(name)).is_null());
  const json patch = {{"status", {{"conditions", json::array({Condition("Approved", WallNow())})}}}};
  auto approved = api().Patch(kCsrs, "", name, client::PatchType::kMerge, patch, "approval");
  ASSERT_TRUE(approved.ok()) << approved.status().message();
  WaitUntilCached(kCsrs, *approved);
  Advance(minutes(50));
  EXPECT_TRUE(Get(kCsrs, name).has_value()) << "deleted before its hour";
  ASSERT_TRUE(AdvanceUntil([&] { return !Get(kCsrs, name).has_value(); }, minutes(5), hours(1),
                           "the approved request deleted"));
}

}  // namespace
}  // namespace mk8s::controllers::test
