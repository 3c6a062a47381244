#include "apiserver/api_error.h"

#include <nlohmann/json.hpp>

namespace mk8s::apiserver {
namespace {

// "deployments.apps" for groups, "pods" for core.
std::string Qualified(const std::string& group, const std::string& resource) {
  return group.empty() ? resource : resource + "." + group;
}

}  // namespace

std::string ApiError::ToJson() const {
  nlohmann::json status = {{"kind", "Status"},
                           {"apiVersion", "v1"},
                           {"metadata", nlohmann::json::object()},
                           {"status", "Failure"},
                           {"message", message},
                           {"reason", reason},
                           {"code", code}};
  nlohmann::json details = nlohmann::json::object();
  if (!name.empty()) details["name"] = name;
  if (!group.empty()) details["group"] = group;
  if (!kind.empty()) details["kind"] = kind;
  if (!uid.empty()) details["uid"] = uid;
  if (!causes.empty()) {
    nlohmann::json list = nlohmann::json::array();
    for (const StatusCause& cause : causes) {
      nlohmann::json item = {{"reason", cause.reason}, {"message", cause.message}};
      if (!cause.field.empty()) item["field"] = cause.field;
      list.push_back(std::move(item));
    }
    details["causes"] = std::move(list);
  }
  if (retry_after_seconds > 0) details["retryAfterSeconds"] = retry_after_seconds;
  if (!details.empty()) status["details"] = std::move(details);
  return status.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

ApiError ApiError::NotFound(const std::string& group, const std::string& resource,
                            const std::string& name) {
  ApiError e{404, "NotFound", Qualified(group, resource) + " \"" + name + "\" not found"};
  e.name = name;
  e.group = group;
  e.kind = resource;
  return e;
}

ApiError ApiError::AlreadyExists(const std::string& group, const std::string& resource,
                                 const std::string& name) {
  ApiError e{409, "AlreadyExists", Qualified(group, resource) + " \"" + name + "\" already exists"};
  e.name = name;
  e.group = group;
  e.kind = resource;
  return e;
}

ApiError ApiError::Conflict(const std::string& group, const std::string& resource,
                            const std::string& name, const std::string& why) {
  ApiError e{409, "Conflict",
             "Operation cannot be fulfilled on " + Qualified(group, resource) + " \"" + name +
                 "\": " + why};
  e.name = name;
  e.group = group;
  e.kind = resource;
  return e;
}

ApiError ApiError::Invalid(const std::string& group, const std::string& kind,
                           const std::string& name, std::vector<StatusCause> causes) {
  std::string summary;
  for (size_t i = 0; i < causes.size(); ++i) {
    if (i > 0) summary += ", ";
    summary += causes[i].field.empty() ? causes[i].message
                                       : causes[i].field + ": " + causes[i].message;
  }
  std::string message = kind + (group.empty() ? "" : "." + group) + " \"" + name +
                        "\" is invalid: " + (causes.size() > 1 ? "[" + summary + "]" : summary);
  ApiError e{422, "Invalid", std::move(message)};
  e.name = name;
  e.group = group;
  e.kind = kind;
  e.causes = std::move(causes);
  return e;
}

ApiError ApiError::BadRequest(const std::string& message) { return {400, "BadRequest", message}; }
ApiError ApiError::Unauthorized() { return {401, "Unauthorized", "Unauthorized"}; }
ApiError ApiError::Forbidden(const std::string& message) { return {403, "Forbidden", message}; }
ApiError ApiError::MethodNotAllowed(const std::string& message) {
  return {405, "MethodNotAllowed", message};
}
ApiError ApiError::Gone(const std::string& message) { return {410, "Expired", message}; }
ApiError ApiError::UnsupportedMediaType(const std::string& content_type) {
  return {415, "UnsupportedMediaType", "the body of the request was in an unknown format - "
                                       "accepted media types include: application/json, "
                                       "application/yaml, application/vnd.kubernetes.protobuf "
                                       "(got \"" + content_type + "\")"};
}
ApiError ApiError::NotAcceptable(const std::string& message) {
  return {406, "NotAcceptable", message};
}
ApiError ApiError::TooManyRequests(const std::string& message, int retry_after_seconds) {
  ApiError e{429, "TooManyRequests", message};
  e.retry_after_seconds = retry_after_seconds;
  return e;
}
ApiError ApiError::Internal(const std::string& message) {
  return {500, "InternalError", "Internal error occurred: " + message};
}
ApiError ApiError::ServiceUnavailable(const std::string& message) {
  return {503, "ServiceUnavailable", message};
}

}  // namespace mk8s::apiserver
