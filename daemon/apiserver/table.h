// Server-side printing: meta.k8s.io/v1 Table columns and rows per kind, with Kubernetes's own
// columns (priority 1 = the extra `-o wide` columns). Kinds without a printer get NAME and AGE.
// Internal to the API server (nlohmann in the interface).
#pragma once

#include <chrono>
#include <nlohmann/json.hpp>
#include <string>

namespace mk8s::apiserver {

struct ResourceInfo;

// Kubernetes's short human durations: "45s", "5m30s", "3h20m", "12d".
std::string HumanDuration(std::chrono::seconds age);

// The columnDefinitions array for a resource.
nlohmann::json TableColumns(const ResourceInfo& resource);
// One row's cells for an object.
nlohmann::json TableCells(const ResourceInfo& resource, const nlohmann::json& object,
                          std::chrono::system_clock::time_point now);
// The row object (PartialObjectMetadata) kubectl reads namespace and name from.
nlohmann::json TableRowObject(const nlohmann::json& object);

}  // namespace mk8s::apiserver
