// PATCH bodies: JSON Patch (RFC 6902), JSON Merge Patch (RFC 7386), Kubernetes strategic merge
// patch (list merge keys and `$patch`, `$retainKeys`, `$setElementOrder`,
// `$deleteFromPrimitiveList` directives) and server-side apply (create-or-merge semantics).
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "apiserver/api_error.h"

namespace mk8s::api {
class MessageType;
}  // namespace mk8s::api

namespace mk8s::apiserver {

enum class PatchType { kJson, kMerge, kStrategic, kApply };

// From the Content-Type; nullopt for anything else (a 415).
std::optional<PatchType> PatchTypeFromContentType(std::string_view content_type);

// How a list field merges under strategic merge patch. With a schema type (the normal case) the
// rule comes from the field's `mergeKey` and `patch` attributes; LookupListMergeRule is the
// built-in fallback, by path of field names (e.g. {"spec","template","spec","containers"}), used
// only for objects whose kind the schema does not know.
struct ListMergeRule {
  bool merge = false;     // false: the patch's list replaces the original
  std::string merge_key;  // for lists of objects; empty for primitive lists that merge as sets
};
ListMergeRule LookupListMergeRule(const std::vector<std::string>& path);

// Applies `patch` (the raw body) to `original`. Errors are 400 for a malformed patch and 422
// when it cannot apply (a failed JSON Patch test, a missing path). Strategic and apply patches
// take their list semantics from the builtin schema type of `original`'s apiVersion/kind (or
// the patch's, when the original has none); unknown kinds fall back to LookupListMergeRule.
std::optional<ApiError> ApplyPatch(PatchType type, const std::string& patch_body,
                                   const nlohmann::json& original, nlohmann::json* result);

// The builtin schema type of an object by its apiVersion and kind; nullptr if unknown.
const api::MessageType* SchemaTypeOf(const nlohmann::json& object);

// Strategic merge of a parsed patch into `original`, an object of schema type `type` (nullptr:
// use the built-in path table). Lists of a field with `patch=merge` merge by its `mergeKey`
// (primitive lists merge as sets); other lists are replaced. Exposed for tests.
nlohmann::json StrategicMerge(const nlohmann::json& original, const nlohmann::json& patch,
                              const api::MessageType* type);
// The path-table variant (no schema), kept for tests of the fallback.
nlohmann::json StrategicMerge(const nlohmann::json& original, const nlohmann::json& patch,
                              std::vector<std::string>& path);

}  // namespace mk8s::apiserver
