#include "apiserver/registry/conversion.h"

#include "apiserver/resources.h"

namespace mk8s::apiserver {
namespace {

using nlohmann::json;

// core/v1 Event field -> events.k8s.io/v1 Event field. Fields with the same name in both
// (metadata, reason, type, action, eventTime, series, related, reportingInstance) pass through.
const std::pair<const char*, const char*> kRenames[] = {
    {"involvedObject", "regarding"},
    {"message", "note"},
    {"reportingComponent", "reportingController"},
    {"source", "deprecatedSource"},
    {"firstTimestamp", "deprecatedFirstTimestamp"},
    {"lastTimestamp", "deprecatedLastTimestamp"},
    {"count", "deprecatedCount"},
};

json Rename(const json& in, bool to_served, const char* api_version) {
  json out = json::object();
  for (const auto& [key, value] : in.items()) {
    std::string name = key;
    for (const auto& [core, events] : kRenames) {
      if (to_served && key == core) name = events;
      if (!to_served && key == events) name = core;
    }
    out[name] = value;
  }
  out["apiVersion"] = api_version;
  out["kind"] = "Event";
  return out;
}

}  // namespace

bool NeedsConversion(const ResourceInfo& resource) { return resource.group == "events.k8s.io"; }

json ToServed(const ResourceInfo& resource, const json& stored) {
  if (!NeedsConversion(resource) || !stored.is_object()) return stored;
  return Rename(stored, /*to_served=*/true, "events.k8s.io/v1");
}

json ToStored(const ResourceInfo& resource, const json& served) {
  if (!NeedsConversion(resource) || !served.is_object()) return served;
  return Rename(served, /*to_served=*/false, "v1");
}

}  // namespace mk8s::apiserver
