// Request bodies to JSON: application/json, application/yaml and (through the schema)
// application/vnd.kubernetes.protobuf. Internal to the API server.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "apiserver/api_error.h"

namespace mk8s::apiserver {

// The media type without parameters, lower-cased ("application/json").
std::string MediaType(std::string_view content_type);

// Decodes an object body. Errors are 400 (malformed, saying where) or 415 (unknown type).
std::optional<ApiError> DecodeBody(std::string_view content_type, const std::string& body,
                                   nlohmann::json* out);

// fieldValidation=Strict: unknown or duplicate fields in a JSON body are a 400 that names them.
// Kinds the schema does not describe pass unchecked.
std::optional<ApiError> CheckStrictFields(std::string_view content_type, const std::string& body,
                                          const std::string& group, const std::string& version,
                                          const std::string& kind);

// The second half of Go's typed decoding, for a decoded body of this kind: a value of the wrong
// JSON type is a 400 ("Pod in version \"v1\" cannot be handled as a Pod: json: cannot unmarshal
// ..."), and nulls become zero values (api/type_check.h). Every body a handler reads typed must
// pass through it first. Kinds the schema does not describe pass unchecked.
std::optional<ApiError> CheckBodyTypes(const std::string& group, const std::string& version,
                                       const std::string& kind, nlohmann::json& object);

// YAML text (one document) to JSON; false with a message on error.
bool YamlToJson(const std::string& text, nlohmann::json* out, std::string* error);

}  // namespace mk8s::apiserver
