// Type checking of a decoded object against the schema, as Go's typed JSON decoding does it in
// the upstream API server. Every writer of an object (create, update, patch, apply) passes
// through it before validation and admission, so nothing downstream — admission, controllers,
// the scheduler, kubelets, informers — ever meets a string where it reads a number.
//
// - A value of the wrong JSON type for a known field is refused with Go's words:
//     json: cannot unmarshal array into Go struct field CertificateSigningRequestSpec.spec.signerName of type string
//   An integer field refuses fractions and values out of its range (int32, int64).
// - A null becomes the field's zero value, as in Go: a null field is removed, a null list or map
//   element becomes the element kind's zero value ("", 0, false, {}).
// - Unknown fields and free-form values (RawExtension, FieldsV1) are left as they are (strict
//   field validation, field_validation.h, is the place that reports unknown fields).
// Thread-safe (the schema is immutable); linear in the object's size.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>

#include "api/schema.h"

namespace mk8s::api {

// The first type problem in `object` (an object of `type`), or nullopt when it is well typed.
// Nulls are normalized in place as described above, also when a problem is found.
std::optional<std::string> CheckAndNormalizeTypes(nlohmann::json& object, const MessageType& type);

}  // namespace mk8s::api
