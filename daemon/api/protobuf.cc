// Schema-driven protobuf -> JSON decoding. See protobuf.h for the contract.
#include "api/protobuf.h"

#include <cstring>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "api/protobuf_special.h"

namespace mk8s::api {
namespace {

using nlohmann::json;

constexpr char kMagic[4] = {'k', '8', 's', '\0'};

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLen = 2, kFixed32 = 5 };

const char* WireName(uint32_t w) {
  switch (w) {
    case kVarint: return "varint";
    case kFixed64: return "64-bit";
    case kLen: return "length-delimited";
    case kFixed32: return "32-bit";
    case 3: case 4: return "group";
    default: return "invalid";
  }
}

bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) { ++i; continue; }
    if ((c & 0xE0) == 0xC0) { n = 1; cp = c & 0x1F; }
    else if ((c & 0xF0) == 0xE0) { n = 2; cp = c & 0x0F; }
    else if ((c & 0xF8) == 0xF0) { n = 3; cp = c & 0x07; }
    else return false;
    if (i + n >= s.size()) return false;
    for (size_t k = 1; k <= n; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
      return false;
    i += n + 1;
  }
  return true;
}

// A cursor over one message's bytes; `base` is the absolute offset of data[0] in the body.
struct Cursor {
  std::string_view data;
  size_t base = 0;
  size_t pos = 0;
  bool done() const { return pos >= data.size(); }
  size_t offset() const { return base + pos; }

  bool Varint(uint64_t* v) {
    uint64_t result = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      if (pos >= data.size()) return false;
      uint8_t b = static_cast<uint8_t>(data[pos++]);
      if (shift == 63 && b > 1) return false;  // overflows 64 bits
      result |= static_cast<uint64_t>(b & 0x7F) << shift;
      if (!(b & 0x80)) {
        *v = result;
        return true;
      }
    }
    return false;
  }
  bool Fixed(size_t n, uint64_t* v) {
    if (data.size() - pos < n) return false;
    uint64_t r = 0;
    for (size_t i = 0; i < n; ++i) r |= static_cast<uint64_t>(static_cast<uint8_t>(data[pos + i])) << (8 * i);
    pos += n;
    *v = r;
    return true;
  }
  // Reads a length prefix and the bytes it covers; *sub_base is their absolute offset.
  bool Bytes(std::string_view* out, size_t* sub_base) {
    uint64_t len;
    if (!Varint(&len)) return false;
    if (len > data.size() - pos) return false;
    *sub_base = base + pos;
    *out = data.substr(pos, static_cast<size_t>(len));
    pos += static_cast<size_t>(len);
    return true;
  }
};

class Decoder {
 public:
  explicit Decoder(size_t input_size) : budget_(2 * input_size + 64) {}

  // Decodes `bytes` (at absolute offset `base`) as `type`, merging into the object *out.
  Status Message(const MessageType& type, std::string_view bytes, size_t base, int depth,
                 json* out) {
    if (depth > kMaxProtobufDepth)
      return Fail(base, "nesting deeper than " + std::to_string(kMaxProtobufDepth) + " levels");
    if (!out->is_object()) *out = json::object();
    Cursor c{bytes, base, 0};
    while (!c.done()) {
      size_t tag_offset = c.offset();
      uint64_t tag;
      if (!c.Varint(&tag)) return Fail(tag_offset, "truncated or malformed field tag");
      uint64_t number = tag >> 3;
      uint32_t wire = static_cast<uint32_t>(tag & 7);
      if (number == 0 || number > 536870911) return Fail(tag_offset, "invalid field number 0");
      const Field* f = type.FieldByNumber(static_cast<int>(number));
      if (f == nullptr) {
        Status s = Skip(&c, wire, tag_offset);
        if (!s.ok()) return s;
        continue;
      }
      size_t saved = path_.size();
      if (!f->inlined) path_ += (path_.empty() ? "" : ".") + f->json_name;
      Status s = FieldValue(*f, wire, &c, tag_offset, depth, out);
      path_.resize(saved);
      if (!s.ok()) return s;
    }
    return Status::Ok();
  }

  Status Fail(size_t offset, const std::string& what) const {
    return Status(Code::kInvalidArgument,
                  "protobuf body: at byte " + std::to_string(offset) +
                      (path_.empty() ? "" : " (field " + path_ + ")") + ": " + what);
  }

