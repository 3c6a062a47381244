#include "controllers/podgc/gc_order.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/time_format.h"

namespace mk8s::controllers::podgc {
namespace {

using nlohmann::json;

bool Evicted(const json& pod) {
  return pod.value("/status/phase"_json_pointer, std::string()) == "Failed" &&
         pod.value("/status/reason"_json_pointer, std::string()) == "Evicted";
}

// A pod without a parsable creationTimestamp sorts as the oldest: it is the odd one out.
std::chrono::system_clock::time_point Created(const json& pod) {
  auto parsed = ParseRfc3339(pod.value("/metadata/creationTimestamp"_json_pointer, std::string()));
  return parsed.value_or(std::chrono::system_clock::time_point{});
}

std::string Key(const json& pod) {
  return pod.value("/metadata/namespace"_json_pointer, std::string()) + "/" +
         pod.value("/metadata/name"_json_pointer, std::string());
}

}  // namespace

bool DeleteBefore(const json& a, const json& b) {
  const bool a_evicted = Evicted(a);
  const bool b_evicted = Evicted(b);
  if (a_evicted != b_evicted) return a_evicted;
  const auto a_created = Created(a);
  const auto b_created = Created(b);
  if (a_created != b_created) return a_created < b_created;
  return Key(a) < Key(b);
}

void SortForDeletion(std::vector<client::ObjectPtr>* pods) {
  std::stable_sort(
      pods->begin(), pods->end(),
      [](const client::ObjectPtr& a, const client::ObjectPtr& b) { return DeleteBefore(*a, *b); });
}

}  // namespace mk8s::controllers::podgc
