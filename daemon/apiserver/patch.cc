#include "apiserver/patch.h"

#include <algorithm>

#include "apiserver/body_codec.h"

namespace mk8s::apiserver {
namespace {

using nlohmann::json;

bool EndsWith(const std::vector<std::string>& path, std::initializer_list<const char*> suffix) {
  if (path.size() < suffix.size()) return false;
  size_t i = path.size() - suffix.size();
  for (const char* part : suffix) {
    if (path[i++] != part) return false;
  }
  return true;
}

bool InsideContainer(const std::vector<std::string>& path) {
  // .../containers/ports, .../initContainers/env, ...
  if (path.size() < 2) return false;
  const std::string& parent = path[path.size() - 2];
  return parent == "containers" || parent == "initContainers" || parent == "ephemeralContainers";
}

void RemoveDirectives(json& value) {
  if (value.is_object()) {
    for (auto it = value.begin(); it != value.end();) {
      if (!it.key().empty() && it.key()[0] == '$') {
        it = value.erase(it);
      } else {
        RemoveDirectives(it.value());
        ++it;
      }
    }
  } else if (value.is_array()) {
    for (auto& item : value) RemoveDirectives(item);
  }
}

json MergeList(const json& original, const json& patch, const ListMergeRule& rule,
               std::vector<std::string>& path) {
  if (!original.is_array()) {
    json copy = patch;
    // Items that only say "$patch: delete" have nothing to delete from.
    json out = json::array();
    for (auto& item : copy) {
      if (item.is_object() && item.value("$patch", "") == "delete") continue;
      RemoveDirectives(item);
      out.push_back(std::move(item));
    }
    return out;
  }
  json result = original;
  if (rule.merge_key.empty()) {  // a set of primitives
    for (const auto& item : patch) {
      if (std::find(result.begin(), result.end(), item) == result.end()) result.push_back(item);
    }
    return result;
  }
  for (const auto& item : patch) {
    if (!item.is_object() || !item.contains(rule.merge_key)) {
      if (item.is_object() && item.value("$patch", "") == "replace") return MergeList(json(), patch, rule, path);
      result.push_back(item);
      continue;
    }
    const json& key = item[rule.merge_key];
    auto match = std::find_if(result.begin(), result.end(), [&](const json& existing) {
      return existing.is_object() && existing.contains(rule.merge_key) &&
             existing[rule.merge_key] == key;
    });
    const std::string directive = item.value("$patch", "");
    if (directive == "delete") {
      if (match != result.end()) result.erase(match);
      continue;
    }
    if (match == result.end()) {
      json added = item;
      RemoveDirectives(added);
      result.push_back(std::move(added));
    } else if (directive == "replace") {
      json replaced = item;
      RemoveDirectives(replaced);
      *match = std::move(replaced);
    } else {
      *match = StrategicMerge(*match, item, path);
    }
  }
  return result;
}

// Orders `list` as `order` says (items named in the order first, in its order; the rest after).
void ApplyElementOrder(json& list, const json& order, const std::string& merge_key) {
  if (!list.is_array() || !order.is_array()) return;
  json sorted = json::array();
  std::vector<bool> used(list.size(), false);
  for (const auto& wanted : order) {
    for (size_t i = 0; i < list.size(); ++i) {
      if (used[i]) continue;
      const bool same = merge_key.empty()
                            ? list[i] == wanted
                            : (list[i].is_object() && wanted.is_object() &&
                               list[i].contains(merge_key) && wanted.contains(merge_key) &&
                               list[i][merge_key] == wanted[merge_key]);
      if (same) {
        sorted.push_back(list[i]);
        used[i] = true;
        break;
      }
    }
  }
  for (size_t i = 0; i < list.size(); ++i) {
    if (!used[i]) sorted.push_back(list[i]);
  }
  list = std::move(sorted);
}

}  // namespace

std::optional<PatchType> PatchTypeFromContentType(std::string_view content_type) {
  const std::string type = MediaType(content_type);
  if (type == "application/json-patch+json") return PatchType::kJson;
  if (type == "application/merge-patch+json") return PatchType::kMerge;
  if (type == "application/strategic-merge-patch+json") return PatchType::kStrategic;
  if (type == "application/apply-patch+yaml" || type == "application/apply-patch+cbor") {
    return PatchType::kApply;
  }
  return std::nullopt;
}

ListMergeRule LookupListMergeRule(const std::vector<std::string>& path) {
  if (path.empty()) return {};
  const std::string& field = path.back();
  if (field == "containers" || field == "initContainers" || field == "ephemeralContainers" ||
      field == "volumes" || field == "imagePullSecrets" || field == "resourceClaims") {
    return {true, "name"};
  }
  if (InsideContainer(path)) {
    if (field == "env") return {true, "name"};
    if (field == "ports") return {true, "containerPort"};
    if (field == "volumeMounts") return {true, "mountPath"};
    if (field == "volumeDevices") return {true, "devicePath"};
    if (field == "resizePolicy") return {true, "resourceName"};
  }
  if (EndsWith(path, {"spec", "ports"})) return {true, "port"};  // Service
  if (field == "conditions") return {true, "type"};
  if (field == "ownerReferences") return {true, "uid"};
  if (field == "finalizers") return {true, ""};
  if (field == "hostAliases") return {true, "ip"};
  if (field == "topologySpreadConstraints") return {true, "topologyKey"};
  if (EndsWith(path, {"status", "addresses"})) return {true, "type"};
  if (field == "taints") return {true, "key"};
  return {};
}

json StrategicMerge(const json& original, const json& patch, std::vector<std::string>& path) {
  if (!patch.is_object()) return patch;
  const std::string directive = patch.value("$patch", "");
  if (directive == "replace") {
    json replaced = patch;
    RemoveDirectives(replaced);
    return replaced;
  }
  if (directive == "delete") return nullptr;
  json result = original.is_object() ? original : json::object();
  // $retainKeys: keys of the original not listed are dropped.
  if (auto retain = patch.find("$retainKeys"); retain != patch.end() && retain->is_array()) {
    for (auto it = result.begin(); it != result.end();) {
      if (std::find(retain->begin(), retain->end(), it.key()) == retain->end()) {
        it = result.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (const auto& [key, value] : patch.items()) {
    static const std::string kDeletePrimitive = "$deleteFromPrimitiveList/";
    if (key.rfind(kDeletePrimitive, 0) == 0) {
      const std::string field = key.substr(kDeletePrimitive.size());
      if (result.contains(field) && result[field].is_array() && value.is_array()) {
        json& list = result[field];
        for (auto it = list.begin(); it != list.end();) {
          if (std::find(value.begin(), value.end(), *it) != value.end()) {
            it = list.erase(it);
          } else {
            ++it;
          }
        }
      }
      continue;
    }
    if (!key.empty() && key[0] == '$') continue;  // other directives are handled above/below
    if (value.is_null()) {
      result.erase(key);
      continue;
    }
    path.push_back(key);
    if (value.is_object()) {
      json merged = StrategicMerge(result.contains(key) ? result[key] : json(), value, path);
      if (merged.is_null()) {
        result.erase(key);
      } else {
        result[key] = std::move(merged);
      }
    } else if (value.is_array()) {
      const ListMergeRule rule = LookupListMergeRule(path);
      result[key] = rule.merge ? MergeList(result.contains(key) ? result[key] : json(), value, rule, path)
                               : value;
    } else {
      result[key] = value;
    }
    path.pop_back();
  }
  // $setElementOrder/<list>: the order the client wants for the merged list.
  for (const auto& [key, value] : patch.items()) {
    static const std::string kOrder = "$setElementOrder/";
    if (key.rfind(kOrder, 0) != 0) continue;
    const std::string field = key.substr(kOrder.size());
    if (!result.contains(field)) continue;
    path.push_back(field);
    const ListMergeRule rule = LookupListMergeRule(path);
    path.pop_back();
    ApplyElementOrder(result[field], value, rule.merge_key);
  }
  return result;
}

std::optional<ApiError> ApplyPatch(PatchType type, const std::string& patch_body,
                                   const json& original, json* result) {
  json patch;
  if (type == PatchType::kApply) {
    // Apply bodies are YAML (kubectl sends JSON, which is YAML too).
    std::string error;
    if (!YamlToJson(patch_body, &patch, &error)) return ApiError::BadRequest(error);
  } else {
    patch = json::parse(patch_body, nullptr, false);
    if (patch.is_discarded()) {
      return ApiError::BadRequest("the patch body is not valid JSON");
    }
  }
  try {
    switch (type) {
      case PatchType::kJson:
        if (!patch.is_array()) return ApiError::BadRequest("a JSON patch must be an array of operations");
        *result = original.patch(patch);
        break;
      case PatchType::kMerge:
        *result = original;
        result->merge_patch(patch);
        break;
      case PatchType::kStrategic:
      case PatchType::kApply: {
        if (!patch.is_object()) return ApiError::BadRequest("the patch body must be a JSON object");
        std::vector<std::string> path;
        *result = StrategicMerge(original, patch, path);
        break;
      }
    }
  } catch (const json::exception& e) {
    ApiError error{422, "Invalid", std::string("the patch could not be applied: ") + e.what()};
    return error;
  }
  if (!result->is_object()) return ApiError::BadRequest("the patched object is not a JSON object");
  return std::nullopt;
}

}  // namespace mk8s::apiserver
