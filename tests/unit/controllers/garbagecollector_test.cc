// Garbage collector: dependents of a deleted owner are deleted (background), orphaned (Orphan:
// ownerReferences removed), or delete first while the owner waits (Foreground); a dependent
// with another live owner only loses the reference to the deleted one.
#include "client/node_lease.h"
#include "fixture.h"

namespace mk8s::controllers::test {
namespace {

class GarbageCollectorTest : public ControllerTest {
 protected:
  void SetUp() override {
    ControllerTest::SetUp();
    if (HasFatalFailure()) return;
    StartController("garbage-collector");
  }
  json Dependent(const client::ResourceRef& resource, json object, const json& owners) {
    object["metadata"]["ownerReferences"] = owners;
    return Create(resource, object);
  }
  bool Gone(const client::ResourceRef& resource, const std::string& name) {
    return !Get(resource, name).has_value();
  }
  // Removes one finalizer (read-modify-write, so others stay).
  void RemoveFinalizer(const client::ResourceRef& resource, const std::string& name,
                       const std::string& finalizer) {
    Mutate(resource, name, [&](json& object) {
      json kept = json::array();
      for (const json& f : object["metadata"].value("finalizers", json::array())) {
        if (f != finalizer) kept.push_back(f);
      }
      object["metadata"]["finalizers"] = kept;
    });
  }
};

const client::ResourceRef kCsrs{"certificates.k8s.io", "v1", "certificatesigningrequests", false};

// An ownerReference to an object that was never created.
json RefTo(const std::string& api_version, const std::string& kind, const std::string& name,
           const std::string& uid) {
  return {{"apiVersion", api_version}, {"kind", kind}, {"name", name}, {"uid", uid}};
}

std::vector<std::string> OwnerUids(const json& object) {
  std::vector<std::string> uids;
  for (const json& ref : object["metadata"].value("ownerReferences", json::array())) {
    uids.push_back(ref.value("uid", ""));
  }
  return uids;
}

TEST_F(GarbageCollectorTest, BackgroundDeletesDependents) {
  const json owner = Create(client::kConfigMaps, MakeConfigMap("owner"));
  Dependent(client::kConfigMaps, MakeConfigMap("dep-cm"), json::array({OwnerRef(owner)}));
  Dependent(client::kPods, MakePod("dep-pod", {{"app", "x"}}), json::array({OwnerRef(owner)}));
  Dependent(client::kSecrets, {{"apiVersion", "v1"}, {"kind", "Secret"},
                               {"metadata", {{"name", "dep-secret"}}}},
            json::array({OwnerRef(owner)}));
  Create(client::kConfigMaps, MakeConfigMap("unrelated"));

  ASSERT_TRUE(Delete(client::kConfigMaps, "owner", "Background"));
  EXPECT_TRUE(Gone(client::kConfigMaps, "owner")) << "background: the owner goes at once";
  ASSERT_TRUE(WaitFor([&] {
    return Gone(client::kConfigMaps, "dep-cm") && Gone(client::kPods, "dep-pod") &&
           Gone(client::kSecrets, "dep-secret");
  }, "every dependent collected"));
  EXPECT_FALSE(Gone(client::kConfigMaps, "unrelated"));
}

// Dependents created after their owner is already gone (a stale reference) are collected too.
TEST_F(GarbageCollectorTest, DanglingOwnerReferenceIsCollected) {
  const json owner = Create(client::kConfigMaps, MakeConfigMap("ephemeral"));
  ASSERT_TRUE(Delete(client::kConfigMaps, "ephemeral"));
  Dependent(client::kConfigMaps, MakeConfigMap("late-dep"), json::array({OwnerRef(owner)}));
  ASSERT_TRUE(WaitFor([&] { return Gone(client::kConfigMaps, "late-dep"); },
                      "dependent of a missing owner collected"));
}

TEST_F(GarbageCollectorTest, ForegroundWaitsForDependents) {
  const json owner = Create(client::kReplicaSets, MakeReplicaSet("fg", 0, {{"app", "fg"}}));
  const json pod = Dependent(client::kPods, MakePod("fg-pod", {{"app", "other"}}),
                             json::array({OwnerRef(owner, true, true)}));
  json held = MakeConfigMap("fg-held");
  held["metadata"]["finalizers"] = json::array({"example.com/hold"});
  held = Dependent(client::kConfigMaps, held, json::array({OwnerRef(owner, false, true)}));
  // The collector knows dependents from its informers: let them see these first (an owner
  // deleted before its dependents reach the cache would find none to wait for).
  ASSERT_TRUE(WaitUntilCached(client::kPods, pod));
  ASSERT_TRUE(WaitUntilCached(client::kConfigMaps, held));

  ASSERT_TRUE(Delete(client::kReplicaSets, "fg", "Foreground"));
  ASSERT_TRUE(WaitFor([&] {
    auto cm = Get(client::kConfigMaps, "fg-held");
    return Gone(client::kPods, "fg-pod") && cm && HasDeletionTimestamp(*cm);
  }, "dependents being deleted")) << [&] {
    std::string state;
    for (const auto& [r, n] : {std::pair{client::kReplicaSets, "fg"}, {client::kPods, "fg-pod"},
                               {client::kConfigMaps, "fg-held"}}) {
      auto got = Get(r, n);
      state += "\n" + std::string(n) + ": " + (got ? (*got)["metadata"].dump() : "gone");
    }
    return state;
  }();
  // The owner stays, marked, while a dependent remains.
  Advance(1s);
  auto waiting = Get(client::kReplicaSets, "fg");
  ASSERT_TRUE(waiting.has_value()) << "the owner went before its dependents";
  EXPECT_TRUE(HasDeletionTimestamp(*waiting));
  const json finalizers = (*waiting)["metadata"].value("finalizers", json::array());
  EXPECT_NE(std::find(finalizers.begin(), finalizers.end(), "foregroundDeletion"), finalizers.end());

  RemoveFinalizer(client::kConfigMaps, "fg-held", "example.com/hold");
  ASSERT_TRUE(AdvanceUntil([&] { return Gone(client::kConfigMaps, "fg-held") &&
                                        Gone(client::kReplicaSets, "fg"); },
                           500ms, 15s, "owner deleted once its dependents are gone"));
}

TEST_F(GarbageCollectorTest, OrphanKeepsDependentsWithoutTheReference) {
  const json owner = Create(client::kConfigMaps, MakeConfigMap("parent"));
  const json other = Create(client::kConfigMaps, MakeConfigMap("other-parent"));
  const json a_created =
      Dependent(client::kConfigMaps, MakeConfigMap("child-a"), json::array({OwnerRef(owner)}));
  const json b_created = Dependent(client::kConfigMaps, MakeConfigMap("child-b"),
                                   json::array({OwnerRef(owner), OwnerRef(other)}));
  // As for Foreground: the collector orphans the dependents its informers know.
  ASSERT_TRUE(WaitUntilCached(client::kConfigMaps, a_created));
  ASSERT_TRUE(WaitUntilCached(client::kConfigMaps, b_created));

  ASSERT_TRUE(Delete(client::kConfigMaps, "parent", "Orphan"));
  ASSERT_TRUE(WaitFor([&] { return Gone(client::kConfigMaps, "parent"); },
                      "orphaning owner removed"));
  auto a = Get(client::kConfigMaps, "child-a");
  auto b = Get(client::kConfigMaps, "child-b");
  ASSERT_TRUE(a.has_value()) << "an orphaned dependent was deleted";
  ASSERT_TRUE(b.has_value());
  EXPECT_TRUE(OwnerUids(*a).empty());
  EXPECT_EQ(OwnerUids(*b), std::vector<std::string>{other["metadata"]["uid"]});
}

TEST_F(GarbageCollectorTest, DependentWithAnotherOwnerSurvives) {
  const json first = Create(client::kConfigMaps, MakeConfigMap("first"));
  const json second = Create(client::kConfigMaps, MakeConfigMap("second"));
  Dependent(client::kConfigMaps, MakeConfigMap("shared"),
            json::array({OwnerRef(first), OwnerRef(second)}));
  ASSERT_TRUE(Delete(client::kConfigMaps, "first"));
  ASSERT_TRUE(WaitFor([&] {
    auto shared = Get(client::kConfigMaps, "shared");
    return shared && OwnerUids(*shared) == std::vector<std::string>{second["metadata"]["uid"]};
  }, "the reference to the deleted owner removed"));
  ASSERT_TRUE(Delete(client::kConfigMaps, "second"));
  ASSERT_TRUE(WaitFor([&] { return Gone(client::kConfigMaps, "shared"); },
                      "collected once the last owner is gone"));
}

// An owner whose kind the server does not serve (an unknown group version, or an unknown kind in a
// served one) cannot be looked up, so it never counts as gone: only the reference to the owner
// that really is gone is removed, and the dependent stays.
TEST_F(GarbageCollectorTest, UnservedOwnerKindNeverCausesDelete) {
  const json gone = Create(client::kConfigMaps, MakeConfigMap("gone"));
  ASSERT_TRUE(Delete(client::kConfigMaps, "gone"));
  const json hpa = RefTo("autoscaling/v2", "HorizontalPodAutoscaler", "scaler", "0b6c9f5e-hpa");
  const json widget = RefTo("apps/v1", "Widget", "w", "0b6c9f5e-widget");
  Dependent(client::kConfigMaps, MakeConfigMap("kept"), json::array({hpa, widget, OwnerRef(gone)}));
  ASSERT_TRUE(WaitFor([&] {
    auto kept = Get(client::kConfigMaps, "kept");
    return !kept || OwnerUids(*kept).size() == 2;
  }, "the reference to the deleted owner removed"));
  auto kept = Get(client::kConfigMaps, "kept");
  ASSERT_TRUE(kept.has_value()) << "deleted although two owners could not be looked up";
  EXPECT_EQ(OwnerUids(*kept), (std::vector<std::string>{"0b6c9f5e-hpa", "0b6c9f5e-widget"}));
}

// A cluster-scoped owner of a kind the collector does not follow (a CSR) is looked up where the
// server serves it: an existing one keeps its dependent, a missing one does not.
TEST_F(GarbageCollectorTest, ClusterScopedOwnerIsLookedUpThroughDiscovery) {
  const json csr = Create(kCsrs, MakeClientCsr(Unique("owner")));
  ASSERT_FALSE(csr.is_null());
  const json gone = Create(client::kConfigMaps, MakeConfigMap("gone"));
  ASSERT_TRUE(Delete(client::kConfigMaps, "gone"));
  Dependent(client::kConfigMaps, MakeConfigMap("of-csr"),
            json::array({OwnerRef(csr), OwnerRef(gone)}));
  Dependent(client::kConfigMaps, MakeConfigMap("of-missing-csr"),
            json::array({RefTo("certificates.k8s.io/v1", "CertificateSigningRequest",
                               Unique("never"), "0b6c9f5e-csr")}));
  ASSERT_TRUE(WaitFor([&] {
    auto kept = Get(client::kConfigMaps, "of-csr");
    return !kept || OwnerUids(*kept).size() == 1;
  }, "the reference to the deleted owner removed"));
  auto kept = Get(client::kConfigMaps, "of-csr");
  ASSERT_TRUE(kept.has_value()) << "deleted although its CSR owner exists";
  EXPECT_EQ(OwnerUids(*kept), std::vector<std::string>{csr["metadata"]["uid"]});
  ASSERT_TRUE(WaitFor([&] { return Gone(client::kConfigMaps, "of-missing-csr"); },
                      "dependent of a missing CSR collected"));
}

// ControllerRevisions (DaemonSet and StatefulSet history) are followed like other dependents.
TEST_F(GarbageCollectorTest, ControllerRevisionsOfADeletedOwnerAreCollected) {
  const json owner = Create(client::kConfigMaps, MakeConfigMap("history-owner"));
  const json revision = Dependent(client::kControllerRevisions,
                                  {{"apiVersion", "apps/v1"},
                                   {"kind", "ControllerRevision"},
                                   {"metadata", {{"name", "history-1"}}},
                                   {"data", json::object()},
                                   {"revision", 1}},
                                  json::array({OwnerRef(owner, true, true)}));
  ASSERT_FALSE(revision.is_null());
  ASSERT_TRUE(Delete(client::kConfigMaps, "history-owner"));
  ASSERT_TRUE(WaitFor([&] { return Gone(client::kControllerRevisions, "history-1"); },
                      "ControllerRevision collected"));
}

// A kubelet's Lease is owned by its Node: deleting the Node collects the Lease.
TEST_F(GarbageCollectorTest, NodeLeaseGoesWithItsNode) {
  const json node = Create(client::kNodes, MakeNode("leased"));
  const std::string uid = node["metadata"]["uid"];
  Create(client::kLeases, client::NodeLease("leased", 40, Timestamp(), uid));
  Create(client::kLeases, client::NodeLease("unowned", 40, Timestamp(), ""));
  ASSERT_TRUE(DeleteIn(client::kNodes, "", "leased"));
  ASSERT_TRUE(WaitFor([&] { return !Get(client::kLeases, client::kNodeLeaseNamespace, "leased"); },
                      "the Lease of the deleted Node collected"));
  EXPECT_TRUE(Get(client::kLeases, client::kNodeLeaseNamespace, "unowned").has_value());
}

}  // namespace
}  // namespace mk8s::controllers::test
