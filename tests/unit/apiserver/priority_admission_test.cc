// PriorityClass rules and pod priority resolution (registry/priority_admission.h).
#include "apiserver/registry/priority_admission.h"

#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

namespace mk8s::apiserver {
namespace {

using nlohmann::json;

json Class(const std::string& name, int64_t value, bool global_default = false) {
  return {{"apiVersion", "scheduling.k8s.io/v1"}, {"kind", "PriorityClass"},
          {"metadata", {{"name", name}}}, {"value", value}, {"globalDefault", global_default}};
}

json Pod(json spec_extra = json::object()) {
  json pod = {{"metadata", {{"name", "web"}, {"namespace", "default"}}},
              {"spec", {{"containers", json::array({{{"name", "c"}, {"image", "nginx"}}})}}}};
  pod["spec"].update(spec_extra);
  return pod;
}

// Classes kept in a map, as the watch cache would hold them.
struct FakeClasses {
  std::map<std::string, json> stored;
  PriorityClassLookup Lookup() {
    PriorityClassLookup lookup;
    lookup.get = [this](const std::string& name) -> std::optional<json> {
      auto it = stored.find(name);
      if (it == stored.end()) return std::nullopt;
      return it->second;
    };
    lookup.global_default = [this]() -> std::optional<json> {
      for (const auto& [name, c] : stored) {
        if (c.value("globalDefault", false)) return c;
      }
      return std::nullopt;
    };
    return lookup;
  }
};

std::string FirstCause(const std::optional<ApiError>& error) {
  if (!error || error->causes.empty()) return "";
  return error->causes[0].field + ": " + error->causes[0].message;
}

TEST(PriorityClassTest, BuiltInsAreTheTwoSystemClasses) {
  const auto builtins = BuiltInPriorityClasses();
  ASSERT_EQ(builtins.size(), 2u);
  EXPECT_EQ(builtins[0]["metadata"]["name"], "system-node-critical");
  EXPECT_EQ(builtins[0]["value"], kSystemNodeCriticalPriority);
  EXPECT_EQ(builtins[1]["metadata"]["name"], "system-cluster-critical");
  EXPECT_EQ(builtins[1]["value"], kSystemClusterCriticalPriority);
  EXPECT_TRUE(IsSystemPriorityClass("system-cluster-critical"));
  EXPECT_FALSE(IsSystemPriorityClass("system-other"));
  FakeClasses none;
  for (json c : builtins) EXPECT_FALSE(AdmitPriorityClass(c, nullptr, none.Lookup()));
}

TEST(PriorityClassTest, DefaultsAndValidatesUserClasses) {
  FakeClasses classes;
  json high = Class("high", 1000);
  EXPECT_FALSE(AdmitPriorityClass(high, nullptr, classes.Lookup()));
  EXPECT_EQ(high["preemptionPolicy"], "PreemptLowerPriority");
  EXPECT_EQ(high["globalDefault"], false);

  json too_high = Class("too-high", kHighestUserDefinablePriority + 1);
  auto error = AdmitPriorityClass(too_high, nullptr, classes.Lookup());
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, 422);
  EXPECT_EQ(FirstCause(error),
            "value: Forbidden: maximum allowed value of a user defined priority is 1000000000");

  json reserved = Class("system-mine", 10);
  EXPECT_EQ(FirstCause(AdmitPriorityClass(reserved, nullptr, classes.Lookup())),
            "metadata.name: Forbidden: priority class names with 'system-' prefix are reserved "
            "for system use only");

  json no_value = Class("x", 0);
  no_value.erase("value");
  EXPECT_EQ(FirstCause(AdmitPriorityClass(no_value, nullptr, classes.Lookup())),
            "value: Required value");
  json text_value = Class("x", 0);
  text_value["value"] = "1000";
  EXPECT_EQ(FirstCause(AdmitPriorityClass(text_value, nullptr, classes.Lookup())),
            "value: Required value");

