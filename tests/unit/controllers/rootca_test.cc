// Root CA publisher: every active namespace has the kube-root-ca.crt ConfigMap holding the
// cluster CA; it is restored when edited and recreated when deleted.
#include "fixture.h"

namespace mk8s::controllers::test {
namespace {

class RootCaTest : public ControllerTest {
 protected:
  void SetUp() override {
    ControllerTest::SetUp();
    if (HasFatalFailure()) return;
    StartController("root-ca-publisher");
  }
  bool HasCa(const std::string& ns) {
    auto cm = Get(client::kConfigMaps, ns, "kube-root-ca.crt");
    return cm && cm->value("/data/ca.crt"_json_pointer, std::string()) == cluster_ca_pem();
  }
};

TEST_F(RootCaTest, PublishedInEveryNamespace) {
  ASSERT_NE(cluster_ca_pem().find("BEGIN CERTIFICATE"), std::string::npos);
  ASSERT_TRUE(WaitFor([&] { return HasCa(ns()) && HasCa("kube-system"); },
                      "kube-root-ca.crt in existing namespaces"));
  CreateNamespace("fresh");
  ASSERT_TRUE(WaitFor([&] { return HasCa("fresh"); }, "kube-root-ca.crt in a new namespace"));
}

TEST_F(RootCaTest, EditedOrDeletedConfigMapIsRestored) {
  ASSERT_TRUE(WaitFor([&] { return HasCa(ns()); }, "kube-root-ca.crt"));
  Patch(client::kConfigMaps, "kube-root-ca.crt", {{"data", {{"ca.crt", "tampered"}}}});
  ASSERT_TRUE(WaitFor([&] { return HasCa(ns()); }, "edited CA restored"));
  ASSERT_TRUE(Delete(client::kConfigMaps, "kube-root-ca.crt"));
  ASSERT_TRUE(WaitFor([&] { return HasCa(ns()); }, "deleted CA recreated"));
}

}  // namespace
}  // namespace mk8s::controllers::test
