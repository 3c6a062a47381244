#include "apiserver/registry/stored_bytes.h"

namespace mk8s::apiserver {
namespace {

using nlohmann::json;

// Appends compact dumps straight to one string (what json::dump(-1, ' ', false, replace) does
// into a fresh string): no temporary string per value. Each Append completes its output, so
// the caller may append to the string between calls.
class Dumper {
 public:
  explicit Dumper(std::string* out)
      : serializer_(nlohmann::detail::output_adapter<char, std::string>(*out), ' ',
                    json::error_handler_t::replace) {}
  void Append(const json& value) { serializer_.dump(value, false, false, 0); }

 private:
  nlohmann::detail::serializer<json> serializer_;
};

// A key as dump writes it: quoted, escaped when it has to be.
void AppendKey(const std::string& key, std::string* out, Dumper& dumper) {
  for (unsigned char c : key) {
    if (c < 0x20 || c == '"' || c == '\\' || c >= 0x7f) {
      dumper.Append(json(key));
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
  std::string& out = result.bytes;
  Dumper dumper(&out);
  if (!object.is_object()) {
    dumper.Append(object);
    return result;
  }
  out.reserve(1536);
  out.push_back('{');
  bool first = true;
  for (const auto& [key, value] : object.items()) {
    if (!first) out.push_back(',');
    first = false;
    AppendKey(key, &out, dumper);
    out.push_back(':');
    if (key != "metadata" || !value.is_object()) {
      dumper.Append(value);
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
      AppendKey(field, &out, dumper);
      out.push_back(':');
      dumper.Append(field_value);
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
