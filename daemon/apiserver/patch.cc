#include "apiserver/patch.h"

#include <algorithm>

#include "api/schema.h"
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

// Where the merge is in the object: the schema type of the JSON object being merged (schema
// mode) or just the field path (fallback mode, `schema` false).
struct Node {
  bool schema = false;
  const api::MessageType* type = nullptr;  // nullptr in schema mode: schemaless, lists replace
  bool map_values = false;                 // the object is a map whose values are of `type`
};

// The list rule and the element node for field `key` of an object at `node`.
ListMergeRule RuleFor(const Node& node, const std::vector<std::string>& path,
                      const api::Field** field_out);

Node ChildNode(const Node& node, const api::Field* field) {
  Node child;
  child.schema = node.schema;
  if (!node.schema) return child;
  if (node.map_values) {  // the value of a map entry
    child.type = node.type;
    return child;
  }
  if (field == nullptr || field->kind != api::ValueKind::kMessage) return child;
  child.type = field->message;
  child.map_values = field->shape == api::FieldShape::kMap;
  return child;
}

json Merge(const json& original, const json& patch, const Node& node,
           std::vector<std::string>& path);

json MergeList(const json& original, const json& patch, const ListMergeRule& rule,
               const Node& element, std::vector<std::string>& path) {
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
      if (item.is_object() && item.value("$patch", "") == "replace") {
        return MergeList(json(), patch, rule, element, path);
      }
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
      *match = Merge(*match, item, element, path);
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
      const bool same =
          merge_key.empty()
              ? list[i] == wanted
              : (list[i].is_object() && wanted.is_object() && list[i].contains(merge_key) &&
                 wanted.contains(merge_key) && list[i][merge_key] == wanted[merge_key]);
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

namespace {

json Merge(const json& original, const json& patch, const Node& node,
           std::vector<std::string>& path) {
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
    const api::Field* field = nullptr;
    const ListMergeRule rule = RuleFor(node, path, &field);
    const Node child = ChildNode(node, field);
    if (value.is_object()) {
      json merged = Merge(result.contains(key) ? result[key] : json(), value, child, path);
      if (merged.is_null()) {
        result.erase(key);
      } else {
        result[key] = std::move(merged);
      }
    } else if (value.is_array()) {
      if (rule.merge) {
        result[key] =
            MergeList(result.contains(key) ? result[key] : json(), value, rule, child, path);
      } else {
        json replaced = value;
        RemoveDirectives(replaced);
        result[key] = std::move(replaced);
      }
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
    const api::Field* unused = nullptr;
    const ListMergeRule rule = RuleFor(node, path, &unused);
    path.pop_back();
    ApplyElementOrder(result[field], value, rule.merge_key);
  }
  return result;
}

ListMergeRule RuleFor(const Node& node, const std::vector<std::string>& path,
                      const api::Field** field_out) {
  *field_out = nullptr;
  if (!node.schema) return LookupListMergeRule(path);
  if (node.type == nullptr || node.map_values || path.empty()) return {};
  const api::Field* field = node.type->FieldByJson(path.back());
  *field_out = field;
  if (field == nullptr || field->shape != api::FieldShape::kList) return {};
  if ((field->patch & api::kPatchMerge) == 0) return {};
  return {true, field->merge_key};
}

}  // namespace

json StrategicMerge(const json& original, const json& patch, std::vector<std::string>& path) {
  return Merge(original, patch, Node{}, path);
}

json StrategicMerge(const json& original, const json& patch, const api::MessageType* type) {
  std::vector<std::string> path;
  Node node;
  node.schema = type != nullptr;
  node.type = type;
  return Merge(original, patch, node, path);
}

const api::MessageType* SchemaTypeOf(const json& object) {
  if (!object.is_object()) return nullptr;
  auto api_version = object.find("apiVersion");
  auto kind = object.find("kind");
  if (api_version == object.end() || kind == object.end() || !api_version->is_string() ||
      !kind->is_string()) {
    return nullptr;
  }
  const std::string& gv = api_version->get_ref<const std::string&>();
  const size_t slash = gv.find('/');
  const std::string group = slash == std::string::npos ? "" : gv.substr(0, slash);
  const std::string version = slash == std::string::npos ? gv : gv.substr(slash + 1);
  return api::Schema::Builtin().ForKind(group, version, kind->get_ref<const std::string&>());
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
        if (!patch.is_array())
          return ApiError::BadRequest("a JSON patch must be an array of operations");
        *result = original.patch(patch);
        break;
      case PatchType::kMerge:
        *result = original;
        result->merge_patch(patch);
        break;
      case PatchType::kStrategic:
      case PatchType::kApply: {
        if (!patch.is_object()) return ApiError::BadRequest("the patch body must be a JSON object");
        const api::MessageType* schema_type = SchemaTypeOf(original);
        if (schema_type == nullptr) schema_type = SchemaTypeOf(patch);
        if (schema_type != nullptr) {
          *result = StrategicMerge(original, patch, schema_type);
        } else {
          std::vector<std::string> path;
          *result = StrategicMerge(original, patch, path);
        }
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