  json bad_policy = Class("x", 1);
  bad_policy["preemptionPolicy"] = "Sometimes";
  EXPECT_EQ(FirstCause(AdmitPriorityClass(bad_policy, nullptr, classes.Lookup())),
            "preemptionPolicy: Unsupported value: \"Sometimes\": supported values: \"Never\", "
            "\"PreemptLowerPriority\"");
}

TEST(PriorityClassTest, ValueAndPolicyAreImmutable) {
  FakeClasses classes;
  json old = Class("high", 1000);
  old["preemptionPolicy"] = "PreemptLowerPriority";
  json changed = old;
  changed["value"] = 2000;
  EXPECT_EQ(FirstCause(AdmitPriorityClass(changed, &old, classes.Lookup())),
            "value: Forbidden: may not be changed in an update.");
  json policy = old;
  policy["preemptionPolicy"] = "Never";
  EXPECT_EQ(FirstCause(AdmitPriorityClass(policy, &old, classes.Lookup())),
            "preemptionPolicy: Invalid value: \"Never\": field is immutable");
  json described = old;
  described["description"] = "now with words";
  EXPECT_FALSE(AdmitPriorityClass(described, &old, classes.Lookup()));
}

TEST(PriorityClassTest, OnlyOneGlobalDefault) {
  FakeClasses classes;
  classes.stored["low"] = Class("low", 10, true);
  json other = Class("other", 20, true);
  auto error = AdmitPriorityClass(other, nullptr, classes.Lookup());
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, 403);
  EXPECT_EQ(error->message,
            "priorityclasses.scheduling.k8s.io \"other\" is forbidden: PriorityClass low is "
            "already marked as default. Only one default can exist");
  json same = Class("low", 10, true);  // the default itself, updated
  EXPECT_FALSE(AdmitPriorityClass(same, &classes.stored["low"], classes.Lookup()));
}

TEST(PodPriorityTest, ResolvesTheClassOrTheDefault) {
  FakeClasses classes;
  for (json c : BuiltInPriorityClasses()) classes.stored[c["metadata"]["name"]] = c;
  json never = Class("batch", 5);
  never["preemptionPolicy"] = "Never";
  classes.stored["batch"] = never;

  json plain = Pod();
  EXPECT_FALSE(AdmitPodPriority(plain, classes.Lookup()));
  EXPECT_EQ(plain["spec"]["priority"], 0);
  EXPECT_FALSE(plain["spec"].contains("priorityClassName"));

  json critical = Pod({{"priorityClassName", "system-cluster-critical"}});
  EXPECT_FALSE(AdmitPodPriority(critical, classes.Lookup()));
  EXPECT_EQ(critical["spec"]["priority"], kSystemClusterCriticalPriority);
  EXPECT_EQ(critical["spec"]["preemptionPolicy"], "PreemptLowerPriority");

  json batch = Pod({{"priorityClassName", "batch"}, {"priority", 5}});  // agreeing: fine
  EXPECT_FALSE(AdmitPodPriority(batch, classes.Lookup()));
  EXPECT_EQ(batch["spec"]["preemptionPolicy"], "Never");

  classes.stored["everyone"] = Class("everyone", 7, true);
  json defaulted = Pod();
  EXPECT_FALSE(AdmitPodPriority(defaulted, classes.Lookup()));
  EXPECT_EQ(defaulted["spec"]["priority"], 7);
  EXPECT_EQ(defaulted["spec"]["priorityClassName"], "everyone");
}

TEST(PodPriorityTest, RefusesUnknownClassesAndForgedPriorities) {
  FakeClasses classes;
  json unknown = Pod({{"priorityClassName", "gold"}});
  auto error = AdmitPodPriority(unknown, classes.Lookup());
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, 403);
  EXPECT_EQ(error->message,
            "pods \"web\" is forbidden: no PriorityClass with name gold was found");

  json forged = Pod({{"priority", 2000000000}});
  error = AdmitPodPriority(forged, classes.Lookup());
  ASSERT_TRUE(error);
  EXPECT_EQ(error->code, 403);
  EXPECT_EQ(error->message,
            "pods \"web\" is forbidden: the integer value of priority (2000000000) must not be "
            "provided in pod spec; priority admission controller computed 0 from the given "
            "PriorityClass name");
}

}  // namespace
}  // namespace mk8s::apiserver