 private:
  Status Skip(Cursor* c, uint32_t wire, size_t at) {
    uint64_t v;
    std::string_view sub;
    size_t sub_base;
    switch (wire) {
      case kVarint: if (c->Varint(&v)) return Status::Ok(); break;
      case kFixed64: if (c->Fixed(8, &v)) return Status::Ok(); break;
      case kFixed32: if (c->Fixed(4, &v)) return Status::Ok(); break;
      case kLen: if (c->Bytes(&sub, &sub_base)) return Status::Ok(); break;
      default: return Fail(at, std::string("unsupported wire type ") + WireName(wire));
    }
    return Fail(at, "value runs past the end of its message");
  }

  Status Spend(size_t at) {
    if (budget_ == 0) return Fail(at, "body expands to too many values");
    --budget_;
    return Status::Ok();
  }

  static bool IsScalarNumeric(ValueKind k) {
    return k == ValueKind::kBool || k == ValueKind::kInt32 || k == ValueKind::kInt64 ||
           k == ValueKind::kDouble;
  }
  static uint32_t WireOf(ValueKind k) {
    if (k == ValueKind::kDouble) return kFixed64;
    if (k == ValueKind::kBool || k == ValueKind::kInt32 || k == ValueKind::kInt64) return kVarint;
    return kLen;
  }

  // Reads one numeric scalar of kind k (wire already checked) into *v.
  Status Numeric(ValueKind k, Cursor* c, size_t at, json* v) {
    uint64_t raw;
    if (k == ValueKind::kDouble) {
      if (!c->Fixed(8, &raw)) return Fail(at, "truncated 64-bit value");
      double d;
      std::memcpy(&d, &raw, sizeof d);
      *v = d;
      return Status::Ok();
    }
    if (!c->Varint(&raw)) return Fail(at, "truncated or malformed varint");
    if (k == ValueKind::kBool) *v = raw != 0;
    else if (k == ValueKind::kInt32) *v = static_cast<int32_t>(static_cast<uint32_t>(raw));
    else *v = static_cast<int64_t>(raw);
    return Status::Ok();
  }

  // Decodes a length-delimited element of kind f.kind. *present=false means "omit" (an empty
  // string, a zero Time, an empty RawExtension).
  Status Element(const Field& f, std::string_view bytes, size_t base, int depth, json* v,
                 bool* present) {
    *present = true;
    switch (f.kind) {
      case ValueKind::kString:
        if (!ValidUtf8(bytes)) return Fail(base, "string is not valid UTF-8");
        *v = std::string(bytes);
        return Status::Ok();
      case ValueKind::kBytes:
        *v = internal::Base64Encode(bytes);
        return Status::Ok();
      case ValueKind::kMessage:
        *v = json::object();
        return Message(*f.message, bytes, base, depth + 1, v);
      default:
        return Special(f.kind, bytes, base, depth, v, present);
    }
  }

