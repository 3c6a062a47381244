// API errors as Kubernetes reports them: a metav1.Status with code, reason and details.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace mk8s::apiserver {

struct StatusCause {
  std::string reason;   // e.g. "FieldValueInvalid", "FieldValueRequired", "FieldValueDuplicate"
  std::string message;
  std::string field;    // e.g. "metadata.name"
};

struct ApiError {
  ApiError() = default;
  ApiError(int code_in, std::string reason_in, std::string message_in)
      : code(code_in), reason(std::move(reason_in)), message(std::move(message_in)) {}

  int code = 500;
  std::string reason;   // "NotFound", "AlreadyExists", "Conflict", "Invalid", "BadRequest", ...
  std::string message;
  // details
  std::string name;
  std::string group;
  std::string kind;     // the resource (plural), as upstream puts it in details.kind
  std::string uid;
  std::vector<StatusCause> causes;
  int retry_after_seconds = 0;

  // The metav1.Status JSON text.
  std::string ToJson() const;

  // Builders for the common cases; `resource` is e.g. "deployments.apps" or "pods".
  static ApiError NotFound(const std::string& group, const std::string& resource,
                           const std::string& name);
  static ApiError AlreadyExists(const std::string& group, const std::string& resource,
                                const std::string& name);
  static ApiError Conflict(const std::string& group, const std::string& resource,
                           const std::string& name, const std::string& why);
  static ApiError Invalid(const std::string& group, const std::string& kind,
                          const std::string& name, std::vector<StatusCause> causes);
  static ApiError BadRequest(const std::string& message);
  static ApiError Unauthorized();
  static ApiError Forbidden(const std::string& message);
  static ApiError MethodNotAllowed(const std::string& message);
  static ApiError Gone(const std::string& message);
  static ApiError UnsupportedMediaType(const std::string& content_type);
  static ApiError NotAcceptable(const std::string& message);
  static ApiError TooManyRequests(const std::string& message, int retry_after_seconds);
  static ApiError Internal(const std::string& message);
  static ApiError ServiceUnavailable(const std::string& message);
};

}  // namespace mk8s::apiserver
