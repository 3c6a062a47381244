#include "apiserver/registry/stored_bytes.h"

namespace mk8s::apiserver {
namespace {

using nlohmann::json;

void AppendDump(const json& value, std::string* out) {
  *out += value.dump(-1, ' ', false, json::error_handler_t::replace);
}

// A key as dump writes it: quoted, escaped when it has to be.
void AppendKey(const std::string& key, std::string* out) {
  for (unsigned char c : key) {
    if (c < 0x20 || c == '"' || c == '\\' || c >= 0x7f) {
      AppendDump(json(key), out);
      return;
    }
  }
  out->push_back('"');
  *out += key;
  out->push_back('"');
}

}  // namespace

StoredBytes SerializeStored(const json& object) {
  StoredBytes result;
  if (!object.is_object()) {
    AppendDump(object, &result.bytes);
    return result;
  }
  std::string& out = result.bytes;
  out.reserve(1536);
  out.push_back('{');
  bool first = true;
  for (const auto& [key, value] : object.items()) {
    if (!first) out.push_back(',');
    first = false;
    AppendKey(key, &out);
    out.push_back(':');
    if (key != "metadata" || !value.is_object()) {
      AppendDump(value, &out);
      continue;
    }
    out.push_back('{');
    bool first_field = true;
    for (const auto& [field, field_value] : value.items()) {
      if (result.rv_offset == std::string::npos && field > "resourceVersion") {
        result.rv_offset = out.size();
        // Before the first field: `"resourceVersion":"N",`; later: `,"resourceVersion":"N"`
        // (the next field brings its own comma).
        result.comma_before = !first_field;
        result.comma_after = first_field;
      }
      if (!first_field) out.push_back(',');
      first_field = false;
      AppendKey(field, &out);
      out.push_back(':');
      AppendDump(field_value, &out);
    }
    if (result.rv_offset == std::string::npos) {  // it goes last
      result.rv_offset = out.size();
      result.comma_before = !first_field;
      result.comma_after = false;
    }
    out.push_back('}');
  }
  out.push_back('}');
  return result;
}

std::string StoredBytes::WithResourceVersion(int64_t revision) const {
  if (rv_offset == std::string::npos) return {};
  std::string field;
  if (comma_before) field.push_back(',');
  field += "\"resourceVersion\":\"";
  field += std::to_string(revision);
  field.push_back('"');
  if (comma_after) field.push_back(',');
  std::string out;
  out.reserve(bytes.size() + field.size());
  out.append(bytes, 0, rv_offset);
  out += field;
  out.append(bytes, rv_offset, std::string::npos);
  return out;
}

}  // namespace mk8s::apiserver
