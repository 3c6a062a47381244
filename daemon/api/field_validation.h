// Strict field validation (fieldValidation=Strict): unknown and duplicate JSON fields.
//
// Given a JSON request body and the object's type, lists every field the schema does not know
// and every key that appears twice in one object, worded as Kubernetes words them:
//   unknown field "spec.template.spec.containers[0].imagePullPolcy"
//   duplicate field "metadata.name"
// Type mismatches are not reported here (that is validation's job). At the top level apiVersion
// and kind are always allowed. Free-form values (RawExtension, FieldsV1) are not inspected.
// Thread-safe; linear in the body size.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "api/schema.h"
#include "common/status.h"

namespace mk8s::api {

// Problems in document order (empty when the body is clean). A body that is not valid JSON, or
// whose top level is not an object, is an error Status (kInvalidArgument).
Result<std::vector<std::string>> StrictFieldProblems(std::string_view json_body,
                                                     const MessageType& type);

// Same, looking the type up by group ("" for core), version and kind. An unknown kind is an
// error (kNotFound).
Result<std::vector<std::string>> StrictFieldProblems(std::string_view json_body,
                                                     std::string_view group,
                                                     std::string_view version,
                                                     std::string_view kind,
                                                     const Schema& schema = Schema::Builtin());

}  // namespace mk8s::api
