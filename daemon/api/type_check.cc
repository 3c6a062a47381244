// Go-like type checking of decoded objects. See type_check.h for the contract.
#include "api/type_check.h"

#include <cstdint>
#include <limits>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace mk8s::api {
namespace {

using nlohmann::json;

// Go's package name of a schema package: "core.v1" -> "v1".
std::string GoPackage(const MessageType& message) {
  const std::string& package = message.package();
  const size_t dot = package.rfind('.');
  return dot == std::string::npos ? package : package.substr(dot + 1);
}

// The Go type of one element of `field`, as Go's decoder names it in its errors.
std::string ElementTypeName(const Field& field) {
  switch (field.kind) {
    case ValueKind::kString: return "string";
    case ValueKind::kBool: return "bool";
    case ValueKind::kInt32: return "int32";
    case ValueKind::kInt64: return "int64";
    case ValueKind::kDouble: return "float64";
    case ValueKind::kBytes: return "[]uint8";
    case ValueKind::kMessage:
      return field.message != nullptr ? GoPackage(*field.message) + "." + field.message->name()
                                      : field.type_name;
    case ValueKind::kTime: return "v1.Time";
    case ValueKind::kMicroTime: return "v1.MicroTime";
    case ValueKind::kDuration: return "v1.Duration";
    case ValueKind::kQuantity: return "resource.Quantity";
    case ValueKind::kIntOrString: return "intstr.IntOrString";
    case ValueKind::kRawExtension: return "runtime.RawExtension";
    case ValueKind::kFieldsV1: return "v1.FieldsV1";
  }
  return field.type_name;
}

std::string FieldTypeName(const Field& field, bool element) {
  const std::string type = ElementTypeName(field);
  if (element) return type;
  switch (field.shape) {
    case FieldShape::kList: return "[]" + type;
    case FieldShape::kMap: return "map[string]" + type;
    case FieldShape::kMapOfList: return "map[string][]" + type;
    case FieldShape::kSingle: break;
  }
  return type;
}

const char* JsonTypeWord(const json& value) {
  switch (value.type()) {
    case json::value_t::string: return "string";
    case json::value_t::boolean: return "bool";
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: return "number";
    case json::value_t::array: return "array";
    case json::value_t::object: return "object";
    default: return "null";
  }
}

// What Go decodes a null list or map element of `field` to.
json ZeroElement(const Field& field) {
  switch (field.kind) {
    case ValueKind::kBool: return false;
    case ValueKind::kInt32:
    case ValueKind::kInt64:
    case ValueKind::kIntOrString: return 0;
    case ValueKind::kDouble: return 0.0;
    case ValueKind::kMessage: return json::object();
    case ValueKind::kQuantity: return "0";
    case ValueKind::kRawExtension:
    case ValueKind::kFieldsV1: return nullptr;
    default: return "";
  }
}

bool IsIntegerIn(const json& value, int64_t low, int64_t high) {
  if (value.is_number_unsigned()) {
    return value.get<uint64_t>() <= static_cast<uint64_t>(high);
  }
  if (!value.is_number_integer()) return false;
  const int64_t v = value.get<int64_t>();
  return v >= low && v <= high;
}

class Checker {
 public:
  std::optional<std::string> problem;

  // `object` is a JSON object of `type`.
  void Message(json& object, const MessageType& type) {
    for (auto it = object.begin(); it != object.end();) {
      const Field* field = type.FieldByJson(it.key());
      if (field == nullptr) {  // unknown: not ours to judge here
        ++it;
        continue;
      }
      if (it->is_null()) {  // Go: the zero value, which is not written back
        it = object.erase(it);
        continue;
      }
      path_.push_back(it.key());
      Value(*it, *field, type, /*element=*/false);
      path_.pop_back();
      if (problem) return;
      ++it;
    }
  }

