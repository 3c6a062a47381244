// Kubernetes resource quantities ("100m", "1Gi", "1.5", "500Mi", "2e3") parsed once into integers.
//
// Pure functions, thread-safe. Values beyond int64 saturate at INT64_MAX / INT64_MIN, like the
// upstream Quantity's MilliValue() on very large inputs.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

namespace mk8s {

// Parses a quantity and returns its value in milli-units rounded up (toward +infinity), as
// Kubernetes' Quantity.MilliValue(): "100m" -> 100, "1" -> 1000, "1Ki" -> 1024000.
// Returns nullopt on a malformed string (empty, bad suffix, stray characters).
std::optional<int64_t> ParseQuantityMilli(std::string_view s);

// Parses a quantity and returns its value in whole units rounded up, as Quantity.Value():
// "1Gi" -> 1073741824, "100m" -> 1, "1.5" -> 2.
std::optional<int64_t> ParseQuantityValue(std::string_view s);

// The same, over a JSON value as found in resource lists: a string, or (leniently) a number.
// Anything else, or a malformed string, yields 0.
int64_t JsonQuantityMilli(const nlohmann::json& v);
int64_t JsonQuantityValue(const nlohmann::json& v);

}  // namespace mk8s
