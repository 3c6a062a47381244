// Job controller: completions within parallelism, backoffLimit with the pod failure backoff on
// the fake clock, activeDeadlineSeconds, Indexed completion, suspend/resume, TTL after finished,
// and the API server's Job defaulting and validation (generated selector, restartPolicy).
#include <algorithm>

#include "fault_transport.h"
#include "fixture.h"

namespace mk8s::controllers::test {
namespace {

json MakeJob(const std::string& name, int64_t completions, int64_t parallelism) {
  json pod_template = MakePodTemplate(json::object());
  pod_template["spec"]["restartPolicy"] = "Never";
  return {{"apiVersion", "batch/v1"},
          {"kind", "Job"},
          {"metadata", {{"name", name}}},
          {"spec", {{"completions", completions}, {"parallelism", parallelism}, {"template", pod_template}}}};
}

class JobTest : public ControllerTest {
 protected:
  void SetUp() override {
    ControllerTest::SetUp();
    if (HasFatalFailure()) return;
    StartController("job");
  }

  json GetJob(const std::string& name) { return Get(client::kJobs, name).value_or(json()); }
  // The job's pods in a phase ("" = not terminal), not being deleted.
  std::vector<json> Pods(const std::string& job, const std::string& phase = "") {
    std::vector<json> out;
    for (const json& pod : List(client::kPods, "batch.kubernetes.io/job-name=" + job)) {
      const std::string current = pod.value("/status/phase"_json_pointer, std::string("Pending"));
      const bool terminal = current == "Succeeded" || current == "Failed";
      if (HasDeletionTimestamp(pod)) continue;
      if (phase.empty() ? !terminal : current == phase) out.push_back(pod);
    }
    return out;
  }
  // Plays the kubelet: the pod's container exits with `exit_code` now.
  void Finish(const json& pod, int exit_code) {
    const std::string now = Timestamp();
    Mutate(client::kPods, pod["metadata"]["name"], [&](json& p) {
      p["status"]["phase"] = exit_code == 0 ? "Succeeded" : "Failed";
      p["status"]["containerStatuses"] = json::array(
          {{{"name", "app"},
            {"image", "registry.k8s.io/pause:3.9"},
            {"imageID", ""},
            {"ready", false},
            {"restartCount", 0},
            {"state", {{"terminated", {{"exitCode", exit_code}, {"startedAt", now}, {"finishedAt", now}}}}}}});
    }, /*status=*/true);
  }
  bool HasCondition(const std::string& job, const std::string& type, const std::string& reason = "") {
    const json got = GetJob(job);
    const json* condition = FindCondition(got, type);
    return condition != nullptr && condition->value("status", "") == "True" &&
           (reason.empty() || condition->value("reason", "") == reason);
  }
};

TEST_F(JobTest, RunsPodsUntilCompletionsSucceed) {
  const json job = Create(client::kJobs, MakeJob("pi", 3, 2));
  const std::string uid = job["metadata"]["uid"];
  ASSERT_TRUE(WaitFor([&] { return Pods("pi").size() == 2; }, "2 pods (parallelism)"));
  for (const json& pod : Pods("pi")) {
    const json& labels = pod["metadata"]["labels"];
    EXPECT_EQ(labels["batch.kubernetes.io/controller-uid"], uid);
    EXPECT_EQ(labels["controller-uid"], uid);
    EXPECT_EQ(labels["job-name"], "pi");
    EXPECT_EQ(pod["metadata"]["generateName"], "pi-");
    EXPECT_EQ(pod["metadata"]["ownerReferences"][0]["kind"], "Job");
    EXPECT_EQ(pod["metadata"]["ownerReferences"][0]["controller"], true);
  }
  ASSERT_TRUE(WaitFor([&] { return StatusInt(GetJob("pi"), "active") == 2; }, "status.active 2"));
  EXPECT_TRUE(GetJob("pi")["status"].contains("startTime"));

  // Each success frees a slot while completions remain; never more than 2 run at once.
  Finish(Pods("pi")[0], 0);
  ASSERT_TRUE(WaitFor([&] { return Pods("pi", "Succeeded").size() == 1 && Pods("pi").size() == 2; },
                      "a replacement for the succeeded pod"));
  Finish(Pods("pi")[0], 0);
  ASSERT_TRUE(WaitFor([&] { return StatusInt(GetJob("pi"), "succeeded") == 2; }, "2 succeeded"));
  EXPECT_EQ(Pods("pi").size(), 1u);  // one completion left: one pod
  Finish(Pods("pi")[0], 0);
  ASSERT_TRUE(WaitFor([&] { return HasCondition("pi", "Complete", "CompletionsReached"); }, "Complete"));
  const json done = GetJob("pi");
  EXPECT_EQ(ConditionStatus(done, "SuccessCriteriaMet"), "True");
  EXPECT_EQ(StatusInt(done, "succeeded"), 3);
  EXPECT_EQ(StatusInt(done, "active"), 0);
  EXPECT_EQ(StatusInt(done, "failed"), 0);
  EXPECT_TRUE(done["status"].contains("completionTime"));
  EXPECT_EQ(Pods("pi", "Succeeded").size(), 3u);
  EXPECT_TRUE(WaitFor([&] { return EventsWithReason("SuccessfulCreate", "pi").size() == 3; }, "3 creates"));
  EXPECT_TRUE(WaitFor([&] { return EventsWithReason("Completed", "pi").size() == 1; }, "Completed event"));
}

TEST_F(JobTest, FailedPodsBackOffThenExceedTheLimit) {
  json spec = MakeJob("flaky", 1, 1);
  spec["spec"]["backoffLimit"] = 1;
  Create(client::kJobs, spec);
  ASSERT_TRUE(WaitFor([&] { return Pods("flaky").size() == 1; }, "first pod"));
  Finish(Pods("flaky")[0], 1);
  // The failure is counted in the same pass that decides about a replacement: none yet (10 s
  // backoff on the fake clock).
  ASSERT_TRUE(WaitFor([&] { return StatusInt(GetJob("flaky"), "failed") == 1; }, "status.failed 1"));
  EXPECT_TRUE(Pods("flaky").empty());
  ASSERT_TRUE(AdvanceUntil([&] { return Pods("flaky").size() == 1; }, 2s, 15s, "replacement after backoff"));
  Finish(Pods("flaky")[0], 1);
  ASSERT_TRUE(WaitFor([&] { return HasCondition("flaky", "Failed", "BackoffLimitExceeded"); }, "Failed"));
  const json failed = GetJob("flaky");
  EXPECT_EQ(ConditionStatus(failed, "FailureTarget"), "True");
  EXPECT_EQ(FindCondition(failed, "Failed")->value("message", ""), "Job has reached the specified backoff limit");
  EXPECT_EQ(StatusInt(failed, "failed"), 2);
  EXPECT_FALSE(failed["status"].contains("completionTime"));
  EXPECT_TRUE(WaitFor([&] { return !EventsWithReason("BackoffLimitExceeded", "flaky").empty(); }, "event"));
}

TEST_F(JobTest, ActiveDeadlineFailsTheJobAndStopsItsPods) {
  json spec = MakeJob("slow", 4, 2);
  spec["spec"]["activeDeadlineSeconds"] = 30;
  Create(client::kJobs, spec);
  ASSERT_TRUE(WaitFor([&] { return Pods("slow").size() == 2; }, "2 pods"));
  ASSERT_TRUE(AdvanceUntil([&] { return HasCondition("slow", "Failed", "DeadlineExceeded"); }, 5s, 45s,
                           "DeadlineExceeded"));
  EXPECT_TRUE(Pods("slow").empty());
  EXPECT_EQ(StatusInt(GetJob("slow"), "active"), 0);
  EXPECT_TRUE(WaitFor([&] { return EventsWithReason("SuccessfulDelete", "slow").size() == 2; }, "deletes"));
}

TEST_F(JobTest, IndexedJobsRunEachIndexOnce) {
  json spec = MakeJob("idx", 3, 3);
  spec["spec"]["completionMode"] = "Indexed";
  Create(client::kJobs, spec);
  ASSERT_TRUE(WaitFor([&] { return Pods("idx").size() == 3; }, "3 pods"));
  std::map<std::string, json> by_index;
  for (const json& pod : Pods("idx")) {
    const std::string index = pod["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"];
    by_index[index] = pod;
    EXPECT_EQ(pod["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"], index);
    EXPECT_EQ(pod["spec"]["hostname"], "idx-" + index);
    EXPECT_EQ(pod["metadata"]["generateName"], "idx-" + index + "-");
    EXPECT_EQ(pod["spec"]["containers"][0]["env"][0]["name"], "JOB_COMPLETION_INDEX");
  }
  ASSERT_EQ(by_index.size(), 3u);
  Finish(by_index["1"], 0);
  ASSERT_TRUE(WaitFor([&] { return GetJob("idx").value("/status/completedIndexes"_json_pointer, std::string()) == "1"; },
                      "completedIndexes 1"));
  // A lost pod is replaced with the same index.
  ASSERT_TRUE(Delete(client::kPods, by_index["0"]["metadata"]["name"]));
  ASSERT_TRUE(WaitFor([&] {
    auto pods = Pods("idx");
    return pods.size() == 2 && std::any_of(pods.begin(), pods.end(), [&](const json& p) {
             return p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] == "0" &&
                    p["metadata"]["name"] != by_index["0"]["metadata"]["name"];
           });
  }, "index 0 recreated"));
  for (const json& pod : Pods("idx")) Finish(pod, 0);
  ASSERT_TRUE(WaitFor([&] { return HasCondition("idx", "Complete"); }, "Complete"));
  EXPECT_EQ(GetJob("idx")["status"]["completedIndexes"], "0-2");
  EXPECT_EQ(StatusInt(GetJob("idx"), "succeeded"), 3);
}

TEST_F(JobTest, SuspendAndResume) {
  json spec = MakeJob("later", 1, 2);
  spec["spec"]["suspend"] = true;
  Create(client::kJobs, spec);
  ASSERT_TRUE(WaitFor([&] { return ConditionStatus(GetJob("later"), "Suspended") == "True"; }, "Suspended"));
  EXPECT_TRUE(Pods("later").empty());
  EXPECT_FALSE(GetJob("later")["status"].contains("startTime"));
  Patch(client::kJobs, "later", {{"spec", {{"suspend", false}}}});
  ASSERT_TRUE(WaitFor([&] { return Pods("later").size() == 1; }, "a pod after resume"));
  ASSERT_TRUE(WaitFor([&] { return ConditionStatus(GetJob("later"), "Suspended") == "False"; }, "resumed"));
  EXPECT_EQ(FindCondition(GetJob("later"), "Suspended")->value("reason", ""), "JobResumed");
  EXPECT_TRUE(GetJob("later")["status"].contains("startTime"));
  // Suspending again stops the running pod.
  Patch(client::kJobs, "later", {{"spec", {{"suspend", true}}}});
  ASSERT_TRUE(WaitFor([&] { return Pods("later").empty() && ConditionStatus(GetJob("later"), "Suspended") == "True"; },
                      "suspended again, no pods"));
}

TEST_F(JobTest, FinishedJobIsDeletedAfterItsTtl) {
  StartController("garbage-collector");  // the TTL delete is a foreground one
  json spec = MakeJob("short-lived", 1, 1);
  spec["spec"]["ttlSecondsAfterFinished"] = 60;
  Create(client::kJobs, spec);
  ASSERT_TRUE(WaitFor([&] { return Pods("short-lived").size() == 1; }, "pod"));
  Finish(Pods("short-lived")[0], 0);
  ASSERT_TRUE(WaitFor([&] { return HasCondition("short-lived", "Complete"); }, "Complete"));
  Advance(30s);
  EXPECT_TRUE(Get(client::kJobs, "short-lived").has_value());
  // Up to 90 s more: a reconcile that still sees the job without its completionTime (its own
  // status write not yet in the cache) counts the TTL from its "now", which may already be 30 s
  // past the completion; the expiry then lands at the very end of a 60 s window.
  ASSERT_TRUE(AdvanceUntil([&] { return !Get(client::kJobs, "short-lived").has_value(); }, 10s, 90s,
                           "job deleted after its TTL"));
}

TEST_F(JobTest, ApiServerDefaultsAndValidatesJobs) {
  // Defaults: generated selector and template labels; completions stays unset (work queue mode)
  // when parallelism is given.
  json spec = MakeJob("queue", 1, 3);
  spec["spec"].erase("completions");
  auto created = api().Create(client::kJobs, ns(), spec);
  ASSERT_TRUE(created.ok()) << created.error().ToString();
  const std::string uid = (*created)["metadata"]["uid"];
  EXPECT_EQ((*created)["spec"]["selector"], json({{"matchLabels", {{"batch.kubernetes.io/controller-uid", uid}}}}));
  EXPECT_EQ((*created)["spec"]["template"]["metadata"]["labels"]["batch.kubernetes.io/job-name"], "queue");
  EXPECT_FALSE((*created)["spec"].contains("completions"));
  EXPECT_EQ((*created)["spec"]["backoffLimit"], 6);
  EXPECT_EQ((*created)["spec"]["completionMode"], "NonIndexed");
  EXPECT_EQ((*created)["spec"]["podReplacementPolicy"], "TerminatingOrFailed");

  auto invalid = [&](json job, const std::string& field, const std::string& message_part) {
    auto result = api().Create(client::kJobs, ns(), job);
    ASSERT_FALSE(result.ok()) << job.dump();
    EXPECT_EQ(result.error().code, 422);
    EXPECT_NE(result.error().message.find(field), std::string::npos) << result.error().message;
    EXPECT_NE(result.error().message.find(message_part), std::string::npos) << result.error().message;
  };
  json always = MakeJob("always", 1, 1);
  always["spec"]["template"]["spec"].erase("restartPolicy");  // defaults to Always: not for jobs
  invalid(always, "spec.template.spec.restartPolicy", "supported values: \"OnFailure\", \"Never\"");
  json selector = MakeJob("selector", 1, 1);
  selector["spec"]["selector"] = {{"matchLabels", {{"app", "x"}}}};
  invalid(selector, "spec.selector", "`selector` not auto-generated");
  json indexed = MakeJob("indexed", 1, 1);
  indexed["spec"].erase("completions");
  indexed["spec"]["completionMode"] = "Indexed";
  invalid(indexed, "spec.completions", "when completion mode is Indexed");
  json negative = MakeJob("negative", 1, 1);
  negative["spec"]["backoffLimit"] = -1;
  invalid(negative, "spec.backoffLimit", "must be greater than or equal to 0");
  // manualSelector: the user's selector must match the template.
  json manual = MakeJob("manual", 1, 1);
  manual["spec"]["manualSelector"] = true;
  manual["spec"]["selector"] = {{"matchLabels", {{"app", "manual"}}}};
  manual["spec"]["template"]["metadata"]["labels"] = {{"app", "manual"}};
  auto accepted = api().Create(client::kJobs, ns(), manual);
  ASSERT_TRUE(accepted.ok()) << accepted.error().ToString();
  EXPECT_FALSE((*accepted)["spec"]["template"]["metadata"]["labels"].contains("controller-uid"));
}

// As for ReplicaSets: a failed pod delete does not leave the Job waiting for deletions it never
// sent (lowering parallelism must still take effect after the retry).
TEST_F(JobTest, FailedDeleteDoesNotStallJob) {
  StopControllers();
  auto faults = std::make_shared<FaultTransport>(context().client->transport(), "DELETE",
                                                 "/pods/", 1);
  context().client = std::make_shared<client::Client>(faults);
  StartController("job");

  Create(client::kJobs, MakeJob("narrow", 10, 4));
  ASSERT_TRUE(WaitFor([&] { return Pods("narrow").size() == 4; }, "4 pods"));
  Patch(client::kJobs, "narrow", {{"spec", {{"parallelism", 1}}}});
  ASSERT_TRUE(WaitFor([&] { return faults->failed() == 1; }, "the first delete failed"));
  ASSERT_TRUE(AdvanceUntil([&] { return Pods("narrow").size() == 1; }, 500ms, 15s,
                           "down to parallelism 1 after the failed delete"));
}

}  // namespace
}  // namespace mk8s::controllers::test