  // The special meta types: small messages with a custom JSON form.
  Status Special(ValueKind kind, std::string_view bytes, size_t base, int depth, json* v,
                 bool* present) {
    if (depth + 1 > kMaxProtobufDepth)
      return Fail(base, "nesting deeper than " + std::to_string(kMaxProtobufDepth) + " levels");
    int64_t ints[4] = {0, 0, 0, 0};
    std::string_view strs[4];
    Cursor c{bytes, base, 0};
    while (!c.done()) {
      size_t at = c.offset();
      uint64_t tag;
      if (!c.Varint(&tag)) return Fail(at, "truncated or malformed field tag");
      uint64_t number = tag >> 3;
      uint32_t wire = static_cast<uint32_t>(tag & 7);
      if (number == 0) return Fail(at, "invalid field number 0");
      if (number > 3 || (wire != kVarint && wire != kLen)) {
        Status s = Skip(&c, wire, at);
        if (!s.ok()) return s;
        continue;
      }
      if (wire == kVarint) {
        uint64_t raw;
        if (!c.Varint(&raw)) return Fail(at, "truncated or malformed varint");
        ints[number] = static_cast<int64_t>(raw);
      } else {
        size_t sub_base;
        if (!c.Bytes(&strs[number], &sub_base)) return Fail(at, "length runs past the end");
      }
    }
    switch (kind) {
      case ValueKind::kTime:
      case ValueKind::kMicroTime: {
        int32_t nanos = static_cast<int32_t>(ints[2]);
        if (ints[1] == 0 && nanos == 0) {
          *present = false;
          return Status::Ok();
        }
        std::string s;
        if (!internal::FormatRfc3339(ints[1], nanos, kind == ValueKind::kMicroTime, &s))
          return Fail(base, "time out of range");
        *v = s;
        return Status::Ok();
      }
      case ValueKind::kDuration:
        *v = internal::FormatGoDuration(ints[1]);
        return Status::Ok();
      case ValueKind::kQuantity:
        if (!ValidUtf8(strs[1])) return Fail(base, "quantity is not valid UTF-8");
        *present = !strs[1].empty();
        *v = std::string(strs[1]);
        return Status::Ok();
      case ValueKind::kIntOrString:
        if (ints[1] == 1) {
          if (!ValidUtf8(strs[3])) return Fail(base, "string is not valid UTF-8");
          *v = std::string(strs[3]);
        } else {
          *v = static_cast<int32_t>(static_cast<uint32_t>(ints[2]));
        }
        return Status::Ok();
      case ValueKind::kRawExtension:
      case ValueKind::kFieldsV1: {
        if (strs[1].empty()) {
          *present = false;
          return Status::Ok();
        }
        json parsed = json::parse(strs[1].begin(), strs[1].end(), nullptr, false);
        if (parsed.is_discarded()) return Fail(base, "embedded raw bytes are not valid JSON");
        *v = std::move(parsed);
        return Status::Ok();
      }
      default:
        return Fail(base, "internal: unexpected special kind");
    }
  }

  Status FieldValue(const Field& f, uint32_t wire, Cursor* c, size_t at, int depth, json* out) {
    Status budget = Spend(at);
    if (!budget.ok()) return budget;
    bool is_map = f.shape == FieldShape::kMap || f.shape == FieldShape::kMapOfList;
    uint32_t want = is_map ? kLen : WireOf(f.kind);
    bool packed = f.shape == FieldShape::kList && IsScalarNumeric(f.kind) && wire == kLen;
    if (wire != want && !packed) {
      return Fail(at, std::string("wrong wire type ") + WireName(wire) + ", expected " +
                          WireName(want));
    }
    if (is_map) return MapEntry(f, c, at, depth, out);
    if (f.inlined) {
      std::string_view sub;
      size_t sub_base;
      if (!c->Bytes(&sub, &sub_base)) return Fail(at, "length runs past the end");
      return Message(*f.message, sub, sub_base, depth + 1, out);
    }
    json& slot = (*out)[f.json_name];
    if (f.shape == FieldShape::kList) {
      if (!slot.is_array()) slot = json::array();
      if (packed) {
        std::string_view sub;
        size_t sub_base;
        if (!c->Bytes(&sub, &sub_base)) return Fail(at, "length runs past the end");
        Cursor pc{sub, sub_base, 0};
        while (!pc.done()) {
          json v;
          size_t el = pc.offset();
          Status s = Spend(el);
          if (s.ok()) s = Numeric(f.kind, &pc, el, &v);
          if (!s.ok()) return s;
          slot.push_back(std::move(v));
        }
        return Status::Ok();
      }
      json v;
      bool present = true;
      size_t saved = path_.size();
      path_ += "[" + std::to_string(slot.size()) + "]";
      Status s = ReadOne(f, wire, c, at, depth, &v, &present);
      path_.resize(saved);
      if (!s.ok()) return s;
      // Keep list positions: an empty string element stays, an absent special becomes null.
      if (!present && f.kind == ValueKind::kString) v = "";
      slot.push_back(std::move(v));
      return Status::Ok();
    }
    json v = f.kind == ValueKind::kMessage && slot.is_object() ? std::move(slot) : json();
    bool present = true;
    Status s = ReadOne(f, wire, c, at, depth, &v, &present);
    if (!s.ok()) return s;
    if (f.kind == ValueKind::kString && v.is_string() && v.get_ref<const std::string&>().empty())
      present = false;
    if (present) slot = std::move(v);
    else out->erase(f.json_name);
    return Status::Ok();
  }

