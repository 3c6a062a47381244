#include "addonhost/manifest_apply.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdlib>

#include "client/client.h"

namespace mk8s::addonhost {
namespace {

using nlohmann::json;

// A plain YAML scalar as JSON: null, bool, integer, float, else string (YAML 1.2 core schema).
json Scalar(const YAML::Node& node) {
  const std::string& text = node.Scalar();
  if (node.Tag() == "!") return text;  // quoted: always a string
  if (text.empty() || text == "~" || text == "null" || text == "Null" || text == "NULL") {
    return nullptr;
  }
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  errno = 0;
  char* end = nullptr;
  const long long integer = std::strtoll(text.c_str(), &end, 10);
  if (errno == 0 && *end == '\0' && end != text.c_str()) return integer;
  const double number = std::strtod(text.c_str(), &end);
  if (*end == '\0' && end != text.c_str() && text.find_first_of("0123456789") == 0) return number;
  return text;
}

json ToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar:
      return Scalar(node);
    case YAML::NodeType::Sequence: {
      json out = json::array();
      for (const YAML::Node& item : node) out.push_back(ToJson(item));
      return out;
    }
    case YAML::NodeType::Map: {
      json out = json::object();
      for (const auto& item : node) out[item.first.as<std::string>()] = ToJson(item.second);
      return out;
    }
  }
  return nullptr;
}

std::string Describe(const json& object) {
  std::string out = object.value("kind", "?") + " ";
  const json& metadata = object.value("metadata", json::object());
  if (metadata.contains("namespace")) out += metadata.value("namespace", "") + "/";
  return out + metadata.value("name", "?");
}

Status AddObject(const json& object, std::vector<json>* out) {
  if (object.is_null()) return Status::Ok();
  if (!object.is_object()) {
    return Status(Code::kInvalidArgument, "a manifest document is not an object");
  }
  if (object.value("kind", "") == "List" && object.contains("items")) {
    for (const json& item : object["items"]) {
      if (Status status = AddObject(item, out); !status.ok()) return status;
    }
    return Status::Ok();
  }
  if (!object.contains("apiVersion") || !object.contains("kind") || !object.contains("metadata") ||
      !object["metadata"].is_object() || !object["metadata"].contains("name")) {
    return Status(Code::kInvalidArgument, "manifest object " + Describe(object) +
                                              " needs apiVersion, kind and metadata.name");
  }
  out->push_back(object);
  return Status::Ok();
}

// Finds the resource serving `kind` in `api_version` through discovery.
Result<client::ResourceRef> Resolve(client::Client& client, const std::string& api_version,
                                    const std::string& kind) {
  client::ResourceRef ref;
  const size_t slash = api_version.find('/');
  ref.group = slash == std::string::npos ? "" : api_version.substr(0, slash);
  ref.version = slash == std::string::npos ? api_version : api_version.substr(slash + 1);
  client::Request request;
  request.path = ref.GroupVersionPath();
  client::ApiResult<json> list = client.Do(request);
  if (!list.ok()) {
    return Status(Code::kInvalidArgument,
                  "the API server does not serve " + api_version + ": " + list.error().ToString());
  }
  for (const json& resource : list->value("resources", json::array())) {
    const std::string name = resource.value("name", "");
    if (resource.value("kind", "") == kind && name.find('/') == std::string::npos) {
      ref.resource = name;
      ref.namespaced = resource.value("namespaced", false);
      return ref;
    }
  }
  return Status(Code::kInvalidArgument,
                "the API server has no kind " + kind + " in " + api_version);
}

// The object's resource and namespace ("" for cluster-scoped kinds).
Result<std::pair<client::ResourceRef, std::string>> Locate(client::Client& client,
                                                           const json& object) {
  Result<client::ResourceRef> ref =
      Resolve(client, object.value("apiVersion", ""), object.value("kind", ""));
  if (!ref.ok()) return ref.status();
  std::string ns;
  if (ref->namespaced) ns = object["metadata"].value("namespace", "default");
  return std::make_pair(*ref, ns);
}

}  // namespace

Result<std::vector<json>> ParseManifest(std::string_view text) {
  std::vector<json> objects;
  std::vector<YAML::Node> documents;
  try {
    documents = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    return Status(Code::kInvalidArgument,
                  std::string("the manifest is not valid YAML: ") + e.what());
  }
  for (const YAML::Node& document : documents) {
    json object;
    try {
      object = ToJson(document);
    } catch (const YAML::Exception& e) {
      return Status(Code::kInvalidArgument,
                    std::string("the manifest is not valid YAML: ") + e.what());
    }
    if (Status status = AddObject(object, &objects); !status.ok()) return status;
  }
  return objects;
}

Status ApplyObjects(client::Client& client, const std::vector<json>& objects,
                    const std::string& field_manager) {
  for (const json& object : objects) {
    auto where = Locate(client, object);
    if (!where.ok())
      return Status(where.status().code(), Describe(object) + ": " + where.status().message());
    client::WriteOptions options;
    options.field_manager = field_manager;
    options.force = true;
    client::ApiResult<json> applied =
        client.Patch(where->first, where->second, object["metadata"].value("name", ""),
                     client::PatchType::kApply, object, "", options);
    if (!applied.ok()) {
      return Status(applied.status().code(),
                    "apply of " + Describe(object) + " failed: " + applied.error().ToString());
    }
  }
  return Status::Ok();
}

Status DeleteObjects(client::Client& client, const std::vector<json>& objects) {
  for (auto it = objects.rbegin(); it != objects.rend(); ++it) {
    auto where = Locate(client, *it);
    if (!where.ok())
      return Status(where.status().code(), Describe(*it) + ": " + where.status().message());
    client::ApiResult<json> deleted =
        client.Delete(where->first, where->second, (*it)["metadata"].value("name", ""));
    if (!deleted.ok() && !client::IsNotFound(deleted.error())) {
      return Status(deleted.status().code(),
                    "delete of " + Describe(*it) + " failed: " + deleted.error().ToString());
    }
  }
  return Status::Ok();
}

}  // namespace mk8s::addonhost
