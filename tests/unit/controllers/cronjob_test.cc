// CronJob controller, driven by the fake clock (no test waits for real minutes): runs on
// schedule with upstream's job names, concurrency policies, history limits, suspend,
// startingDeadlineSeconds, time zones; and the API server's CronJob validation.
#include "common/time_format.h"
#include "fixture.h"

namespace mk8s::controllers::test {
namespace {

constexpr const char* kScheduled = "batch.kubernetes.io/cronjob-scheduled-timestamp";

json MakeCronJob(const std::string& name, const std::string& schedule) {
  json pod_template = MakePodTemplate(json::object());
  pod_template["spec"]["restartPolicy"] = "OnFailure";
  return {{"apiVersion", "batch/v1"},
          {"kind", "CronJob"},
          {"metadata", {{"name", name}}},
          {"spec",
           {{"schedule", schedule},
            {"jobTemplate",
             {{"metadata", {{"labels", {{"cron", name}}}}}, {"spec", {{"template", pod_template}}}}}}}};
}

int64_t UnixSeconds(std::chrono::system_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

class CronJobTest : public ControllerTest {
 protected:
  void SetUp() override {
    ControllerTest::SetUp();
    if (HasFatalFailure()) return;
    StartController("cronjob");
  }

  json GetCronJob(const std::string& name) { return Get(client::kCronJobs, name).value_or(json()); }
  // Jobs the cron job controls, oldest scheduled first (names sort by minute).
  std::vector<json> Jobs(const std::string& cronjob) {
    std::vector<json> out;
    for (const json& job : List(client::kJobs, "cron=" + cronjob)) {
      if (!HasDeletionTimestamp(job)) out.push_back(job);
    }
    std::sort(out.begin(), out.end(), [](const json& a, const json& b) {
      return a["metadata"]["name"].get<std::string>() < b["metadata"]["name"].get<std::string>();
    });
    return out;
  }
  // Fake minutes pass until the cron job has `count` jobs.
  ::testing::AssertionResult AdvanceUntilJobs(const std::string& cronjob, size_t count,
                                              client::Clock::Duration max = 130s) {
    return AdvanceUntil([&] { return Jobs(cronjob).size() == count; }, 10s, max,
                        std::to_string(count) + " jobs of " + cronjob);
  }
  // Plays the Job controller: the job finished.
  void FinishJob(const json& job, bool succeeded) {
    const std::string now = Timestamp();
    Mutate(client::kJobs, job["metadata"]["name"], [&](json& j) {
      j["status"]["conditions"] = json::array({{{"type", succeeded ? "Complete" : "Failed"},
                                                {"status", "True"},
                                                {"lastTransitionTime", now}}});
      j["status"]["startTime"] = now;
      if (succeeded) j["status"]["completionTime"] = now;
    }, /*status=*/true);
  }
  size_t ActiveCount(const std::string& cronjob) {
    return GetCronJob(cronjob).value("/status/active"_json_pointer, json::array()).size();
  }
};

TEST_F(CronJobTest, CreatesAJobEachScheduledMinute) {
  Create(client::kCronJobs, MakeCronJob("tick", "* * * * *"));
  ASSERT_TRUE(AdvanceUntilJobs("tick", 1));
  const json job = Jobs("tick")[0];
  const std::string scheduled = job["metadata"]["annotations"][kScheduled];
  const auto scheduled_at = ParseRfc3339(scheduled);
  ASSERT_TRUE(scheduled_at.has_value()) << scheduled;
  EXPECT_EQ(UnixSeconds(*scheduled_at) % 60, 0);
  EXPECT_EQ(job["metadata"]["name"], "tick-" + std::to_string(UnixSeconds(*scheduled_at) / 60));
  EXPECT_EQ(job["metadata"]["ownerReferences"][0]["kind"], "CronJob");
  EXPECT_EQ(job["metadata"]["ownerReferences"][0]["controller"], true);
  EXPECT_EQ(job["spec"]["template"]["spec"]["restartPolicy"], "OnFailure");
  ASSERT_TRUE(WaitFor([&] { return ActiveCount("tick") == 1; }, "status.active"));
  const json cronjob = GetCronJob("tick");
  EXPECT_EQ(cronjob["status"]["lastScheduleTime"], scheduled);
  EXPECT_EQ(cronjob["status"]["active"][0]["name"], job["metadata"]["name"]);
  EXPECT_EQ(cronjob["status"]["active"][0]["uid"], job["metadata"]["uid"]);
  // Allow: the next minute starts another beside it.
  ASSERT_TRUE(AdvanceUntilJobs("tick", 2, 70s));
  EXPECT_TRUE(WaitFor([&] { return ActiveCount("tick") == 2; }, "2 active"));
  EXPECT_TRUE(WaitFor([&] { return EventsWithReason("SuccessfulCreate", "tick").size() == 2; }, "events"));
}

TEST_F(CronJobTest, ForbidWaitsForTheRunningJob) {
  json spec = MakeCronJob("one-at-a-time", "* * * * *");
  spec["spec"]["concurrencyPolicy"] = "Forbid";
  Create(client::kCronJobs, spec);
  ASSERT_TRUE(AdvanceUntilJobs("one-at-a-time", 1));
  ASSERT_TRUE(AdvanceUntil([&] { return !EventsWithReason("JobAlreadyActive", "one-at-a-time").empty(); }, 10s,
                           70s, "JobAlreadyActive"));
  EXPECT_EQ(Jobs("one-at-a-time").size(), 1u);
  // Once it finishes, the missed run starts at once (no startingDeadlineSeconds).
  FinishJob(Jobs("one-at-a-time")[0], true);
  ASSERT_TRUE(WaitFor([&] { return Jobs("one-at-a-time").size() == 2; }, "the next run"));
  ASSERT_TRUE(WaitFor([&] {
    const json cj = GetCronJob("one-at-a-time");
    return ActiveCount("one-at-a-time") == 1 && cj["status"].contains("lastSuccessfulTime") &&
           cj["status"]["active"][0]["name"] == Jobs("one-at-a-time")[1]["metadata"]["name"];
  }, "active = the new job, lastSuccessfulTime set"));
  EXPECT_TRUE(WaitFor([&] { return !EventsWithReason("SawCompletedJob", "one-at-a-time").empty(); }, "event"));
}

TEST_F(CronJobTest, ReplaceDeletesTheRunningJob) {
  json spec = MakeCronJob("replacer", "* * * * *");
  spec["spec"]["concurrencyPolicy"] = "Replace";
  Create(client::kCronJobs, spec);
  ASSERT_TRUE(AdvanceUntilJobs("replacer", 1));
  const std::string first = Jobs("replacer")[0]["metadata"]["name"];
  ASSERT_TRUE(AdvanceUntil([&] {
    auto jobs = Jobs("replacer");
    return jobs.size() == 1 && jobs[0]["metadata"]["name"] != first;
  }, 10s, 70s, "the first job replaced"));
  EXPECT_TRUE(WaitFor([&] { return EventsWithReason("SuccessfulDelete", "replacer").size() == 1; }, "delete event"));
  EXPECT_TRUE(WaitFor([&] { return ActiveCount("replacer") == 1; }, "one active"));
}

TEST_F(CronJobTest, KeepsTheHistoryLimits) {
  json spec = MakeCronJob("history", "* * * * *");
  spec["spec"]["successfulJobsHistoryLimit"] = 1;
  spec["spec"]["failedJobsHistoryLimit"] = 0;
  Create(client::kCronJobs, spec);
  ASSERT_TRUE(AdvanceUntilJobs("history", 1));
  FinishJob(Jobs("history")[0], true);
  ASSERT_TRUE(AdvanceUntilJobs("history", 2, 70s));
  // Read the newer job once: as soon as it succeeds the older one is deleted and the list shrinks.
  const json second = Jobs("history")[1];
  const std::string newer = second["metadata"]["name"];
  FinishJob(second, true);
  // Two succeeded, limit one: the older goes.
  ASSERT_TRUE(WaitFor([&] {
    auto jobs = Jobs("history");
    return jobs.size() == 1 && jobs[0]["metadata"]["name"] == newer;
  }, "the oldest succeeded job deleted"));
  ASSERT_TRUE(AdvanceUntilJobs("history", 2, 70s));
  FinishJob(Jobs("history")[1], false);
  ASSERT_TRUE(WaitFor([&] { return Jobs("history").size() == 1; }, "failed job deleted (limit 0)"));
  EXPECT_EQ(Jobs("history")[0]["metadata"]["name"], newer);
}

TEST_F(CronJobTest, SuspendSkipsRunsAndResumeRunsTheLatestMissedOne) {
  json spec = MakeCronJob("paused", "* * * * *");
  spec["spec"]["suspend"] = true;
  Create(client::kCronJobs, spec);
  Advance(150s);
  EXPECT_TRUE(Jobs("paused").empty());
  Patch(client::kCronJobs, "paused", {{"spec", {{"suspend", false}}}});
  ASSERT_TRUE(WaitFor([&] { return Jobs("paused").size() == 1; }, "one job for the missed runs"));
  // Only the most recent missed minute runs.
  const auto scheduled = ParseRfc3339(Jobs("paused")[0]["metadata"]["annotations"][kScheduled].get<std::string>());
  ASSERT_TRUE(scheduled.has_value());
  EXPECT_LE(UnixSeconds(WallNow()) - UnixSeconds(*scheduled), 61);
}

TEST_F(CronJobTest, StartingDeadlineSkipsRunsThatAreTooLate) {
  json spec = MakeCronJob("deadline", "* * * * *");
  spec["spec"]["suspend"] = true;
  // Longer than the fake clock's 10 s steps below, so the next run is not late itself.
  spec["spec"]["startingDeadlineSeconds"] = 20;
  Create(client::kCronJobs, spec);
  // Resume 30 s past a minute: that minute's run is 10 s too late.
  Advance(std::chrono::seconds(60 + 30 - UnixSeconds(WallNow()) % 60));
  const int64_t resumed = UnixSeconds(WallNow());
  const json resumed_object =
      Patch(client::kCronJobs, "deadline", {{"spec", {{"suspend", false}}}});
  // The controller must have seen the resume before the clock moves, or it plans from the
  // suspended object and the minute passes unseen.
  ASSERT_TRUE(WaitUntilCached(client::kCronJobs, resumed_object));
  // Step the clock onto the next minute, then on in 1 s steps while the next run is still on
  // time (well within its 20 s deadline): a controller that planned before the step wakes just
  // after the minute; one that runs late sees the minute's run on time either way. The earlier
  // minute stays late throughout.
  Advance(std::chrono::seconds(60 - UnixSeconds(WallNow()) % 60));
  ASSERT_TRUE(AdvanceUntil([&] { return Jobs("deadline").size() == 1; }, std::chrono::seconds(1),
                           std::chrono::seconds(10), "the next minute's job"));
  const auto scheduled = ParseRfc3339(Jobs("deadline")[0]["metadata"]["annotations"][kScheduled].get<std::string>());
  ASSERT_TRUE(scheduled.has_value());
  EXPECT_GT(UnixSeconds(*scheduled), resumed);  // the next minute, not the late one
}

TEST_F(CronJobTest, SchedulesInTheirTimeZone) {
  json spec = MakeCronJob("berlin", "0 9 * * *");
  spec["spec"]["timeZone"] = "Europe/Berlin";
  Create(client::kCronJobs, spec);
  ASSERT_TRUE(AdvanceUntil([&] { return Jobs("berlin").size() == 1; }, 1h, 25h, "the 09:00 Berlin run"));
  const std::string scheduled = Jobs("berlin")[0]["metadata"]["annotations"][kScheduled];
  EXPECT_TRUE(scheduled.find("T09:00:00+01:00") != std::string::npos ||
              scheduled.find("T09:00:00+02:00") != std::string::npos)
      << scheduled;
}

TEST_F(CronJobTest, ApiServerValidatesCronJobs) {
  auto invalid = [&](json cronjob, const std::string& field, const std::string& message_part) {
    auto result = api().Create(client::kCronJobs, ns(), cronjob);
    ASSERT_FALSE(result.ok()) << cronjob.dump();
    EXPECT_EQ(result.error().code, 422);
    EXPECT_NE(result.error().message.find(field), std::string::npos) << result.error().message;
    EXPECT_NE(result.error().message.find(message_part), std::string::npos) << result.error().message;
  };
  invalid(MakeCronJob("bad-schedule", "61 * * * *"), "spec.schedule",
          "Invalid value: \"61 * * * *\": end of range (61) above maximum (59): 61");
  invalid(MakeCronJob("few-fields", "* * *"), "spec.schedule", "expected exactly 5 fields, found 3");
  invalid(MakeCronJob("tz-prefix", "TZ=UTC 0 * * * *"), "spec.schedule", "use timeZone field instead");
  json zone = MakeCronJob("bad-zone", "@hourly");
  zone["spec"]["timeZone"] = "Mars/Olympus_Mons";
  invalid(zone, "spec.timeZone", "unknown time zone Mars/Olympus_Mons");
  json policy = MakeCronJob("bad-policy", "@hourly");
  policy["spec"]["concurrencyPolicy"] = "Sometimes";
  invalid(policy, "spec.concurrencyPolicy", "supported values: \"Allow\", \"Forbid\", \"Replace\"");
  invalid(MakeCronJob(std::string(53, 'x'), "@hourly"), "metadata.name", "must be no more than 52 characters");
  json always = MakeCronJob("always", "@hourly");
  always["spec"]["jobTemplate"]["spec"]["template"]["spec"].erase("restartPolicy");
  invalid(always, "spec.jobTemplate.spec.template.spec.restartPolicy", "\"OnFailure\", \"Never\"");

  auto ok = api().Create(client::kCronJobs, ns(), MakeCronJob("fine", "@every 2h"));
  ASSERT_TRUE(ok.ok()) << ok.error().ToString();
  EXPECT_EQ((*ok)["spec"]["concurrencyPolicy"], "Allow");
  EXPECT_EQ((*ok)["spec"]["successfulJobsHistoryLimit"], 3);
  EXPECT_EQ((*ok)["spec"]["failedJobsHistoryLimit"], 1);
}

}  // namespace
}  // namespace mk8s::controllers::test