  // Reads one (non-packed) value of field f whose wire type was checked.
  Status ReadOne(const Field& f, uint32_t wire, Cursor* c, size_t at, int depth, json* v,
                 bool* present) {
    if (wire != kLen) return Numeric(f.kind, c, at, v);
    std::string_view sub;
    size_t sub_base;
    if (!c->Bytes(&sub, &sub_base)) return Fail(at, "length runs past the end");
    if (f.kind == ValueKind::kMessage && v->is_object())
      return Message(*f.message, sub, sub_base, depth + 1, v);
    return Element(f, sub, sub_base, depth, v, present);
  }

  // One map entry {1: key, 2: value}; kMapOfList values are wrappers {1: repeated element}.
  Status MapEntry(const Field& f, Cursor* c, size_t at, int depth, json* out) {
    if (depth + 1 > kMaxProtobufDepth)
      return Fail(at, "nesting deeper than " + std::to_string(kMaxProtobufDepth) + " levels");
    std::string_view entry;
    size_t entry_base;
    if (!c->Bytes(&entry, &entry_base)) return Fail(at, "length runs past the end");
    std::string key;
    json value;
    bool have_value = false;
    Cursor ec{entry, entry_base, 0};
    while (!ec.done()) {
      size_t el = ec.offset();
      uint64_t tag;
      if (!ec.Varint(&tag)) return Fail(el, "truncated or malformed field tag in map entry");
      uint64_t number = tag >> 3;
      uint32_t wire = static_cast<uint32_t>(tag & 7);
      if (number == 1) {
        std::string_view k;
        size_t kb;
        if (wire != kLen) return Fail(el, "map key has wrong wire type");
        if (!ec.Bytes(&k, &kb)) return Fail(el, "length runs past the end");
        if (!ValidUtf8(k)) return Fail(el, "map key is not valid UTF-8");
        key.assign(k);
      } else if (number == 2) {
        Status s = MapValue(f, wire, &ec, el, depth + 1, &value);
        if (!s.ok()) return s;
        have_value = true;
      } else {
        if (number == 0) return Fail(el, "invalid field number 0");
        Status s = Skip(&ec, wire, el);
        if (!s.ok()) return s;
      }
    }
    json& map = (*out)[f.json_name];
    if (!map.is_object()) map = json::object();
    if (!have_value) {
      if (f.shape == FieldShape::kMapOfList) value = json::array();
      else if (f.kind == ValueKind::kMessage) value = json::object();
      else if (f.kind == ValueKind::kString || f.kind == ValueKind::kBytes) value = "";
      else if (f.kind == ValueKind::kQuantity) value = "0";
      else if (f.kind == ValueKind::kBool) value = false;
      else if (IsScalarNumeric(f.kind)) value = 0;
    }
    map[key] = std::move(value);
    return Status::Ok();
  }

  Status MapValue(const Field& f, uint32_t wire, Cursor* c, size_t at, int depth, json* value) {
    if (f.shape == FieldShape::kMapOfList) {
      // Wrapper message: field 1 repeated element.
      if (wire != kLen) return Fail(at, "map value has wrong wire type");
      std::string_view sub;
      size_t sub_base;
      if (!c->Bytes(&sub, &sub_base)) return Fail(at, "length runs past the end");
      Field list = f;
      list.shape = FieldShape::kList;
      list.json_name = "items";
      list.inlined = false;
      json holder = json::object();
      Cursor wc{sub, sub_base, 0};
      while (!wc.done()) {
        size_t el = wc.offset();
        uint64_t tag;
        if (!wc.Varint(&tag)) return Fail(el, "truncated or malformed field tag");
        if ((tag >> 3) != 1) {
          Status s = (tag >> 3) == 0 ? Fail(el, "invalid field number 0")
                                     : Skip(&wc, static_cast<uint32_t>(tag & 7), el);
          if (!s.ok()) return s;
          continue;
        }
        Status s = FieldValue(list, static_cast<uint32_t>(tag & 7), &wc, el, depth, &holder);
        if (!s.ok()) return s;
      }
      *value = holder.contains("items") ? std::move(holder["items"]) : json::array();
      return Status::Ok();
    }
    uint32_t want = WireOf(f.kind);
    if (wire != want) return Fail(at, "map value has wrong wire type");
    bool present = true;
    Status s = ReadOne(f, wire, c, at, depth, value, &present);
    if (s.ok() && !present) *value = f.kind == ValueKind::kString ? json("") : json();
    return s;
  }

