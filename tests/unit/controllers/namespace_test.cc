// Namespace controller: deleting a namespace deletes everything in it, waits for what is still
// finalizing, then finalizes the namespace so it goes away. Other namespaces are untouched.
#include "fixture.h"

namespace mk8s::controllers::test {
namespace {

class NamespaceTest : public ControllerTest {
 protected:
  void SetUp() override {
    ControllerTest::SetUp();
    if (HasFatalFailure()) return;
    StartController("namespace");
  }
  size_t Count(const client::ResourceRef& resource, const std::string& ns) {
    return ListIn(resource, ns).size();
  }
};

TEST_F(NamespaceTest, DeletionCascadesThenFinalizes) {
  const std::string doomed = "doomed";
  CreateNamespace(doomed);
  auto in_doomed = [&](json object) {
    object["metadata"]["namespace"] = doomed;
    return object;
  };
  Create(client::kConfigMaps, in_doomed(MakeConfigMap("settings", {{"k", "v"}})));
  Create(client::kPods, in_doomed(MakePod("worker", {{"app", "w"}})));
  Create(client::kServices, in_doomed(MakeService("svc", {{"app", "w"}},
                                                  json::array({{{"port", 80}}}))));
  Create(client::kReplicaSets, in_doomed(MakeReplicaSet("rs", 0, {{"app", "w"}})));
  Create(client::kDeployments, in_doomed(MakeDeployment("deploy", 0, {{"app", "d"}})));
  Create(client::kSecrets, in_doomed({{"apiVersion", "v1"}, {"kind", "Secret"},
                                      {"metadata", {{"name", "token"}}},
                                      {"stringData", {{"a", "b"}}}}));
  Create(client::kControllerRevisions,
         in_doomed({{"apiVersion", "apps/v1"}, {"kind", "ControllerRevision"},
                    {"metadata", {{"name", "ds-1"}}}, {"data", json::object()}, {"revision", 1}}));
  // Held by a finalizer some other controller would remove.
  json held = in_doomed(MakeConfigMap("held"));
  held["metadata"]["finalizers"] = json::array({"example.com/hold"});
  Create(client::kConfigMaps, held);
  // A bystander in the test's own namespace.
  Create(client::kConfigMaps, MakeConfigMap("bystander"));

  ASSERT_TRUE(DeleteIn(client::kNamespaces, "", doomed));
  const json terminating = *Get(client::kNamespaces, "", doomed);
  EXPECT_TRUE(HasDeletionTimestamp(terminating));

  // The controller deletes everything, then rechecks every 500 ms (fake time) while "held" stays.
  ASSERT_TRUE(AdvanceUntil([&] {
    return Count(client::kPods, doomed) == 0 && Count(client::kServices, doomed) == 0 &&
           Count(client::kReplicaSets, doomed) == 0 && Count(client::kDeployments, doomed) == 0 &&
           Count(client::kSecrets, doomed) == 0 &&
           Count(client::kControllerRevisions, doomed) == 0 &&
           Count(client::kConfigMaps, doomed) == 1;
  }, 500ms, 10s, "everything but the held ConfigMap deleted"));
  const json still_held = *Get(client::kConfigMaps, doomed, "held");
  EXPECT_TRUE(HasDeletionTimestamp(still_held));
  Advance(1s);
  ASSERT_TRUE(Get(client::kNamespaces, "", doomed).has_value())
      << "the namespace went away before its content";

  auto released = api().Patch(client::kConfigMaps, doomed, "held", client::PatchType::kMerge,
                              {{"metadata", {{"finalizers", nullptr}}}});
  ASSERT_TRUE(released.ok() || client::IsNotFound(released.error()));
  ASSERT_TRUE(AdvanceUntil([&] { return !Get(client::kNamespaces, "", doomed).has_value(); },
                           500ms, 10s, "namespace finalized and removed"));
  EXPECT_TRUE(Get(client::kConfigMaps, "bystander").has_value());
  EXPECT_TRUE(Get(client::kNamespaces, "", ns()).has_value());
}

TEST_F(NamespaceTest, EmptyNamespaceGoesAtOnce) {
  CreateNamespace("empty");
  ASSERT_TRUE(DeleteIn(client::kNamespaces, "", "empty"));
  // Nothing to wait for: no fake time needed.
  ASSERT_TRUE(WaitFor([&] { return !Get(client::kNamespaces, "", "empty").has_value(); },
                      "empty namespace removed"));
}

}  // namespace
}  // namespace mk8s::controllers::test
