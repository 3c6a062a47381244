// The API schema: one description of every served Kubernetes type (see README.md for the format).
//
// A Schema is parsed from `.schema` texts, linked (every type reference resolved) and then
// immutable, so it may be shared freely between threads. Schema::Builtin() is the schema embedded
// in the binary at build time; protobuf decoding, strict field validation, strategic merge patch
// and the served OpenAPI document are all derived from it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace mk8s::api {

class MessageType;

// What a field holds, element-wise (the container shape is in FieldShape).
enum class ValueKind {
  kString,
  kBool,
  kInt32,
  kInt64,
  kDouble,
  kBytes,        // base64 string in JSON
  kMessage,      // a MessageType (Field::message)
  kTime,         // wire {1: int64 seconds, 2: int32 nanos}; JSON RFC3339 seconds
  kMicroTime,    // same wire; JSON RFC3339 with microseconds
  kDuration,     // wire {1: int64 ns}; JSON Go duration string ("5m0s")
  kQuantity,     // wire {1: string}; JSON string
  kIntOrString,  // wire {1: int64 type, 2: int32 intVal, 3: string strVal}; JSON number or string
  kRawExtension, // wire {1: bytes raw JSON}; JSON embedded value
  kFieldsV1,     // wire {1: bytes raw JSON}; JSON embedded value
};

enum class FieldShape {
  kSingle,
  kList,       // []T; repeated on the wire
  kMap,        // map[string]T; repeated entries {1: key, 2: value} on the wire
  kMapOfList,  // map[string][]T; the value is a wrapper message {1: repeated T} on the wire
};

enum class ListType { kUnset, kAtomic, kSet, kMap };

// Strategic-merge-patch strategy bits (patch=merge,retainKeys sets both).
enum PatchStrategy : uint8_t {
  kPatchNone = 0,
  kPatchMerge = 1,
  kPatchReplace = 2,
  kPatchRetainKeys = 4,
};

struct Field {
  std::string json_name;
  int number = 0;
  FieldShape shape = FieldShape::kSingle;
  ValueKind kind = ValueKind::kString;
  std::string type_name;                 // as written in the schema, e.g. "meta.v1.ObjectMeta"
  const MessageType* message = nullptr;  // set when kind == kMessage (after linking)
  bool required = false;
  bool inlined = false;  // JSON: the message's fields are spliced into the parent object
  std::string merge_key;
  uint8_t patch = kPatchNone;  // PatchStrategy bits
  ListType list_type = ListType::kUnset;
  std::vector<std::string> list_map_keys;
  std::string description;
  int line = 0;  // line in the schema file, for diagnostics
};

class MessageType {
 public:
  const std::string& name() const { return name_; }          // "PodSpec"
  const std::string& package() const { return package_; }    // "core.v1"
  const std::string& full_name() const { return full_name_; }  // "core.v1.PodSpec"
  const std::string& description() const { return description_; }
  const std::string& file() const { return file_; }
  // Fields in declaration order.
  const std::vector<Field>& fields() const { return fields_; }
  // The field with this JSON name, looking through inlined fields too; nullptr if none.
  const Field* FieldByJson(std::string_view json_name) const;
  // The field with this protobuf number (own fields only; inlined ones are nested); or nullptr.
  const Field* FieldByNumber(int number) const;

 private:
  friend class Schema;
  friend class SchemaBuilder;
  std::string name_, package_, full_name_, description_, file_;
  std::vector<Field> fields_;
  std::map<std::string, const Field*, std::less<>> by_json_;  // includes inlined fields
  std::map<int, const Field*> by_number_;
};

// One schema text and the name used in diagnostics ("core_v1.schema").
struct SchemaSource {
  std::string name;
  std::string text;
};

class Schema {
 public:
  Schema();
  ~Schema();
  Schema(Schema&&) noexcept;
  Schema& operator=(Schema&&) noexcept;

  // Parses and links the sources. Errors name "file:line: problem"; all problems found are
  // reported, one per line of the message.
  static Result<Schema> Parse(const std::vector<SchemaSource>& sources);
  // The schema embedded at build time. Parsed once on first use (thread-safe); a broken
  // builtin schema is a build bug and aborts with the parse errors.
  static const Schema& Builtin();

  // "core.v1.Pod", "meta.v1.ObjectMeta"; nullptr if unknown.
  const MessageType* FindMessage(std::string_view qualified) const;
  // Top-level object type for an API group ("" for core), version and kind; nullptr if unknown.
  // Status and DeleteOptions resolve to meta.v1 in every group version.
  const MessageType* ForKind(std::string_view group, std::string_view version,
                             std::string_view kind) const;
  // API group of a package ("apps.v1" -> "apps", "core.v1" -> ""), if the package declares one.
  const std::string* GroupOf(std::string_view package) const;
  // All messages, sorted by full name.
  std::vector<const MessageType*> Messages() const;

 private:
  friend class SchemaBuilder;
  std::vector<std::unique_ptr<MessageType>> messages_;
  std::map<std::string, const MessageType*, std::less<>> by_name_;
  std::map<std::string, std::string, std::less<>> package_group_;  // package -> API group
};

// Canonical spelling of a value kind in the schema format ("string", "Time", ...).
const char* ValueKindName(ValueKind kind);

}  // namespace mk8s::api