  size_t budget_;
  std::string path_;
};

}  // namespace

bool HasProtobufMagic(std::string_view body) {
  return body.size() >= 4 && std::memcmp(body.data(), kMagic, 4) == 0;
}

Result<json> DecodeProtobufMessage(const MessageType& type, std::string_view bytes) {
  try {
    Decoder d(bytes.size());
    json out = json::object();
    Status s = d.Message(type, bytes, 0, 0, &out);
    if (!s.ok()) return s;
    return out;
  } catch (const std::exception& e) {
    return Status(Code::kInvalidArgument, std::string("protobuf body: ") + e.what());
  }
}

Result<json> DecodeProtobufBody(std::string_view body, const Schema& schema) {
  if (!HasProtobufMagic(body))
    return Status(Code::kInvalidArgument,
                  "protobuf body: missing the 4-byte magic prefix 6b 38 73 00 (\"k8s\\0\")");
  try {
    Decoder d(body.size());
    // The runtime.Unknown envelope: decoded by hand, it has no JSON form of its own.
    Cursor c{body.substr(4), 4, 0};
    std::string_view type_meta, raw, encoding;
    size_t raw_base = 0, tm_base = 0;
    while (!c.done()) {
      size_t at = c.offset();
      uint64_t tag;
      if (!c.Varint(&tag)) return d.Fail(at, "truncated or malformed field tag in envelope");
      uint64_t number = tag >> 3;
      uint32_t wire = static_cast<uint32_t>(tag & 7);
      std::string_view sub;
      size_t sub_base;
      if (number >= 1 && number <= 4 && wire == kLen) {
        if (!c.Bytes(&sub, &sub_base)) return d.Fail(at, "length runs past the end");
        if (number == 1) { type_meta = sub; tm_base = sub_base; }
        if (number == 2) { raw = sub; raw_base = sub_base; }
        if (number == 3) encoding = sub;
        continue;
      }
      uint64_t ignored;
      bool ok = wire == kVarint ? c.Varint(&ignored)
                : wire == kFixed64 ? c.Fixed(8, &ignored)
                : wire == kFixed32 ? c.Fixed(4, &ignored)
                : wire == kLen ? c.Bytes(&sub, &sub_base) : false;
      if (!ok) return d.Fail(at, "malformed envelope field");
    }
    if (!encoding.empty())
      return Status(Code::kInvalidArgument, "protobuf body: unsupported contentEncoding \"" +
                                                std::string(encoding.substr(0, 64)) + "\"");
    std::string api_version, kind;
    Cursor tc{type_meta, tm_base, 0};
    while (!tc.done()) {
      size_t at = tc.offset();
      uint64_t tag;
      std::string_view sub;
      size_t sub_base;
      if (!tc.Varint(&tag) || (tag & 7) != kLen || !tc.Bytes(&sub, &sub_base))
        return d.Fail(at, "malformed TypeMeta in envelope");
      if (!ValidUtf8(sub)) return d.Fail(at, "TypeMeta is not valid UTF-8");
      if ((tag >> 3) == 1) api_version.assign(sub);
      if ((tag >> 3) == 2) kind.assign(sub);
    }
    if (api_version.empty() || kind.empty())
      return Status(Code::kInvalidArgument,
                    "protobuf body: the envelope does not name an apiVersion and kind");
    size_t slash = api_version.find('/');
    std::string group = slash == std::string::npos ? "" : api_version.substr(0, slash);
    std::string version = slash == std::string::npos ? api_version : api_version.substr(slash + 1);
    const MessageType* type = schema.ForKind(group, version, kind);
    if (type == nullptr)
      return Status(Code::kInvalidArgument, "protobuf body: no schema for kind \"" + kind +
                                                "\" in \"" + api_version + "\"");
    json out = json::object();
    Status s = d.Message(*type, raw, raw_base, 0, &out);
    if (!s.ok()) return s;
    out["apiVersion"] = api_version;
    out["kind"] = kind;
    return out;
  } catch (const std::exception& e) {
    return Status(Code::kInvalidArgument, std::string("protobuf body: ") + e.what());
  }
}

}  // namespace mk8s::api