 private:
  // Checks the whole value of `field` (element false) or one element of it (element true).
  void Value(json& value, const Field& field, const MessageType& owner, bool element) {
    if (!element && field.shape != FieldShape::kSingle) {
      if (field.shape == FieldShape::kList) {
        if (!value.is_array()) return Fail(value, field, owner, false, false);
        return Elements(value, field, owner);
      }
      if (!value.is_object()) return Fail(value, field, owner, false, false);
      for (auto& [key, entry] : value.items()) {
        if (field.shape == FieldShape::kMapOfList) {
          if (entry.is_null()) entry = json::array();
          if (!entry.is_array()) return Fail(entry, field, owner, false, false);
          Elements(entry, field, owner);
        } else if (entry.is_null()) {
          entry = ZeroElement(field);
        } else {
          Value(entry, field, owner, true);
        }
        if (problem) return;
      }
      return;
    }
    switch (field.kind) {
      case ValueKind::kString:
      case ValueKind::kBytes:
      case ValueKind::kTime:
      case ValueKind::kMicroTime:
      case ValueKind::kDuration:
        if (!value.is_string()) Fail(value, field, owner, true, false);
        return;
      case ValueKind::kBool:
        if (!value.is_boolean()) Fail(value, field, owner, true, false);
        return;
      case ValueKind::kInt32:
        if (!IsIntegerIn(value, std::numeric_limits<int32_t>::min(),
                         std::numeric_limits<int32_t>::max())) {
          Fail(value, field, owner, true, value.is_number());
        }
        return;
      case ValueKind::kInt64:
        if (!IsIntegerIn(value, std::numeric_limits<int64_t>::min(),
                         std::numeric_limits<int64_t>::max())) {
          Fail(value, field, owner, true, value.is_number());
        }
        return;
      case ValueKind::kDouble:
        if (!value.is_number()) Fail(value, field, owner, true, false);
        return;
      case ValueKind::kQuantity:  // "100m", or a bare number as YAML gives it
        if (!value.is_string() && !value.is_number()) Fail(value, field, owner, true, false);
        return;
      case ValueKind::kIntOrString:
        if (value.is_string()) return;
        if (!IsIntegerIn(value, std::numeric_limits<int32_t>::min(),
                         std::numeric_limits<int32_t>::max())) {
          Fail(value, field, owner, true, value.is_number());
        }
        return;
      case ValueKind::kMessage:
        if (!value.is_object()) return Fail(value, field, owner, true, false);
        if (field.message != nullptr) Message(value, *field.message);
        return;
      case ValueKind::kRawExtension:
      case ValueKind::kFieldsV1: return;
    }
  }

  void Elements(json& list, const Field& field, const MessageType& owner) {
    for (json& element : list) {
      if (element.is_null()) {
        element = ZeroElement(field);
        continue;
      }
      Value(element, field, owner, true);
      if (problem) return;
    }
  }

  // Go's UnmarshalTypeError text; `with_value` adds the number ("number 1.5") as Go does for a
  // number that does not fit an integer field.
  void Fail(const json& value, const Field& field, const MessageType& owner, bool element,
            bool with_value) {
    std::string path;
    for (std::string_view part : path_) {
      if (!path.empty()) path += '.';
      path += part;
    }
    problem = std::string("json: cannot unmarshal ") + JsonTypeWord(value) +
              (with_value ? " " + value.dump() : "") + " into Go struct field " + owner.name() +
              "." + path + " of type " + FieldTypeName(field, element);
  }

  std::vector<std::string_view> path_;  // field names from the root; no indices or map keys
};

}  // namespace

std::optional<std::string> CheckAndNormalizeTypes(json& object, const MessageType& type) {
  if (!object.is_object()) return "json: cannot unmarshal " + std::string(JsonTypeWord(object)) +
                                  " into Go value of type " + GoPackage(type) + "." + type.name();
  Checker checker;
  checker.Message(object, type);
  return checker.problem;
}

}  // namespace mk8s::api
