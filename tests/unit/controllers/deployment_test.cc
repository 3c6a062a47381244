// Deployment controller (with the ReplicaSet controller making the pods, and the test playing the
// kubelets by writing pod readiness): a ReplicaSet per template hash, RollingUpdate within
// maxSurge/maxUnavailable at every step, Recreate, rollback, pause, and progressDeadlineSeconds
// on the fake clock.
#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <set>

#include "client/informer.h"
#include "controllers/common/controller_ref_manager.h"
#include "controllers/common/pod_util.h"
#include "controllers/common/template_hash.h"
#include "controllers/deployment/deployment_controller.h"
#include "fixture.h"

namespace mk8s::controllers::test {
namespace {

constexpr const char* kRevision = "deployment.kubernetes.io/revision";

std::string Annotation(const json& object, const std::string& key) {
  return object.value("/metadata/annotations"_json_pointer, json::object()).value(key, "");
}
std::string Image(const json& object) {
  return object.value("/spec/template/spec/containers/0/image"_json_pointer, std::string());
}

// Watches the namespace's ReplicaSets and pods and checks rollout invariants on every event.
class RolloutObserver {
 public:
  RolloutObserver(const std::shared_ptr<client::Client>& api, const std::string& ns) {
    client::InformerOptions options;
    options.namespace_ = ns;
    rs_ = std::make_unique<client::Informer>(api, client::kReplicaSets, options);
    pods_ = std::make_unique<client::Informer>(api, client::kPods, options);
    auto on_rs = [this](const client::ObjectPtr&) {
      int64_t sum = 0;
      for (const client::ObjectPtr& rs : rs_->List()) sum += (*rs)["spec"].value("replicas", 0);
      std::lock_guard lock(mu_);
      max_spec_sum_ = std::max(max_spec_sum_, sum);
    };
    rs_->AddEventHandler({on_rs, [on_rs](const client::ObjectPtr&, const client::ObjectPtr& o) {
                            on_rs(o);
                          },
                          on_rs});
    auto on_pod = [this](const client::ObjectPtr&) {
      int64_t ready = 0;
      std::map<std::string, int64_t> active_by_hash;
      for (const client::ObjectPtr& pod : pods_->List()) {
        if (HasDeletionTimestamp(*pod)) continue;
        ++active_by_hash[(*pod).value("/metadata/labels/pod-template-hash"_json_pointer, std::string())];
        if (ConditionStatus(*pod, "Ready") == "True") ++ready;
      }
      std::lock_guard lock(mu_);
      if (armed_) min_ready_ = std::min(min_ready_, ready);
      max_templates_ = std::max<int64_t>(max_templates_, static_cast<int64_t>(active_by_hash.size()));
    };
    pods_->AddEventHandler({on_pod, [on_pod](const client::ObjectPtr&, const client::ObjectPtr& o) {
                              on_pod(o);
                            },
                            on_pod});
    rs_->Start();
    pods_->Start();
  }
  ~RolloutObserver() {
    rs_->Stop();
    pods_->Stop();
  }
  bool Synced() { return rs_->WaitForSync(10s) && pods_->WaitForSync(10s); }
  // From now on, the ready-pod minimum and the template counts are tracked.
  void Arm() {
    std::lock_guard lock(mu_);
    armed_ = true;
    min_ready_ = INT64_MAX;
    max_spec_sum_ = 0;
    max_templates_ = 0;
  }
  int64_t max_spec_sum() { std::lock_guard lock(mu_); return max_spec_sum_; }
  int64_t min_ready() { std::lock_guard lock(mu_); return min_ready_; }
  int64_t max_templates() { std::lock_guard lock(mu_); return max_templates_; }

 private:
  std::unique_ptr<client::Informer> rs_, pods_;
  std::mutex mu_;
  bool armed_ = false;              // GUARDED_BY(mu_)
  int64_t max_spec_sum_ = 0;        // GUARDED_BY(mu_)
  int64_t min_ready_ = INT64_MAX;   // GUARDED_BY(mu_)
  int64_t max_templates_ = 0;       // GUARDED_BY(mu_): most templates with active pods at once
};

class DeploymentTest : public ControllerTest {
 protected:
  void SetUp() override {
    ControllerTest::SetUp();
    if (HasFatalFailure()) return;
    StartControllers({"deployment", "replicaset"});
  }

