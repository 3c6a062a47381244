// Resources served in a different shape than they are stored: events.k8s.io/v1 Events are the
// core/v1 Events in the store, renamed field by field, so both APIs show the same objects.
#pragma once

#include <nlohmann/json.hpp>

namespace mk8s::apiserver {

struct ResourceInfo;

bool NeedsConversion(const ResourceInfo& resource);
// The stored (core/v1) form -> what `resource` serves. Identity for other resources.
nlohmann::json ToServed(const ResourceInfo& resource, const nlohmann::json& stored);
// What `resource` accepts -> the stored form. Identity for other resources.
nlohmann::json ToStored(const ResourceInfo& resource, const nlohmann::json& served);

}  // namespace mk8s::apiserver
