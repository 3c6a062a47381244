#include "apiserver/body_codec.h"

#include <yaml-cpp/yaml.h>

#include "api/field_validation.h"
#include "api/type_check.h"
#include "api/protobuf.h"

#include <cctype>

namespace mk8s::apiserver {
namespace {

using nlohmann::json;

constexpr int kMaxDepth = 100;

json ScalarToJson(const YAML::Node& node) {
  const std::string& text = node.Scalar();
  if (node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str") return text;  // quoted
  if (text == "null" || text == "~" || text == "Null" || text == "NULL") return nullptr;
  if (text == "true" || text == "True" || text == "TRUE") return true;
  if (text == "false" || text == "False" || text == "FALSE") return false;
  if (!text.empty()) {
    char* end = nullptr;
    errno = 0;
    const long long integer = std::strtoll(text.c_str(), &end, 10);
    if (*end == '\0' && errno == 0 && (std::isdigit(static_cast<unsigned char>(text[0])) ||
                                        text[0] == '-' || text[0] == '+')) {
      return integer;
    }
    end = nullptr;
    const double number = std::strtod(text.c_str(), &end);
    if (*end == '\0' && (std::isdigit(static_cast<unsigned char>(text[0])) || text[0] == '-' ||
                         text[0] == '.') && text.find_first_of("eE.") != std::string::npos) {
      return number;
    }
  }
  return text;
}

bool Convert(const YAML::Node& node, json* out, int depth, std::string* error) {
  if (depth > kMaxDepth) {
    *error = "document nested too deeply";
    return false;
  }
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      *out = nullptr;
      return true;
    case YAML::NodeType::Scalar:
      *out = ScalarToJson(node);
      return true;
    case YAML::NodeType::Sequence:
      *out = json::array();
      for (const auto& item : node) {
        json value;
        if (!Convert(item, &value, depth + 1, error)) return false;
        out->push_back(std::move(value));
      }
      return true;
    case YAML::NodeType::Map:
      *out = json::object();
      for (const auto& item : node) {
        if (!item.first.IsScalar()) {
          *error = "mapping keys must be strings";
          return false;
        }
        json value;
        if (!Convert(item.second, &value, depth + 1, error)) return false;
        (*out)[item.first.Scalar()] = std::move(value);
      }
      return true;
  }
  return true;
}

}  // namespace

std::string MediaType(std::string_view content_type) {
  const size_t semicolon = content_type.find(';');
  std::string type(content_type.substr(0, semicolon));
  while (!type.empty() && std::isspace(static_cast<unsigned char>(type.back()))) type.pop_back();
  for (char& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return type;
}

bool YamlToJson(const std::string& text, json* out, std::string* error) {
  try {
    YAML::Node node = YAML::Load(text);
    return Convert(node, out, 0, error);
  } catch (const YAML::Exception& e) {
    *error = "error converting YAML to JSON: yaml: line " + std::to_string(e.mark.line + 1) +
             ": " + e.msg;
    return false;
  }
}

std::optional<ApiError> DecodeBody(std::string_view content_type, const std::string& body,
                                   json* out) {
  const std::string type = MediaType(content_type);
  if (type.empty() || type == "application/json" || type == "*/*") {
    try {
      *out = json::parse(body);
    } catch (const json::parse_error& e) {
      return ApiError::BadRequest(std::string("the request body is not valid JSON: ") + e.what());
    }
  } else if (type == "application/yaml" || type == "application/x-yaml" || type == "text/yaml") {
    std::string error;
    if (!YamlToJson(body, out, &error)) return ApiError::BadRequest(error);
  } else if (type == "application/vnd.kubernetes.protobuf") {
    Result<json> decoded = api::DecodeProtobufBody(body);
    if (!decoded.ok()) return ApiError::BadRequest(decoded.status().message());
    *out = std::move(*decoded);
  } else {
    return ApiError::UnsupportedMediaType(std::string(content_type));
  }
  if (!out->is_object()) {
    return ApiError::BadRequest("the request body must be a JSON object, got " +
                                std::string(out->type_name()));
  }
  return std::nullopt;
}

}  // namespace mk8s::apiserver

namespace mk8s::apiserver {

std::optional<ApiError> CheckStrictFields(std::string_view content_type, const std::string& body,
                                          const std::string& group, const std::string& version,
                                          const std::string& kind) {
  const std::string type = MediaType(content_type);
  if (!type.empty() && type != "application/json") return std::nullopt;  // protobuf/YAML: lenient
  auto problems = api::StrictFieldProblems(body, group, version, kind);
  if (!problems.ok() || problems->empty()) return std::nullopt;  // unknown kind: not validated
  std::string message = kind + " in version \"" + version + "\" cannot be handled as a " + kind +
                        ": strict decoding error: ";
  for (size_t i = 0; i < problems->size(); ++i) message += (i ? ", " : "") + (*problems)[i];
  return ApiError::BadRequest(message);
}

std::optional<ApiError> CheckBodyTypes(const std::string& group, const std::string& version,
                                       const std::string& kind, nlohmann::json& object) {
  const api::MessageType* type = api::Schema::Builtin().ForKind(group, version, kind);
  if (type == nullptr) return std::nullopt;
  if (auto problem = api::CheckAndNormalizeTypes(object, *type)) {
    return ApiError::BadRequest(kind + " in version \"" + version + "\" cannot be handled as a " +
                                kind + ": " + *problem);
  }
  return std::nullopt;
}

}  // namespace mk8s::apiserver