  json GetDeployment(const std::string& name) {
    return Get(client::kDeployments, name).value_or(json());
  }
  std::vector<json> ReplicaSetsOf(const json& deployment) {
    std::vector<json> out;
    for (const json& rs : List(client::kReplicaSets)) {
      for (const json& ref : rs["metadata"].value("ownerReferences", json::array())) {
        if (ref.value("uid", "") == deployment["metadata"].value("uid", "")) out.push_back(rs);
      }
    }
    return out;
  }
  // The ReplicaSet whose template has this image.
  json ReplicaSetWithImage(const json& deployment, const std::string& image) {
    for (const json& rs : ReplicaSetsOf(deployment)) {
      if (Image(rs) == image) return rs;
    }
    return json();
  }
  bool RolloutComplete(const std::string& name) {
    const json d = GetDeployment(name);
    if (d.is_null()) return false;
    const int64_t replicas = d["spec"].value("replicas", 1);
    const json* progressing = FindCondition(d, "Progressing");
    return StatusInt(d, "observedGeneration") >= d["metadata"].value("generation", 0) &&
           StatusInt(d, "updatedReplicas") == replicas && StatusInt(d, "replicas") == replicas &&
           StatusInt(d, "availableReplicas") == replicas && progressing != nullptr &&
           progressing->value("reason", "") == "NewReplicaSetAvailable";
  }
  // Plays the kubelets (every new pod turns Ready) until the rollout completes.
  ::testing::AssertionResult DriveRollout(const std::string& name) {
    return WaitFor([&] {
      ReadyAllPods();
      return RolloutComplete(name);
    }, 30s, "rollout of " + name + " complete");
  }
  void SetImage(const std::string& name, const std::string& image) {
    Mutate(client::kDeployments, name, [&](json& d) {
      d["spec"]["template"]["spec"]["containers"][0]["image"] = image;
    });
  }
};

TEST_F(DeploymentTest, CreatesOneReplicaSetPerTemplateHash) {
  const json d = Create(client::kDeployments, MakeDeployment("web", 3, {{"app", "web"}}));
  ASSERT_TRUE(DriveRollout("web"));
  auto sets = ReplicaSetsOf(d);
  ASSERT_EQ(sets.size(), 1u);
  const json& rs = sets[0];
  const std::string hash = PodTemplateHash(GetDeployment("web")["spec"]["template"]);
  EXPECT_EQ(rs["metadata"]["name"], "web-" + hash);
  EXPECT_EQ(rs["metadata"]["labels"]["pod-template-hash"], hash);
  EXPECT_EQ(rs["spec"]["selector"]["matchLabels"]["pod-template-hash"], hash);
  EXPECT_EQ(rs["spec"]["replicas"], 3);
  EXPECT_EQ(Annotation(rs, kRevision), "1");
  EXPECT_EQ(rs["metadata"]["ownerReferences"][0]["kind"], "Deployment");
  EXPECT_EQ(rs["metadata"]["ownerReferences"][0]["controller"], true);
  for (const json& pod : List(client::kPods)) {
    EXPECT_EQ(pod["metadata"]["labels"]["pod-template-hash"], hash);
  }
  const json got = GetDeployment("web");
  EXPECT_EQ(Annotation(got, kRevision), "1");
  EXPECT_EQ(ConditionStatus(got, "Available"), "True");
  EXPECT_EQ(StatusInt(got, "readyReplicas"), 3);
  EXPECT_EQ(StatusInt(got, "unavailableReplicas"), 0);
  EXPECT_FALSE(EventsWithReason("ScalingReplicaSet", "web").empty());

  // A spec change that is not a template change (replicas) reuses the ReplicaSet.
  Patch(client::kDeployments, "web", {{"spec", {{"replicas", 5}}}});
  ASSERT_TRUE(DriveRollout("web"));
  EXPECT_EQ(ReplicaSetsOf(d).size(), 1u);
  EXPECT_EQ(List(client::kPods).size(), 5u);
}

// replicas 4, maxSurge 1, maxUnavailable 1: the ReplicaSets never ask for more than 5 pods and
// never fewer than 3 pods are ready, at any event the test observes.
TEST_F(DeploymentTest, RollingUpdateRespectsSurgeAndUnavailable) {
  RolloutObserver observer(api_ptr(), ns());
  ASSERT_TRUE(observer.Synced());
  json spec = MakeDeployment("roll", 4, {{"app", "roll"}});
  spec["spec"]["strategy"] = {{"type", "RollingUpdate"},
                              {"rollingUpdate", {{"maxSurge", 1}, {"maxUnavailable", 1}}}};
  const json d = Create(client::kDeployments, spec);
  ASSERT_TRUE(DriveRollout("roll"));
  observer.Arm();

  SetImage("roll", "example/app:v2");
  ASSERT_TRUE(DriveRollout("roll"));
  // The surge was used (the observer saw the step) but never exceeded.
  EXPECT_EQ(observer.max_spec_sum(), 5) << "maxSurge exceeded or unused";
  EXPECT_GE(observer.min_ready(), 3) << "maxUnavailable exceeded";
  EXPECT_LE(observer.min_ready(), 4);
  EXPECT_EQ(observer.max_templates(), 2);

  const json old_rs = ReplicaSetWithImage(d, "registry.k8s.io/pause:3.9");
  const json new_rs = ReplicaSetWithImage(d, "example/app:v2");
  ASSERT_FALSE(old_rs.is_null());
  ASSERT_FALSE(new_rs.is_null());
  EXPECT_EQ(old_rs["spec"]["replicas"], 0);
  EXPECT_EQ(new_rs["spec"]["replicas"], 4);
  EXPECT_EQ(Annotation(new_rs, kRevision), "2");
  EXPECT_EQ(Annotation(GetDeployment("roll"), kRevision), "2");
  for (const json& pod : List(client::kPods)) {
    EXPECT_EQ(pod.value("/spec/containers/0/image"_json_pointer, std::string()), "example/app:v2");
  }
}

TEST_F(DeploymentTest, RecreateStopsOldPodsBeforeStartingNew) {
  RolloutObserver observer(api_ptr(), ns());
  ASSERT_TRUE(observer.Synced());
  json spec = MakeDeployment("rec", 3, {{"app", "rec"}});
  spec["spec"]["strategy"] = {{"type", "Recreate"}};
  const json d = Create(client::kDeployments, spec);
  ASSERT_TRUE(DriveRollout("rec"));
  observer.Arm();

  SetImage("rec", "example/app:v2");
  ASSERT_TRUE(DriveRollout("rec"));
  EXPECT_EQ(observer.max_templates(), 1) << "old and new pods ran at the same time";
  EXPECT_EQ(observer.min_ready(), 0) << "Recreate should have gone through zero pods";
  EXPECT_EQ(ReplicaSetWithImage(d, "registry.k8s.io/pause:3.9")["spec"]["replicas"], 0);
  EXPECT_EQ(ReplicaSetWithImage(d, "example/app:v2")["spec"]["replicas"], 3);
}

// `kubectl rollout undo` writes the previous ReplicaSet's template (without its hash label) back
// into the Deployment: the old ReplicaSet scales up again and takes the next revision.
TEST_F(DeploymentTest, RollbackReusesTheOldReplicaSet) {
  const json d = Create(client::kDeployments, MakeDeployment("undo", 2, {{"app", "undo"}}));
  ASSERT_TRUE(DriveRollout("undo"));
  SetImage("undo", "example/app:v2");
  ASSERT_TRUE(DriveRollout("undo"));
  const json v1 = ReplicaSetWithImage(d, "registry.k8s.io/pause:3.9");
  ASSERT_FALSE(v1.is_null());
  ASSERT_EQ(v1["spec"]["replicas"], 0);

  json old_template = v1["spec"]["template"];
  old_template["metadata"]["labels"].erase("pod-template-hash");
  Mutate(client::kDeployments, "undo", [&](json& object) { object["spec"]["template"] = old_template; });
  ASSERT_TRUE(DriveRollout("undo"));

  EXPECT_EQ(ReplicaSetsOf(d).size(), 2u) << "a rollback must not create a third ReplicaSet";
  const json back = ReplicaSetWithImage(d, "registry.k8s.io/pause:3.9");
  EXPECT_EQ(back["metadata"]["uid"], v1["metadata"]["uid"]);
  EXPECT_EQ(back["spec"]["replicas"], 2);
  EXPECT_EQ(Annotation(back, kRevision), "3");
  EXPECT_EQ(ReplicaSetWithImage(d, "example/app:v2")["spec"]["replicas"], 0);
  EXPECT_EQ(Annotation(GetDeployment("undo"), kRevision), "3");
}

TEST_F(DeploymentTest, PausedDeploymentDoesNotRollOut) {
  const json d = Create(client::kDeployments, MakeDeployment("pz", 2, {{"app", "pz"}}));
  ASSERT_TRUE(DriveRollout("pz"));
  json paused = Mutate(client::kDeployments, "pz", [](json& object) {
    object["spec"]["paused"] = true;
    object["spec"]["template"]["spec"]["containers"][0]["image"] = "example/app:v2";
  });
  const int64_t generation = paused["metadata"]["generation"];
  // Barrier: the controller has seen the paused generation.
  ASSERT_TRUE(WaitFor([&] {
    const json got = GetDeployment("pz");
    const json* progressing = FindCondition(got, "Progressing");
    return StatusInt(got, "observedGeneration") == generation && progressing != nullptr &&
           progressing->value("reason", "") == "DeploymentPaused";
  }, "paused generation observed"));
  EXPECT_EQ(ReplicaSetsOf(d).size(), 1u) << "a paused Deployment rolled out";
  EXPECT_EQ(ConditionStatus(GetDeployment("pz"), "Progressing"), "Unknown");

  Patch(client::kDeployments, "pz", {{"spec", {{"paused", false}}}});
  ASSERT_TRUE(DriveRollout("pz"));
  EXPECT_EQ(ReplicaSetWithImage(d, "example/app:v2")["spec"]["replicas"], 2);
}

// No progress for progressDeadlineSeconds (pods never turn Ready) -> Progressing=False with
// reason ProgressDeadlineExceeded, driven by the fake clock; progress afterwards recovers.
TEST_F(DeploymentTest, ProgressDeadlineExceeded) {
  json spec = MakeDeployment("slow", 2, {{"app", "slow"}});
  spec["spec"]["progressDeadlineSeconds"] = 30;
  Create(client::kDeployments, spec);
  auto progressing_reason = [&] {
    const json got = GetDeployment("slow");
    const json* condition = FindCondition(got, "Progressing");
    return condition ? condition->value("reason", "") : "";
  };
  // Settled: both pods exist (not Ready), the Deployment's status counts them.
  ASSERT_TRUE(WaitFor([&] {
    const json got = GetDeployment("slow");
    return StatusInt(got, "updatedReplicas") == 2 && StatusInt(got, "replicas") == 2 &&
           progressing_reason() == "ReplicaSetUpdated";
  }, "2 pods created, rollout progressing"));
  EXPECT_EQ(ConditionStatus(GetDeployment("slow"), "Available"), "False");

  Advance(20s);  // still inside the deadline
  EXPECT_EQ(ConditionStatus(GetDeployment("slow"), "Progressing"), "True");
  // Steps of 1 s: a recheck a worker schedules while Advance() runs may land behind it.
  ASSERT_TRUE(AdvanceUntil([&] { return progressing_reason() == "ProgressDeadlineExceeded"; }, 1s,
                           15s, "Progressing=False/ProgressDeadlineExceeded"));
  const json failed = GetDeployment("slow");
  EXPECT_EQ(ConditionStatus(failed, "Progressing"), "False");
  EXPECT_NE(FindCondition(failed, "Progressing")->value("message", "").find("timed out"),
            std::string::npos);
  EXPECT_TRUE(WaitFor([&] { return !EventsWithReason("ProgressDeadlineExceeded", "slow").empty(); },
                      "a ProgressDeadlineExceeded event"));

  ASSERT_TRUE(DriveRollout("slow"));
  EXPECT_EQ(ConditionStatus(GetDeployment("slow"), "Progressing"), "True");
  EXPECT_EQ(ConditionStatus(GetDeployment("slow"), "Available"), "True");
}


// A ReplicaSet nobody owns, with another template, already holds the name the Deployment's first
// ReplicaSet would take: status.collisionCount goes to 1, the ReplicaSet is made under the next
// name and rolls out, and the stranger is left as it was.
TEST_F(DeploymentTest, TakenReplicaSetNameRaisesCollisionCount) {
  json spec = MakeDeployment("web", 2, {{"app", "web"}});
  spec["spec"]["paused"] = true;  // no ReplicaSet yet: the test takes its name first
  const json d = Create(client::kDeployments, spec);
  const json pod_template = d["spec"]["template"];  // as the server stored (defaulted) it
  const std::string taken = "web-" + PodTemplateHash(pod_template);
  json stranger = MakeReplicaSet(taken, 0, {{"app", "other"}});
  stranger["spec"]["template"]["spec"]["containers"][0]["image"] = "example/other:1";
  const json planted = Create(client::kReplicaSets, stranger);

  Patch(client::kDeployments, "web", {{"spec", {{"paused", false}}}});
  ASSERT_TRUE(DriveRollout("web"));
  EXPECT_EQ(GetDeployment("web").value("/status/collisionCount"_json_pointer, -1), 1);
  const std::string next_hash = PodTemplateHash(pod_template, 1);
  auto sets = ReplicaSetsOf(d);
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_EQ(sets[0]["metadata"]["name"], "web-" + next_hash);
  EXPECT_EQ(sets[0]["metadata"]["labels"]["pod-template-hash"], next_hash);
  EXPECT_EQ(sets[0]["spec"]["selector"]["matchLabels"]["pod-template-hash"], next_hash);
  for (const json& pod : List(client::kPods, "app=web")) {
    EXPECT_EQ(pod["metadata"]["labels"]["pod-template-hash"], next_hash);
  }
  const std::optional<json> after = Get(client::kReplicaSets, taken);
  ASSERT_TRUE(after.has_value());
  EXPECT_FALSE((*after)["metadata"].contains("ownerReferences"));
  EXPECT_EQ((*after)["metadata"].value("labels", json()), planted["metadata"].value("labels", json()));
  EXPECT_EQ((*after)["spec"], planted["spec"]);
  EXPECT_EQ((*after)["metadata"]["generation"], planted["metadata"]["generation"]);

  // No loop: a later reconcile (a scale, whose event follows the count's) keeps the count and the
  // ReplicaSet.
  Patch(client::kDeployments, "web", {{"spec", {{"replicas", 3}}}});
  ASSERT_TRUE(DriveRollout("web"));
  EXPECT_EQ(GetDeployment("web").value("/status/collisionCount"_json_pointer, -1), 1);
  sets = ReplicaSetsOf(d);
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_EQ(sets[0]["metadata"]["name"], "web-" + next_hash);
}

// ReplicaSets made before collisionCount moved are still found by their template: raising the
// count rolls nothing out; only the next template's ReplicaSet is named with it.
TEST_F(DeploymentTest, RaisedCollisionCountKeepsTheCurrentReplicaSet) {
  const json d = Create(client::kDeployments, MakeDeployment("keep", 2, {{"app", "keep"}}));
  ASSERT_TRUE(DriveRollout("keep"));
  const json before = ReplicaSetsOf(d).at(0);
  EXPECT_EQ(before["metadata"]["name"], "keep-" + PodTemplateHash(d["spec"]["template"]));

  const json counted = Mutate(client::kDeployments, "keep",
                              [](json& object) { object["status"]["collisionCount"] = 1; },
                              /*status=*/true);
  ASSERT_TRUE(WaitUntilCached(client::kDeployments, counted));
  Patch(client::kDeployments, "keep", {{"spec", {{"replicas", 3}}}});
  ASSERT_TRUE(DriveRollout("keep"));
  auto sets = ReplicaSetsOf(d);
  ASSERT_EQ(sets.size(), 1u) << "a raised collisionCount rolled out an unchanged template";
  EXPECT_EQ(sets[0]["metadata"]["uid"], before["metadata"]["uid"]);
  EXPECT_EQ(sets[0]["spec"]["replicas"], 3);
  EXPECT_EQ(Annotation(GetDeployment("keep"), kRevision), "1");
  EXPECT_EQ(GetDeployment("keep").value("/status/collisionCount"_json_pointer, -1), 1);

  SetImage("keep", "example/app:v2");
  ASSERT_TRUE(DriveRollout("keep"));
  const json v2 = ReplicaSetWithImage(d, "example/app:v2");
  ASSERT_FALSE(v2.is_null());
  EXPECT_EQ(v2["metadata"]["name"], "keep-" + PodTemplateHash(GetDeployment("keep")["spec"]["template"], 1));
}

// `kubectl delete deployment --cascade=orphan`, then the same Deployment again: the orphaned
// ReplicaSet (which holds the name the Deployment would take) is adopted and, its template being
// the Deployment's, is the new ReplicaSet: no second ReplicaSet, no collisionCount, same pods.
TEST_F(DeploymentTest, AdoptsTheOrphanedReplicaSetWithTheSameTemplate) {
  StartController("garbage-collector");
  const json first = Create(client::kDeployments, MakeDeployment("web", 2, {{"app", "web"}}));
  ASSERT_TRUE(DriveRollout("web"));
  const json orphan = ReplicaSetsOf(first).at(0);
  std::set<std::string> pod_uids;
  for (const json& pod : List(client::kPods, "app=web")) pod_uids.insert(pod["metadata"]["uid"]);
  ASSERT_EQ(pod_uids.size(), 2u);

  ASSERT_TRUE(Delete(client::kDeployments, "web", "Orphan"));
  ASSERT_TRUE(WaitFor(
      [&] {
        const std::optional<json> rs = Get(client::kReplicaSets, orphan["metadata"]["name"]);
        return !Get(client::kDeployments, "web") && rs &&
               (*rs)["metadata"].value("ownerReferences", json::array()).empty();
      },
      "the Deployment gone and its ReplicaSet orphaned"));

  const json second = Create(client::kDeployments, MakeDeployment("web", 2, {{"app", "web"}}));
  ASSERT_TRUE(DriveRollout("web"));
  const std::vector<json> all = List(client::kReplicaSets);
  ASSERT_EQ(all.size(), 1u) << "a second ReplicaSet was made for an unchanged template";
  EXPECT_EQ(all[0]["metadata"]["uid"], orphan["metadata"]["uid"]);
  const json* reference = ControllerRef(all[0]);
  ASSERT_NE(reference, nullptr);
  EXPECT_EQ(reference->value("uid", ""), second["metadata"].value("uid", ""));
  EXPECT_EQ(reference->value("kind", ""), "Deployment");
  EXPECT_TRUE(reference->value("blockOwnerDeletion", false));
  const json d = GetDeployment("web");
  EXPECT_FALSE(d.contains("/status/collisionCount"_json_pointer));
  EXPECT_EQ(Annotation(d, kRevision), "1");
  std::set<std::string> after;
  for (const json& pod : List(client::kPods, "app=web")) after.insert(pod["metadata"]["uid"]);
  EXPECT_EQ(after, pod_uids) << "the adopted ReplicaSet's pods were replaced";
}

// An orphan that matches, made after the Deployment (its event alone brings the Deployment
// back), with another template: adopted as an old ReplicaSet and scaled down to zero.
TEST_F(DeploymentTest, AdoptsALaterOrphanAsAnOldReplicaSet) {
  const json d = Create(client::kDeployments, MakeDeployment("web", 2, {{"app", "web"}}));
  ASSERT_TRUE(DriveRollout("web"));
  json extra = MakeReplicaSet("extra", 1, {{"app", "web"}, {"v", "old"}});
  extra["metadata"]["labels"] = {{"app", "web"}};
  extra["spec"]["template"]["spec"]["containers"][0]["image"] = "example/app:old";
  const json planted = Create(client::kReplicaSets, extra);
  ASSERT_TRUE(WaitFor(
      [&] {
        ReadyAllPods();
        const std::optional<json> rs = Get(client::kReplicaSets, "extra");
        const json* reference = rs ? ControllerRef(*rs) : nullptr;
        return reference != nullptr &&
               reference->value("uid", "") == d["metadata"].value("uid", "") &&
               (*rs)["spec"].value("replicas", -1) == 0;
      },
      "the later orphan adopted and scaled down"));
  ASSERT_TRUE(DriveRollout("web"));
  EXPECT_EQ(ReplicaSetsOf(d).size(), 2u);
  EXPECT_EQ(ReplicaSetWithImage(d, "example/app:old")["metadata"]["uid"],
            planted["metadata"]["uid"]);
}

// A matching ReplicaSet that another object controls is left alone.
TEST_F(DeploymentTest, IgnoresAReplicaSetControlledBySomeoneElse) {
  const json holder = Create(client::kConfigMaps, MakeConfigMap("holder"));
  json stranger = MakeReplicaSet("held", 0, {{"app", "web"}});
  stranger["metadata"]["labels"] = {{"app", "web"}};
  stranger["metadata"]["ownerReferences"] = json::array({MakeControllerRef(holder)});
  const json planted = Create(client::kReplicaSets, stranger);

  const json d = Create(client::kDeployments, MakeDeployment("web", 1, {{"app", "web"}}));
  ASSERT_TRUE(DriveRollout("web"));
  const auto sets = ReplicaSetsOf(d);
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_NE(sets[0]["metadata"]["name"], "held");
  const std::optional<json> after = Get(client::kReplicaSets, "held");
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ((*after)["metadata"]["ownerReferences"], planted["metadata"]["ownerReferences"]);
  EXPECT_EQ((*after)["metadata"]["labels"], planted["metadata"]["labels"]);
  EXPECT_EQ((*after)["spec"], planted["spec"]);
}

// A ReplicaSet whose labels stop matching the selector is released (its pods stay with it) and
// the Deployment makes a new one (its name is taken by the released one: collisionCount 1).
TEST_F(DeploymentTest, ReleasesAReplicaSetWhoseLabelsStopMatching) {
  const json d = Create(client::kDeployments, MakeDeployment("web", 2, {{"app", "web"}}));
  ASSERT_TRUE(DriveRollout("web"));
  const json before = ReplicaSetsOf(d).at(0);
  Patch(client::kReplicaSets, before["metadata"]["name"],
        {{"metadata", {{"labels", {{"app", "gone"}}}}}});

  ASSERT_TRUE(WaitFor(
      [&] {
        const std::optional<json> rs = Get(client::kReplicaSets, before["metadata"]["name"]);
        return rs && ControllerRef(*rs) == nullptr;
      },
      "the relabelled ReplicaSet released"));
  ASSERT_TRUE(WaitFor([&] { return ReplicaSetsOf(d).size() == 1; }, "a new ReplicaSet"));
  ASSERT_TRUE(DriveRollout("web"));
  const auto sets = ReplicaSetsOf(d);
  ASSERT_EQ(sets.size(), 1u);
  EXPECT_NE(sets[0]["metadata"]["uid"], before["metadata"]["uid"]);
  EXPECT_EQ(GetDeployment("web").value("/status/collisionCount"_json_pointer, -1), 1);
  const std::optional<json> released = Get(client::kReplicaSets, before["metadata"]["name"]);
  ASSERT_TRUE(released.has_value());
  EXPECT_EQ((*released)["spec"]["replicas"], 2) << "a released ReplicaSet is no longer scaled";
}

// No adoption for a Deployment being deleted: neither when the cached copy shows it, nor when
// only the fresh GET does (upstream's RecheckDeletionTimestamp), nor for a re-created namesake.
TEST_F(DeploymentTest, NoAdoptionWhileTheDeploymentIsBeingDeleted) {
  json spec = MakeDeployment("gone", 1, {{"app", "gone"}});
  spec["metadata"]["finalizers"] = json::array({"example.com/hold"});
  spec["spec"]["paused"] = true;  // makes no ReplicaSet of its own
  const json live = Create(client::kDeployments, spec);
  ASSERT_TRUE(Delete(client::kDeployments, "gone"));
  const std::optional<json> deleting = Get(client::kDeployments, "gone");
  ASSERT_TRUE(deleting && (*deleting)["metadata"].contains("deletionTimestamp"));
  // Created after the delete, so the running controller (which reads its cache, then rechecks)
  // never had a chance to adopt it either.
  json orphan_spec = MakeReplicaSet("loose", 0, {{"app", "gone"}});
  orphan_spec["metadata"]["labels"] = {{"app", "gone"}};
  const json orphan = Create(client::kReplicaSets, orphan_spec);
  const std::vector<client::ObjectPtr> candidates = {std::make_shared<const json>(orphan)};
  const json selector = live["spec"]["selector"];

  ControllerRefManager seen_deleting(api(), client::kDeployments, *deleting, selector);
  ControllerRefManager::Claimed claimed = seen_deleting.Claim(client::kReplicaSets, candidates);
  EXPECT_TRUE(claimed.status.ok()) << claimed.status.ToString();
  EXPECT_TRUE(claimed.objects.empty());

  ControllerRefManager stale_cache(api(), client::kDeployments, live, selector);
  claimed = stale_cache.Claim(client::kReplicaSets, candidates);
  EXPECT_NE(claimed.status.message().find("has just been deleted"), std::string::npos)
      << claimed.status.ToString();
  EXPECT_TRUE(claimed.objects.empty());

  json namesake = live;
  namesake["metadata"]["uid"] = "not-the-stored-one";
  namesake["metadata"].erase("deletionTimestamp");
  ControllerRefManager other_uid(api(), client::kDeployments, namesake, selector);
  claimed = other_uid.Claim(client::kReplicaSets, candidates);
  EXPECT_NE(claimed.status.message().find("is gone"), std::string::npos)
      << claimed.status.ToString();

  const std::optional<json> after = Get(client::kReplicaSets, "loose");
  ASSERT_TRUE(after.has_value());
  EXPECT_FALSE((*after)["metadata"].contains("ownerReferences")) << after->dump();
  Mutate(client::kDeployments, "gone",
         [](json& object) { object["metadata"].erase("finalizers"); });
}

// The names of existing ReplicaSets must not change: with collisionCount unset the hash is the
// one mk8s computed before collisionCount existed (the values below were computed then).
TEST(PodTemplateHashTest, UnsetCountKeepsTodaysHashAndACountChangesIt) {
  const json stored = {{"metadata", {{"labels", {{"app", "web"}, {"pod-template-hash", "x"}}}}},
                       {"spec", {{"containers", json::array({{{"name", "c"},
                                                              {"image", "registry.k8s.io/pause:3.9"},
                                                              {"tty", false}}})}}}};
  const json plain = {{"metadata", {{"labels", {{"app", "web"}}}}},
                      {"spec", {{"containers", json::array({{{"name", "c"},
                                                             {"image", "registry.k8s.io/pause:3.9"}}})}}}};
  EXPECT_EQ(PodTemplateHash(stored), "n6v49qg");
  EXPECT_EQ(PodTemplateHash(plain), "n6v49qg") << "the hash label and unset fields must not count";
  EXPECT_EQ(PodTemplateHash(plain, std::nullopt), "n6v49qg");
  EXPECT_TRUE(EquivalentPodTemplates(stored, plain));
  // A set count (0 included, as upstream) is mixed in; pinned so names stay stable across versions.
  EXPECT_EQ(PodTemplateHash(plain, 0), "bfm6tfm");
  EXPECT_EQ(PodTemplateHash(plain, 1), "2pddqdd");
  EXPECT_EQ(PodTemplateHash(stored, 1), "2pddqdd");
  std::set<std::string> seen = {PodTemplateHash(plain)};
  for (int32_t count : {0, 1, 2, 3, 100, -1, INT32_MAX}) {
    const std::string hash = PodTemplateHash(plain, count);
    EXPECT_EQ(hash, PodTemplateHash(plain, count)) << "not deterministic for " << count;
    EXPECT_TRUE(seen.insert(hash).second) << "count " << count << " repeats a hash";
    EXPECT_EQ(hash.find_first_of("aeiou"), std::string::npos) << hash;
  }
  json other = plain;
  other["spec"]["containers"][0]["image"] = "example/app:v2";
  EXPECT_NE(PodTemplateHash(other, 1), PodTemplateHash(plain, 1));
  EXPECT_FALSE(EquivalentPodTemplates(other, plain));
}

TEST(PodTemplateHashTest, CollisionCountReadsTheStatus) {
  EXPECT_EQ(CollisionCount(json::object()), std::nullopt);
  EXPECT_EQ(CollisionCount({{"status", json::object()}}), std::nullopt);
  EXPECT_EQ(CollisionCount({{"status", {{"collisionCount", nullptr}}}}), std::nullopt);
  EXPECT_EQ(CollisionCount({{"status", {{"collisionCount", "2"}}}}), std::nullopt);
  EXPECT_EQ(CollisionCount({{"status", {{"collisionCount", int64_t{1} << 40}}}}), std::nullopt);
  EXPECT_EQ(CollisionCount({{"status", {{"collisionCount", 0}}}}), 0);
  EXPECT_EQ(CollisionCount({{"status", {{"collisionCount", 7}}}}), 7);
}

}  // namespace
}  // namespace mk8s::controllers::test
