// PodQosClass: upstream's QoS rules, including requests defaulted from limits and init containers.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "apiserver/registry/admission.h"

namespace mk8s::apiserver {
namespace {

using nlohmann::json;

json Spec(json containers, json init = json::array()) {
  return {{"containers", std::move(containers)}, {"initContainers", std::move(init)}};
}

json Container(json requests, json limits) {
  json resources = json::object();
  if (!requests.is_null()) resources["requests"] = std::move(requests);
  if (!limits.is_null()) resources["limits"] = std::move(limits);
  return {{"name", "c"}, {"image", "x"}, {"resources", resources}};
}

TEST(PodQosClassTest, NoRequestsOrLimitsIsBestEffort) {
  EXPECT_EQ(PodQosClass(Spec({{{"name", "c"}, {"image", "x"}}})), "BestEffort");
  // Only extended resources do not count.
  EXPECT_EQ(PodQosClass(Spec({Container(nullptr, {{"nvidia.com/gpu", "1"}})})), "BestEffort");
}

TEST(PodQosClassTest, EqualCpuAndMemoryRequestsAndLimitsEverywhereIsGuaranteed) {
  EXPECT_EQ(PodQosClass(Spec({Container({{"cpu", "500m"}, {"memory", "1Gi"}},
                                        {{"cpu", "0.5"}, {"memory", "1024Mi"}})})),
            "Guaranteed");
  // Units differ, values agree.
  EXPECT_EQ(PodQosClass(Spec({Container({{"cpu", "1"}, {"memory", "64Mi"}},
                                        {{"cpu", "1000m"}, {"memory", "64Mi"}}),
                              Container({{"cpu", "2"}, {"memory", "1Gi"}},
                                        {{"cpu", "2"}, {"memory", "1Gi"}})})),
            "Guaranteed");
  // Limits alone: admission defaults the requests to them.
  EXPECT_EQ(PodQosClass(Spec({Container(nullptr, {{"cpu", "1"}, {"memory", "1Gi"}})})),
            "Guaranteed");
}

TEST(PodQosClassTest, AnythingElseIsBurstable) {
  EXPECT_EQ(PodQosClass(Spec({Container({{"cpu", "2"}}, nullptr)})), "Burstable");
  EXPECT_EQ(PodQosClass(Spec({Container({{"cpu", "1"}, {"memory", "1Gi"}},
                                        {{"cpu", "2"}, {"memory", "1Gi"}})})),
            "Burstable");
  // Limits on cpu only.
  EXPECT_EQ(PodQosClass(Spec({Container({{"cpu", "1"}}, {{"cpu", "1"}})})), "Burstable");
  // A guaranteed app container with a best-effort init container.
  EXPECT_EQ(PodQosClass(Spec({Container({{"cpu", "1"}, {"memory", "1Gi"}},
                                        {{"cpu", "1"}, {"memory", "1Gi"}})},
                             {{{"name", "init"}, {"image", "x"}}})),
            "Burstable");
}

}  // namespace
}  // namespace mk8s::apiserver
