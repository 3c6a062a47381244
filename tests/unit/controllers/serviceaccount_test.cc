// ServiceAccount controller: every active namespace has a "default" ServiceAccount, which comes
// back when deleted.
#include "fixture.h"

namespace mk8s::controllers::test {
namespace {

class ServiceAccountTest : public ControllerTest {
 protected:
  void SetUp() override {
    ControllerTest::SetUp();
    if (HasFatalFailure()) return;
    StartController("serviceaccount");
  }
};

TEST_F(ServiceAccountTest, DefaultAccountInEveryNamespace) {
  // Namespaces that existed before the controller started.
  for (const std::string& existing : {std::string("default"), std::string("kube-system"), ns()}) {
    ASSERT_TRUE(WaitFor([&] { return Get(client::kServiceAccounts, existing, "default").has_value(); },
                        "default ServiceAccount in " + existing));
  }
  CreateNamespace("fresh");
  ASSERT_TRUE(WaitFor([&] { return Get(client::kServiceAccounts, "fresh", "default").has_value(); },
                      "default ServiceAccount in a new namespace"));
}

TEST_F(ServiceAccountTest, DeletedDefaultAccountComesBack) {
  ASSERT_TRUE(WaitFor([&] { return Get(client::kServiceAccounts, "default").has_value(); },
                      "default ServiceAccount"));
  const std::string uid = (*Get(client::kServiceAccounts, "default"))["metadata"]["uid"];
  ASSERT_TRUE(Delete(client::kServiceAccounts, "default"));
  ASSERT_TRUE(WaitFor([&] {
    auto account = Get(client::kServiceAccounts, "default");
    return account && (*account)["metadata"]["uid"] != uid;
  }, "a new default ServiceAccount"));
}

}  // namespace
}  // namespace mk8s::controllers::test
