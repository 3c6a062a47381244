#include "apiserver/openapi.h"

#include <openssl/sha.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <nlohmann/json.hpp>
#include <set>
#include <vector>

#include "api/schema.h"
#include "apiserver/api_error.h"
#include "apiserver/resources.h"
#include "common/version.h"

namespace mk8s::apiserver {
namespace {

using api::Field;
using api::FieldShape;
using api::MessageType;
using api::ValueKind;
using nlohmann::json;

constexpr char kRefPrefix[] = "#/components/schemas/";
constexpr char kMeta[] = "io.k8s.apimachinery.pkg.apis.meta.v1.";

std::string Hash(const std::string& text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (int i = 0; i < 32; ++i) {  // upstream uses a 128-character hash; any stable one works
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

json Ref(const std::string& component) { return {{"$ref", kRefPrefix + component}}; }

// The component name and schema of a special meta type, as upstream publishes them; an empty
// name for kinds that are written inline.
std::pair<std::string, json> SpecialComponent(ValueKind kind) {
  switch (kind) {
    case ValueKind::kTime:
      return {std::string(kMeta) + "Time",
              {{"type", "string"},
               {"format", "date-time"},
               {"description", "A point in time, as an RFC 3339 string with seconds."}}};
    case ValueKind::kMicroTime:
      return {std::string(kMeta) + "MicroTime",
              {{"type", "string"},
               {"format", "date-time"},
               {"description", "A point in time, as an RFC 3339 string with microseconds."}}};
    case ValueKind::kQuantity:
      return {
          "io.k8s.apimachinery.pkg.api.resource.Quantity",
          {{"oneOf", json::array({{{"type", "string"}}, {{"type", "number"}}})},
           {"description", "A fixed-point number with an optional suffix (\"100m\", \"1Gi\")."}}};
    case ValueKind::kIntOrString:
      return {"io.k8s.apimachinery.pkg.util.intstr.IntOrString",
              {{"anyOf", json::array({{{"type", "integer"}}, {{"type", "string"}}})},
               {"format", "int-or-string"},
               {"x-kubernetes-int-or-string", true},
               {"description", "An integer or a string (such as a percentage)."}}};
    case ValueKind::kRawExtension:
      return {"io.k8s.apimachinery.pkg.runtime.RawExtension",
              {{"type", "object"}, {"description", "An embedded object of any kind."}}};
    case ValueKind::kFieldsV1:
      return {std::string(kMeta) + "FieldsV1",
              {{"type", "object"}, {"description", "A set of fields, in the FieldsV1 format."}}};
    default:
      return {};
  }
}

// Collects the components of one document.
class ComponentBuilder {
 public:
  // `gvks`: the x-kubernetes-group-version-kind entries of top-level types.
  explicit ComponentBuilder(const std::map<const MessageType*, json>& gvks) : gvks_(gvks) {}

  // Adds `type` and everything it reaches; returns its component name.
  std::string Add(const MessageType* type) {
    const std::string name = OpenApiComponentName(*type);
    if (seen_.insert(type).second) pending_.push_back(type);
    while (!pending_.empty()) {
      const MessageType* next = pending_.front();
      pending_.pop_front();
      schemas_[OpenApiComponentName(*next)] = Message(*next);
    }
    return name;
  }

  json Take() { return std::move(schemas_); }

 private:
  // The schema of one value of the field (an element, for lists and maps).
  json Element(const Field& field) {
    switch (field.kind) {
      case ValueKind::kString:
        return {{"type", "string"}};
      case ValueKind::kBool:
        return {{"type", "boolean"}};
      case ValueKind::kInt32:
        return {{"type", "integer"}, {"format", "int32"}};
      case ValueKind::kInt64:
        return {{"type", "integer"}, {"format", "int64"}};
      case ValueKind::kDouble:
        return {{"type", "number"}, {"format", "double"}};
      case ValueKind::kBytes:
        return {{"type", "string"}, {"format", "byte"}};
      case ValueKind::kDuration:
        return {{"type", "string"}};
      case ValueKind::kMessage: {
        if (field.message == nullptr) return {{"type", "object"}};
        if (seen_.insert(field.message).second) pending_.push_back(field.message);
        return {{"allOf", json::array({Ref(OpenApiComponentName(*field.message))})},
                {"default", json::object()}};
      }
      default: {
        auto [name, schema] = SpecialComponent(field.kind);
        schemas_[name] = std::move(schema);
        return {{"allOf", json::array({Ref(name)})}};
      }
    }
  }

  json Property(const Field& field) {
    json element = Element(field);
    json property;
    switch (field.shape) {
      case FieldShape::kSingle:
        property = std::move(element);
        break;
      case FieldShape::kList:
        property = {{"type", "array"}, {"items", std::move(element)}};
        break;
      case FieldShape::kMap:
        property = {{"type", "object"}, {"additionalProperties", std::move(element)}};
        break;
      case FieldShape::kMapOfList:
        property = {{"type", "object"},
                    {"additionalProperties", {{"type", "array"}, {"items", std::move(element)}}}};
        break;
    }
    if (field.shape == FieldShape::kSingle && field.kind == ValueKind::kMessage) {
      property.erase("default");  // upstream only defaults required struct fields
      if (field.required) property["default"] = json::object();
    }
    if (!field.description.empty()) property["description"] = field.description;
    if (!field.merge_key.empty()) property["x-kubernetes-patch-merge-key"] = field.merge_key;
    if (field.patch != api::kPatchNone) {
      std::string strategy;
      if (field.patch & api::kPatchMerge) strategy = "merge";
      if (field.patch & api::kPatchReplace) strategy = "replace";
      if (field.patch & api::kPatchRetainKeys) {
        strategy += strategy.empty() ? "retainKeys" : ",retainKeys";
      }
      property["x-kubernetes-patch-strategy"] = strategy;
    }
    switch (field.list_type) {
      case api::ListType::kAtomic:
        property["x-kubernetes-list-type"] = "atomic";
        break;
      case api::ListType::kSet:
        property["x-kubernetes-list-type"] = "set";
        break;
      case api::ListType::kMap:
        property["x-kubernetes-list-type"] = "map";
        property["x-kubernetes-list-map-keys"] = field.list_map_keys;
        break;
      case api::ListType::kUnset:
        break;
    }
    return property;
  }

  // Adds the JSON properties of `type` (inlined messages spliced in) to `schema`.
  void Properties(const MessageType& type, json& properties, json& required, int depth) {
    for (const Field& field : type.fields()) {
      if (field.inlined && field.message != nullptr && depth < 8) {
        Properties(*field.message, properties, required, depth + 1);
        continue;
      }
      properties[field.json_name] = Property(field);
      if (field.required) required.push_back(field.json_name);
    }
  }

  json Message(const MessageType& type) {
    json schema = {{"type", "object"}};
    if (!type.description().empty()) schema["description"] = type.description();
    json properties = json::object();
    json required = json::array();
    auto gvk = gvks_.find(&type);
    if (gvk != gvks_.end()) {  // top-level objects carry TypeMeta
      properties["apiVersion"] = {{"type", "string"},
                                  {"description", "The versioned schema of this object."}};
      properties["kind"] = {{"type", "string"},
                            {"description", "The REST resource this object represents."}};
    }
    Properties(type, properties, required, 0);
    schema["properties"] = std::move(properties);
    if (!required.empty()) schema["required"] = std::move(required);
    if (gvk != gvks_.end()) schema["x-kubernetes-group-version-kind"] = gvk->second;
    return schema;
  }

  const std::map<const MessageType*, json>& gvks_;
  std::set<const MessageType*> seen_;
  std::deque<const MessageType*> pending_;
  json schemas_ = json::object();
};

json Gvk(const std::string& group, const std::string& version, const std::string& kind) {
  return {{"group", group}, {"version", version}, {"kind", kind}};
}

json Content(const std::string& component) {
  json media = {{"schema", Ref(component)}};
  return {{"application/json", media},
          {"application/yaml", media},
          {"application/vnd.kubernetes.protobuf", media}};
}

json Param(const char* name, const char* in, bool required = false) {
  json p = {{"name", name}, {"in", in}, {"schema", {{"type", "string"}, {"uniqueItems", true}}}};
  if (required) p["required"] = true;
  return p;
}

struct OperationSpec {
  const char* action;  // x-kubernetes-action
  std::string description;
  json gvk;
  std::string body;      // component of the request body; empty for none; "patch" for PATCH
  std::string response;  // component of the 200 response
  bool namespaced = false;
  bool named = false;
};

json Operation(const OperationSpec& spec) {
  json params = json::array();
  if (spec.named) params.push_back(Param("name", "path", true));
  if (spec.namespaced) params.push_back(Param("namespace", "path", true));
  params.push_back(Param("dryRun", "query"));
  params.push_back(Param("fieldManager", "query"));
  params.push_back(Param("fieldValidation", "query"));
  if (std::string_view(spec.action) == "patch") params.push_back(Param("force", "query"));
  json op = {{"description", spec.description},
             {"x-kubernetes-action", spec.action},
             {"x-kubernetes-group-version-kind", spec.gvk},
             {"parameters", std::move(params)}};
  json ok = {{"description", "OK"}};
  if (!spec.response.empty()) ok["content"] = Content(spec.response);
  op["responses"] = {{"200", ok}, {"401", {{"description", "Unauthorized"}}}};
  if (std::string_view(spec.action) == "post") {
    op["responses"]["201"] = {{"description", "Created"}, {"content", ok.value("content", json())}};
  }
  if (spec.body == "patch") {
    json media = {{"schema", Ref(std::string(kMeta) + "Patch")}};
    op["requestBody"] = {{"required", true},
                         {"content",
                          {{"application/json-patch+json", media},
                           {"application/merge-patch+json", media},
                           {"application/strategic-merge-patch+json", media},
                           {"application/apply-patch+yaml", media}}}};
  } else if (!spec.body.empty()) {
    op["requestBody"] = {{"required", true}, {"content", Content(spec.body)}};
  }
  return op;
}

std::string DocPath(const std::string& gv) {
  return gv.find('/') == std::string::npos ? "api/" + gv : "apis/" + gv;
}

}  // namespace

std::string OpenApiComponentName(const MessageType& type) {
  const std::string& package = type.package();
  if (package == "meta.v1") return kMeta + type.name();
  if (package == "runtime") return "io.k8s.apimachinery.pkg.runtime." + type.name();
  return "io.k8s.api." + package + "." + type.name();
}

OpenApi::OpenApi(const ResourceRegistry& registry) : OpenApi(registry, api::Schema::Builtin()) {}

OpenApi::OpenApi(const ResourceRegistry& registry, const api::Schema& schema) {
  const auto start = std::chrono::steady_clock::now();
  // x-kubernetes-group-version-kind of every type a served resource or subresource uses.
  std::map<const MessageType*, json> gvks;
  auto note_gvk = [&](const std::string& group, const std::string& version,
                      const std::string& kind) -> const MessageType* {
    const MessageType* type = schema.ForKind(group, version, kind);
    if (type == nullptr || type->package() == "meta.v1") return type;
    json& list = gvks[type];
    if (!list.is_array()) list = json::array();
    json entry = Gvk(group, version, kind);
    if (std::find(list.begin(), list.end(), entry) == list.end()) list.push_back(entry);
    return type;
  };
  for (const ResourceInfo& info : registry.All()) {
    note_gvk(info.group, info.version, info.kind);
    note_gvk(info.group, info.version, info.kind + "List");
    for (const SubresourceInfo& sub : info.subresources) {
      note_gvk(sub.group, sub.version, sub.kind);
    }
  }

  json paths_index = json::object();
  for (const std::string& gv : registry.GroupVersions()) {
    const std::string doc_path = DocPath(gv);
    ComponentBuilder components(gvks);
    // Every document can answer with a Status and takes DeleteOptions and patches.
    const std::string status = components.Add(schema.FindMessage("meta.v1.Status"));
    const std::string delete_options = components.Add(schema.FindMessage("meta.v1.DeleteOptions"));
    json paths = json::object();
    for (const ResourceInfo& info : registry.All()) {
      if (info.GroupVersion() != gv) continue;
      const json gvk = Gvk(info.group, info.version, info.kind);
      const MessageType* type = schema.ForKind(info.group, info.version, info.kind);
      const MessageType* list = schema.ForKind(info.group, info.version, info.kind + "List");
      const std::string object = type != nullptr ? components.Add(type) : "";
      const std::string objects = list != nullptr ? components.Add(list) : object;
      const std::string base =
          "/" + doc_path + (info.namespaced ? "/namespaces/{namespace}/" : "/") + info.resource;
      const bool ns = info.namespaced;
      auto has_verb = [&info](const char* verb) {
        return std::find(info.verbs.begin(), info.verbs.end(), verb) != info.verbs.end();
      };
      json collection = json::object();
      if (has_verb("list")) {
        collection["get"] =
            Operation({"list", "list " + info.kind + " objects", gvk, "", objects, ns});
      }
      if (has_verb("create")) {
        collection["post"] = Operation({"post", "create a " + info.kind, gvk, object, object, ns});
      }
      if (has_verb("deletecollection")) {
        collection["delete"] = Operation({"deletecollection", "delete a collection of " + info.kind,
                                          gvk, delete_options, status, ns});
      }
      if (!collection.empty()) paths[base] = std::move(collection);
      json item = json::object();
      if (has_verb("get"))
        item["get"] = Operation({"get", "read a " + info.kind, gvk, "", object, ns, true});
      if (has_verb("update")) {
        item["put"] = Operation({"put", "replace a " + info.kind, gvk, object, object, ns, true});
      }
      if (has_verb("patch")) {
        item["patch"] =
            Operation({"patch", "partially update a " + info.kind, gvk, "patch", object, ns, true});
      }
      if (has_verb("delete")) {
        item["delete"] =
            Operation({"delete", "delete a " + info.kind, gvk, delete_options, status, ns, true});
      }
      if (!item.empty()) paths[base + "/{name}"] = std::move(item);
      for (const SubresourceInfo& sub : info.subresources) {
        if (sub.name != "status" && sub.name != "scale") continue;
        const MessageType* sub_type = schema.ForKind(sub.group, sub.version, sub.kind);
        const std::string sub_object = sub_type != nullptr ? components.Add(sub_type) : "";
        const json sub_gvk = Gvk(sub.group, sub.version, sub.kind);
        const std::string what = sub.name + " of a " + info.kind;
        paths[base + "/{name}/" + sub.name] = {
            {"get", Operation({"get", "read the " + what, sub_gvk, "", sub_object, ns, true})},
            {"put",
             Operation({"put", "replace the " + what, sub_gvk, sub_object, sub_object, ns, true})},
            {"patch", Operation({"patch", "partially update the " + what, sub_gvk, "patch",
                                 sub_object, ns, true})}};
      }
    }
    json schemas = components.Take();
    schemas[std::string(kMeta) + "Patch"] = {
        {"type", "object"},
        {"description", "A patch body: JSON, merge, strategic merge or apply."}};
    json document = {{"openapi", "3.0.0"},
                     {"info", {{"title", "Kubernetes"}, {"version", kKubernetesVersion}}},
                     {"paths", std::move(paths)},
                     {"components", {{"schemas", std::move(schemas)}}}};
    std::string text = document.dump();
    paths_index[doc_path] = {
        {"serverRelativeURL", "/openapi/v3/" + doc_path + "?hash=" + Hash(text)}};
    total_bytes_ += text.size();
    documents_.emplace(doc_path, std::move(text));
  }
  index_ = json{{"paths", std::move(paths_index)}}.dump();
  total_bytes_ += index_.size();
  build_micros_ = std::chrono::duration_cast<std::chrono::microseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
}

std::pair<int, std::string> OpenApi::Serve(std::string_view path) const {
  if (path == "/openapi/v3" || path == "/openapi/v3/") return {200, index_};
  constexpr std::string_view kPrefix = "/openapi/v3/";
  if (path.substr(0, kPrefix.size()) != kPrefix) {
    return {404,
            ApiError{404, "NotFound", "the server could not find the requested resource"}.ToJson()};
  }
  auto it = documents_.find(path.substr(kPrefix.size()));
  if (it == documents_.end()) {
    return {404,
            ApiError{404, "NotFound", "the server could not find the requested resource"}.ToJson()};
  }
  return {200, it->second};
}

}  // namespace mk8s::apiserver
