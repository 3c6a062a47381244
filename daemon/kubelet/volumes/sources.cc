#include "kubelet/volumes/sources.h"

#include "kubelet/volumes/downward_api.h"
#include "pki/encoding.h"

namespace mk8s::kubelet::volumes {
namespace {

using nlohmann::json;

std::string Quoted(const std::string& s) { return "\"" + s + "\""; }

// Decodes a base64 map field ("data" of a Secret, "binaryData" of a ConfigMap) into `out`.
Status DecodeMap(const json& object, const char* field, const std::string& what, DataMap* out) {
  if (!object.contains(field) || object[field].is_null()) return Status::Ok();
  if (!object[field].is_object()) {
    return Status(Code::kInvalidArgument, what + ": " + field + " is not an object");
  }
  for (const auto& [key, value] : object[field].items()) {
    if (value.is_null()) {
      (*out)[key] = "";
      continue;
    }
    std::optional<std::string> decoded;
    if (value.is_string()) decoded = pki::Base64Decode(value.get<std::string>());
    if (!decoded) {
      return Status(Code::kInvalidArgument,
                    what + ": " + field + "[" + Quoted(key) + "] is not valid base64");
    }
    (*out)[key] = std::move(*decoded);
  }
  return Status::Ok();
}

void CopyStrings(const json& object, const char* field, DataMap* out) {
  if (!object.contains(field) || !object[field].is_object()) return;
  for (const auto& [key, value] : object[field].items()) {
    (*out)[key] = value.is_string() ? value.get<std::string>() : value.dump();
  }
}

// items (KeyToPath) or every key -> files.
Status ProjectKeys(const DataMap& data, const json& source, uint32_t default_mode, bool optional,
                   const std::string& kind, Payload* out) {
  const json items = source.value("items", json::array());
  if (!items.is_array()) return Status(Code::kInvalidArgument, "items is not a list");
  if (items.empty()) {
    for (const auto& [key, value] : data) (*out)[key] = FileProjection{value, default_mode};
    return Status::Ok();
  }
  for (const json& item : items) {
    if (!item.is_object()) return Status(Code::kInvalidArgument, "an item is not an object");
    const std::string key = item.value("key", "");
    const std::string path = item.value("path", "");
    auto found = data.find(key);
    if (found == data.end()) {
      if (optional) continue;
      return Status(Code::kNotFound, kind == "secret"
                                         ? "references non-existent secret key: " + key
                                         : "configmap references non-existent config key: " + key);
    }
    Result<uint32_t> mode = ModeField(item, "mode", default_mode);
    if (!mode.ok()) return mode.status();
    if (Status valid = ValidatePayloadPath(path); !valid.ok()) return valid;
    (*out)[path] = FileProjection{found->second, *mode};
  }
  return Status::Ok();
}

Status AddObjectFiles(const SourceContext& ctx, const json& source, uint32_t default_mode,
                      const std::string& kind, Payload* out) {
  if (!source.is_object()) return Status(Code::kInvalidArgument, kind + " source is not an object");
  std::string name = source.value("name", "");
  if (kind == "secret" && source.contains("secretName")) name = source.value("secretName", "");
  const bool optional = source.value("optional", false);
  if (name.empty()) return Status(Code::kInvalidArgument, kind + " name is required");
  Result<std::optional<json>> object = GetObject(*ctx.client, kind, ctx.ns, name);
  if (!object.ok()) return object.status();
  if (!object->has_value()) {
    if (optional) return Status::Ok();
    return Status(Code::kNotFound, kind + " " + Quoted(name) + " not found");
  }
  Result<DataMap> data = kind == "secret" ? SecretData(**object) : ConfigMapData(**object);
  if (!data.ok()) return data.status();
  return ProjectKeys(*data, source, default_mode, optional, kind, out);
}

}  // namespace

Result<std::optional<json>> GetObject(client::Client& client, const std::string& kind,
                                      const std::string& ns, const std::string& name) {
  const client::ResourceRef& resource = kind == "secret" ? client::kSecrets : client::kConfigMaps;
  auto got = client.Get(resource, ns, name);
  if (got.ok()) return std::optional<json>(std::move(*got));
  if (client::IsNotFound(got.error())) return std::optional<json>();
  return Status(Code::kUnavailable,
                "cannot get " + kind + " " + Quoted(name) + ": " + got.error().ToString());
}

Result<DataMap> ConfigMapData(const json& config_map) {
  DataMap out;
  CopyStrings(config_map, "data", &out);
  const std::string what =
      "configmap " + Quoted(config_map.value("/metadata/name"_json_pointer, std::string()));
  if (Status decoded = DecodeMap(config_map, "binaryData", what, &out); !decoded.ok())
    return decoded;
  return out;
}

Result<DataMap> SecretData(const json& secret) {
  DataMap out;
  const std::string what =
      "secret " + Quoted(secret.value("/metadata/name"_json_pointer, std::string()));
  if (Status decoded = DecodeMap(secret, "data", what, &out); !decoded.ok()) return decoded;
  CopyStrings(secret, "stringData", &out);  // the API server normally folds it into data
  return out;
}

Result<uint32_t> ModeField(const json& object, const char* field, uint32_t fallback) {
  if (!object.is_object() || !object.contains(field) || object[field].is_null()) return fallback;
  const json& value = object[field];
  if (!value.is_number_integer() || value.get<int64_t>() < 0 || value.get<int64_t>() > 0777) {
    return Status(Code::kInvalidArgument, std::string(field) + " " + value.dump() +
                                              " is not a valid file mode (0 to 0777, i.e. 511)");
  }
  return static_cast<uint32_t>(value.get<int64_t>());
}

Status AddConfigMapFiles(const SourceContext& ctx, const json& source, uint32_t default_mode,
                         Payload* out) {
  return AddObjectFiles(ctx, source, default_mode, "configmap", out);
}

Status AddSecretFiles(const SourceContext& ctx, const json& source, uint32_t default_mode,
                      Payload* out) {
  return AddObjectFiles(ctx, source, default_mode, "secret", out);
}

Status AddDownwardApiFiles(const SourceContext& ctx, const json& items, uint32_t default_mode,
                           Payload* out) {
  if (items.is_null()) return Status::Ok();
  if (!items.is_array()) return Status(Code::kInvalidArgument, "downwardAPI items is not a list");
  for (const json& item : items) {
    if (!item.is_object())
      return Status(Code::kInvalidArgument, "a downwardAPI item is not an object");
    const std::string path = item.value("path", "");
    if (Status valid = ValidatePayloadPath(path); !valid.ok()) return valid;
    Result<uint32_t> mode = ModeField(item, "mode", default_mode);
    if (!mode.ok()) return mode.status();
    Result<std::string> value = std::string();
    if (item.contains("fieldRef") && item["fieldRef"].is_object()) {
      const json& ref = item["fieldRef"];
      value =
          ExtractMetadataField(*ctx.pod, ref.value("apiVersion", ""), ref.value("fieldPath", ""));
    } else if (item.contains("resourceFieldRef") && item["resourceFieldRef"].is_object()) {
      value = ExtractResourceField(*ctx.pod, item["resourceFieldRef"], "", ctx.node_allocatable);
    } else {
      return Status(Code::kInvalidArgument,
                    "downwardAPI item " + Quoted(path) + " needs fieldRef or resourceFieldRef");
    }
    if (!value.ok()) {
      return Status(value.status().code(),
                    "downwardAPI item " + Quoted(path) + ": " + value.status().message());
    }
    (*out)[path] = FileProjection{*value, *mode};
  }
  return Status::Ok();
}

Status AddTokenFile(const SourceContext& ctx, const json& source, uint32_t default_mode,
                    Payload* out) {
  if (!source.is_object()) {
    return Status(Code::kInvalidArgument, "serviceAccountToken is not an object");
  }
  const std::string path = source.value("path", "");
  if (Status valid = ValidatePayloadPath(path); !valid.ok()) return valid;
  const int64_t expiration = source.value("expirationSeconds", int64_t{3600});
  if (expiration < 600) {
    return Status(Code::kInvalidArgument,
                  "serviceAccountToken expirationSeconds must be at least 600 (10 minutes)");
  }
  Result<std::string> token =
      ctx.tokens->Get(*ctx.client, *ctx.pod, source.value("audience", ""), expiration, ctx.now);
  if (!token.ok()) return token.status();
  (*out)[path] = FileProjection{*token, default_mode};
  return Status::Ok();
}

}  // namespace mk8s::kubelet::volumes
