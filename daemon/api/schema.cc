// Parser and linker for the schema format described in README.md.
#include "api/schema.h"

#include <cstdio>
#include <cstdlib>
#include <set>
#include <sstream>
#include <utility>

#include "api/embedded_schema.h"

namespace mk8s::api {
namespace {

struct Special {
  const char* name;
  ValueKind kind;
};
constexpr Special kScalars[] = {
    {"string", ValueKind::kString},         {"bool", ValueKind::kBool},
    {"int32", ValueKind::kInt32},           {"int64", ValueKind::kInt64},
    {"double", ValueKind::kDouble},         {"bytes", ValueKind::kBytes},
    {"Time", ValueKind::kTime},             {"MicroTime", ValueKind::kMicroTime},
    {"Duration", ValueKind::kDuration},     {"Quantity", ValueKind::kQuantity},
    {"IntOrString", ValueKind::kIntOrString}, {"RawExtension", ValueKind::kRawExtension},
    {"FieldsV1", ValueKind::kFieldsV1},
};

bool LookupScalar(std::string_view name, ValueKind* kind) {
  for (const Special& s : kScalars) {
    if (name == s.name) {
      *kind = s.kind;
      return true;
    }
  }
  return false;
}

bool IsIdentifier(std::string_view s, bool allow_dots) {
  if (s.empty()) return false;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || (allow_dots && (c == '.' || c == '-'));
    if (!ok) return false;
  }
  return true;
}

std::vector<std::string> SplitComma(std::string_view s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    if (comma == std::string_view::npos) comma = s.size();
    out.emplace_back(s.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

// Splits a line into whitespace-separated tokens; a trailing "quoted text" (backslash escapes
// allowed) becomes *description. Returns false with *error set on a malformed line.
bool Tokenize(std::string_view line, std::vector<std::string>* tokens, std::string* description,
              bool* has_description, std::string* error) {
  size_t i = 0;
  *has_description = false;
  while (i < line.size()) {
    char c = line[i];
    if (c == ' ' || c == '\t' || c == '\r') {
      ++i;
      continue;
    }
    if (c == '#') break;
    if (c == '"') {
      std::string text;
      ++i;
      bool closed = false;
      while (i < line.size()) {
        char d = line[i++];
        if (d == '\\' && i < line.size()) {
          text.push_back(line[i++]);
        } else if (d == '"') {
          closed = true;
          break;
        } else {
          text.push_back(d);
        }
      }
      if (!closed) {
        *error = "unterminated description string";
        return false;
      }
      while (i < line.size() && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r')) ++i;
      if (i < line.size() && line[i] != '#') {
        *error = "text after the description string";
        return false;
      }
      *description = std::move(text);
      *has_description = true;
      return true;
    }
    size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t' && line[i] != '\r' &&
           line[i] != '"')
      ++i;
    tokens->emplace_back(line.substr(start, i - start));
  }
  return true;
}

}  // namespace

// Builds a Schema: parse every source, then link. Collects all errors rather than stopping at one.
class SchemaBuilder {
 public:
  void ParseSource(const SchemaSource& src) {
    std::string package;
    MessageType* current = nullptr;
    std::istringstream in(src.text);
    std::string line;
    int line_no = 0;
    while (std::getline(in, line)) {
      ++line_no;
      std::vector<std::string> tokens;
      std::string description, error;
      bool has_description = false;
      if (!Tokenize(line, &tokens, &description, &has_description, &error)) {
        Error(src.name, line_no, error);
        continue;
      }
      if (tokens.empty()) {
        if (has_description) Error(src.name, line_no, "description without a declaration");
        continue;
      }
      bool indented = !line.empty() && (line[0] == ' ' || line[0] == '\t');
      if (indented) {
        if (current == nullptr) {
          Error(src.name, line_no, "field line outside a message: " + tokens[0]);
        } else {
          ParseField(src.name, line_no, tokens, description, current);
        }
        continue;
      }
      if (tokens[0] == "package") {
        if (tokens.size() < 2 || tokens.size() > 3 || has_description ||
            !IsIdentifier(tokens[1], true)) {
          Error(src.name, line_no, "expected: package <name> [<api group>|-]");
          continue;
        }
        package = tokens[1];
        current = nullptr;
        if (tokens.size() == 3) {
          std::string group = tokens[2] == "-" ? "" : tokens[2];
          auto [it, inserted] = schema_.package_group_.emplace(package, group);
          if (!inserted && it->second != group)
            Error(src.name, line_no, "package " + package + " declared with two API groups");
        }
        continue;
      }
      if (tokens[0] == "message") {
        current = nullptr;
        if (package.empty()) {
          Error(src.name, line_no, "message before any package line");
          continue;
        }
        if (tokens.size() != 2 || !IsIdentifier(tokens[1], false)) {
          Error(src.name, line_no, "expected: message <Name> [\"description\"]");
          continue;
        }
        auto msg = std::make_unique<MessageType>();
        msg->name_ = tokens[1];
        msg->package_ = package;
        msg->full_name_ = package + "." + tokens[1];
        msg->description_ = description;
        msg->file_ = src.name;
        if (schema_.by_name_.count(msg->full_name_)) {
          Error(src.name, line_no, "message " + msg->full_name_ + " defined twice");
          continue;
        }
        current = msg.get();
        schema_.by_name_.emplace(msg->full_name_, msg.get());
        schema_.messages_.push_back(std::move(msg));
        continue;
      }
      Error(src.name, line_no, "expected package or message at the start of the line: " +
                                   tokens[0]);
    }
  }

  void ParseField(const std::string& file, int line_no, const std::vector<std::string>& tokens,
                  const std::string& description, MessageType* msg) {
    if (tokens.size() < 3) {
      Error(file, line_no, "expected: <jsonName> <number> <type> [attributes] [\"description\"]");
      return;
    }
    Field f;
    f.json_name = tokens[0];
    f.line = line_no;
    f.description = description;
    if (!IsIdentifier(f.json_name, false)) {
      Error(file, line_no, "bad field name '" + f.json_name + "'");
      return;
    }
    char* end = nullptr;
    long number = std::strtol(tokens[1].c_str(), &end, 10);
    if (end == tokens[1].c_str() || *end != '\0' || number < 1 || number > 536870911) {
      Error(file, line_no, "bad field number '" + tokens[1] + "'");
      return;
    }
    f.number = static_cast<int>(number);
    std::string_view type = tokens[2];
    if (type.rfind("map[string][]", 0) == 0) {
      f.shape = FieldShape::kMapOfList;
      type.remove_prefix(13);
    } else if (type.rfind("map[string]", 0) == 0) {
      f.shape = FieldShape::kMap;
      type.remove_prefix(11);
    } else if (type.rfind("[]", 0) == 0) {
      f.shape = FieldShape::kList;
      type.remove_prefix(2);
    }
    if (!IsIdentifier(type, true)) {
      Error(file, line_no, "bad type '" + tokens[2] + "'");
      return;
    }
    f.type_name = std::string(type);
    if (!LookupScalar(type, &f.kind)) f.kind = ValueKind::kMessage;
    for (size_t i = 3; i < tokens.size(); ++i) {
      if (!ParseAttribute(file, line_no, tokens[i], &f)) return;
    }
    msg->fields_.push_back(std::move(f));
  }

  bool ParseAttribute(const std::string& file, int line_no, const std::string& attr, Field* f) {
    size_t eq = attr.find('=');
    std::string key = attr.substr(0, eq);
    std::string value = eq == std::string::npos ? "" : attr.substr(eq + 1);
    bool has_value = eq != std::string::npos && !value.empty();
    if (key == "required" && eq == std::string::npos) {
      f->required = true;
    } else if (key == "inline" && eq == std::string::npos) {
      f->inlined = true;
    } else if (key == "mergeKey" && has_value) {
      f->merge_key = value;
    } else if (key == "patch" && has_value) {
      for (const std::string& s : SplitComma(value)) {
        if (s == "merge") f->patch |= kPatchMerge;
        else if (s == "replace") f->patch |= kPatchReplace;
        else if (s == "retainKeys") f->patch |= kPatchRetainKeys;
        else {
          Error(file, line_no, "unknown patch strategy '" + s + "'");
          return false;
        }
      }
    } else if (key == "listType" && has_value) {
      if (value == "atomic") f->list_type = ListType::kAtomic;
      else if (value == "set") f->list_type = ListType::kSet;
      else if (value == "map") f->list_type = ListType::kMap;
      else {
        Error(file, line_no, "unknown listType '" + value + "'");
        return false;
      }
    } else if (key == "listMapKeys" && has_value) {
      f->list_map_keys = SplitComma(value);
    } else {
      Error(file, line_no, "unknown attribute '" + attr + "'");
      return false;
    }
    return true;
  }

  // Resolves message references and builds the lookup tables. Inlined fields are resolved
  // recursively, so links happen in dependency order with cycle detection.
  void Link() {
    for (auto& msg : schema_.messages_) {
      for (Field& f : msg->fields_) {
        if (f.kind != ValueKind::kMessage) continue;
        std::string qualified = f.type_name.find('.') == std::string::npos
                                    ? msg->package_ + "." + f.type_name
                                    : f.type_name;
        auto it = schema_.by_name_.find(qualified);
        if (it == schema_.by_name_.end()) {
          Error(msg->file_, f.line, "unknown type " + f.type_name + " (looked for " + qualified +
                                        ") in " + msg->full_name_ + "." + f.json_name);
          continue;
        }
        f.message = it->second;
      }
    }
    for (auto& msg : schema_.messages_) {
      std::set<const MessageType*> visiting;
      AddJsonNames(msg.get(), *msg, &visiting);
    }
    for (auto& msg : schema_.messages_) CheckFields(*msg);
  }

  void CheckFields(MessageType& msg) {
    for (const Field& f : msg.fields_) {
      auto where = [&](const std::string& what) {
        Error(msg.file_, f.line, msg.full_name_ + "." + f.json_name + ": " + what);
      };
      if (!msg.by_number_.emplace(f.number, &f).second)
        where("field number " + std::to_string(f.number) + " used twice");
      bool is_list = f.shape == FieldShape::kList;
      if (!f.merge_key.empty() && !(is_list && f.kind == ValueKind::kMessage))
        where("mergeKey needs a list of messages");
      if ((f.patch & kPatchMerge) && !is_list && f.kind != ValueKind::kMessage)
        where("patch=merge needs a list");
      if (f.list_type != ListType::kUnset && !is_list) where("listType needs a list");
      if (!f.list_map_keys.empty() && f.list_type != ListType::kMap)
        where("listMapKeys needs listType=map");
      if (f.inlined && (f.kind != ValueKind::kMessage || f.shape != FieldShape::kSingle))
        where("inline needs a single message");
      if (f.message != nullptr && !f.merge_key.empty() &&
          f.message->FieldByJson(f.merge_key) == nullptr)
        where("mergeKey " + f.merge_key + " is not a field of " + f.message->full_name_);
    }
  }

  // Adds the JSON names of `source` (and, through inline fields, of the messages it inlines)
  // to target.by_json_.
  void AddJsonNames(MessageType* target, const MessageType& source,
                    std::set<const MessageType*>* visiting) {
    if (!visiting->insert(&source).second) {
      Error(source.file_, 0, "inline cycle through " + source.full_name_);
      return;
    }
    for (const Field& f : source.fields_) {
      if (f.inlined) {
        if (f.message != nullptr) AddJsonNames(target, *f.message, visiting);
        continue;
      }
      if (!target->by_json_.emplace(f.json_name, &f).second)
        Error(source.file_, f.line, target->full_name_ + ": JSON name " + f.json_name +
                                        " used twice");
    }
    visiting->erase(&source);
  }

  void Error(const std::string& file, int line, const std::string& what) {
    errors_ += file + ":" + std::to_string(line) + ": " + what + "\n";
  }

  Result<Schema> Finish() {
    if (!errors_.empty()) {
      errors_.pop_back();
      return Status(Code::kInvalidArgument, errors_);
    }
    return std::move(schema_);
  }

 private:
  Schema schema_;
  std::string errors_;
};

const Field* MessageType::FieldByJson(std::string_view json_name) const {
  auto it = by_json_.find(json_name);
  return it == by_json_.end() ? nullptr : it->second;
}

const Field* MessageType::FieldByNumber(int number) const {
  auto it = by_number_.find(number);
  return it == by_number_.end() ? nullptr : it->second;
}

Schema::Schema() = default;
Schema::~Schema() = default;
Schema::Schema(Schema&&) noexcept = default;
Schema& Schema::operator=(Schema&&) noexcept = default;

Result<Schema> Schema::Parse(const std::vector<SchemaSource>& sources) {
  SchemaBuilder builder;
  for (const SchemaSource& src : sources) builder.ParseSource(src);
  builder.Link();
  return builder.Finish();
}

const Schema& Schema::Builtin() {
  static const Schema* const kBuiltin = [] {
    std::vector<SchemaSource> sources;
    for (size_t i = 0; i < internal::kEmbeddedSchemaCount; ++i) {
      const internal::EmbeddedSchemaFile& f = internal::kEmbeddedSchemas[i];
      sources.push_back({f.name, std::string(f.data, f.size)});
    }
    Result<Schema> parsed = Parse(sources);
    if (!parsed.ok()) {
      std::fprintf(stderr, "mk8s: the builtin API schema is broken:\n%s\n",
                   parsed.status().message().c_str());
      std::abort();
    }
    return new Schema(std::move(parsed).value());
  }();
  return *kBuiltin;
}

const MessageType* Schema::FindMessage(std::string_view qualified) const {
  auto it = by_name_.find(qualified);
  return it == by_name_.end() ? nullptr : it->second;
}

const MessageType* Schema::ForKind(std::string_view group, std::string_view version,
                                   std::string_view kind) const {
  for (const auto& [package, pkg_group] : package_group_) {
    if (pkg_group != group) continue;
    size_t dot = package.rfind('.');
    if (dot == std::string::npos || std::string_view(package).substr(dot + 1) != version) continue;
    std::string name = package + "." + std::string(kind);
    if (const MessageType* m = FindMessage(name)) return m;
  }
  if (kind == "Status" || kind == "DeleteOptions") {
    return FindMessage("meta.v1." + std::string(kind));
  }
  return nullptr;
}

const std::string* Schema::GroupOf(std::string_view package) const {
  auto it = package_group_.find(package);
  return it == package_group_.end() ? nullptr : &it->second;
}

std::vector<const MessageType*> Schema::Messages() const {
  std::vector<const MessageType*> out;
  for (const auto& [name, msg] : by_name_) out.push_back(msg);
  return out;
}

const char* ValueKindName(ValueKind kind) {
  if (kind == ValueKind::kMessage) return "message";
  for (const Special& s : kScalars) {
    if (s.kind == kind) return s.name;
  }
  return "?";
}

}  // namespace mk8s::api
