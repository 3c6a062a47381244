#include "apiserver/selectors.h"

#include <algorithm>
#include <cctype>
#include <nlohmann/json.hpp>

namespace mk8s::apiserver {
namespace {

using nlohmann::json;

std::string_view Trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool ValidLabelKeyOrValue(std::string_view s, bool is_key) {
  if (s.size() > (is_key ? 317u : 63u)) return false;  // prefix (253) + '/' + name (63)
  for (char c : s) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.' ||
          (is_key && c == '/'))) {
      return false;
    }
  }
  return !is_key || !s.empty();
}

// Splits on commas that are not inside parentheses.
std::vector<std::string_view> SplitTopLevel(std::string_view text) {
  std::vector<std::string_view> parts;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i <= text.size(); ++i) {
    if (i == text.size() || (text[i] == ',' && depth == 0)) {
      parts.push_back(Trim(text.substr(start, i - start)));
      start = i + 1;
    } else if (text[i] == '(') {
      ++depth;
    } else if (text[i] == ')') {
      --depth;
    }
  }
  return parts;
}

Status Invalid(std::string_view text, std::string_view why) {
  return Status(Code::kInvalidArgument,
                "unable to parse requirement \"" + std::string(text) + "\": " + std::string(why));
}

const json* Lookup(const json& object, std::string_view dotted) {
  const json* node = &object;
  while (!dotted.empty()) {
    const size_t dot = dotted.find('.');
    const std::string part(dotted.substr(0, dot));
    if (!node->is_object()) return nullptr;
    auto it = node->find(part);
    if (it == node->end()) return nullptr;
    node = &*it;
    if (dot == std::string_view::npos) break;
    dotted.remove_prefix(dot + 1);
  }
  return node;
}

std::string AsString(const json* value) {
  if (value == nullptr || value->is_null()) return "";
  if (value->is_string()) return value->get<std::string>();
  if (value->is_boolean()) return value->get<bool>() ? "true" : "false";
  return value->dump();
}

}  // namespace

Result<LabelSelector> LabelSelector::Parse(std::string_view text) {
  LabelSelector selector;
  text = Trim(text);
  if (text.empty()) return selector;
  for (std::string_view part : SplitTopLevel(text)) {
    if (part.empty()) return Invalid(text, "empty requirement");
    Requirement req;
    if (part.front() == '!') {
      req.key = std::string(Trim(part.substr(1)));
      req.op = Op::kDoesNotExist;
    } else if (size_t paren = part.find('('); paren != std::string_view::npos) {
      std::string_view head = Trim(part.substr(0, paren));
      if (part.back() != ')') return Invalid(part, "missing ')'");
      const size_t space = head.find(' ');
      if (space == std::string_view::npos) return Invalid(part, "expected 'in' or 'notin'");
      req.key = std::string(Trim(head.substr(0, space)));
      const std::string_view op = Trim(head.substr(space));
      if (op == "in") {
        req.op = Op::kIn;
      } else if (op == "notin") {
        req.op = Op::kNotIn;
      } else {
        return Invalid(part, "expected 'in' or 'notin'");
      }
      std::string_view inside = part.substr(paren + 1, part.size() - paren - 2);
      size_t start = 0;
      for (size_t i = 0; i <= inside.size(); ++i) {
        if (i == inside.size() || inside[i] == ',') {
          std::string_view value = Trim(inside.substr(start, i - start));
          if (!ValidLabelKeyOrValue(value, false)) return Invalid(part, "invalid value");
          req.values.emplace_back(value);
          start = i + 1;
        }
      }
    } else if (size_t ne = part.find("!="); ne != std::string_view::npos) {
      req.key = std::string(Trim(part.substr(0, ne)));
      req.op = Op::kNotEquals;
      req.values.emplace_back(Trim(part.substr(ne + 2)));
    } else if (size_t eq = part.find('='); eq != std::string_view::npos) {
      req.key = std::string(Trim(part.substr(0, eq)));
      req.op = Op::kEquals;
      std::string_view value = part.substr(eq + 1);
      if (!value.empty() && value.front() == '=') value.remove_prefix(1);  // "=="
      req.values.emplace_back(Trim(value));
    } else {
      req.key = std::string(part);
      req.op = Op::kExists;
    }
    if (!ValidLabelKeyOrValue(req.key, true)) return Invalid(part, "invalid label key");
    for (const auto& value : req.values) {
      if (!ValidLabelKeyOrValue(value, false)) return Invalid(part, "invalid label value");
    }
    selector.requirements_.push_back(std::move(req));
  }
  return selector;
}

Result<LabelSelector> LabelSelector::FromObject(const json& object) {
  LabelSelector selector;
  if (!object.is_object()) return selector;
  if (auto labels = object.find("matchLabels"); labels != object.end() && labels->is_object()) {
    for (const auto& [key, value] : labels->items()) {
      if (!value.is_string()) return Status(Code::kInvalidArgument, "matchLabels values must be strings");
      selector.requirements_.push_back({key, Op::kEquals, {value.get<std::string>()}});
    }
  }
  if (auto exprs = object.find("matchExpressions"); exprs != object.end() && exprs->is_array()) {
    for (const auto& expr : *exprs) {
      Requirement req;
      req.key = expr.value("key", "");
      const std::string op = expr.value("operator", "");
      if (op == "In") {
        req.op = Op::kIn;
      } else if (op == "NotIn") {
        req.op = Op::kNotIn;
      } else if (op == "Exists") {
        req.op = Op::kExists;
      } else if (op == "DoesNotExist") {
        req.op = Op::kDoesNotExist;
      } else {
        return Status(Code::kInvalidArgument, "\"" + op + "\" is not a valid label selector operator");
      }
      if (auto values = expr.find("values"); values != expr.end() && values->is_array()) {
        for (const auto& v : *values) {
          if (v.is_string()) req.values.push_back(v.get<std::string>());
        }
      }
      selector.requirements_.push_back(std::move(req));
    }
  }
  return selector;
}

bool LabelSelector::Matches(const json& labels) const {
  for (const Requirement& req : requirements_) {
    const json* value = nullptr;
    if (labels.is_object()) {
      auto it = labels.find(req.key);
      if (it != labels.end() && it->is_string()) value = &*it;
    }
    const bool present = value != nullptr;
    const std::string actual = present ? value->get<std::string>() : "";
    const bool in_values =
        present && std::find(req.values.begin(), req.values.end(), actual) != req.values.end();
    switch (req.op) {
      case Op::kEquals:
      case Op::kIn:
        if (!in_values) return false;
        break;
      case Op::kNotEquals:
      case Op::kNotIn:
        if (in_values) return false;
        break;
      case Op::kExists:
        if (!present) return false;
        break;
      case Op::kDoesNotExist:
        if (present) return false;
        break;
    }
  }
  return true;
}

std::string LabelSelector::ToString() const {
  std::string out;
  for (const Requirement& req : requirements_) {
    if (!out.empty()) out += ",";
    auto joined = [&] {
      std::string v;
      for (size_t i = 0; i < req.values.size(); ++i) v += (i ? "," : "") + req.values[i];
      return v;
    };
    switch (req.op) {
      case Op::kEquals: out += req.key + "=" + joined(); break;
      case Op::kNotEquals: out += req.key + "!=" + joined(); break;
      case Op::kIn: out += req.key + " in (" + joined() + ")"; break;
      case Op::kNotIn: out += req.key + " notin (" + joined() + ")"; break;
      case Op::kExists: out += req.key; break;
      case Op::kDoesNotExist: out += "!" + req.key; break;
    }
  }
  return out;
}

Result<FieldSelector> FieldSelector::Parse(std::string_view text) {
  FieldSelector selector;
  text = Trim(text);
  if (text.empty()) return selector;
  for (std::string_view part : SplitTopLevel(text)) {
    Requirement req;
    size_t op = part.find("!=");
    size_t value_at = 0;
    if (op != std::string_view::npos) {
      req.equals = false;
      value_at = op + 2;
    } else if ((op = part.find("==")) != std::string_view::npos) {
      value_at = op + 2;
    } else if ((op = part.find('=')) != std::string_view::npos) {
      value_at = op + 1;
    } else {
      return Status(Code::kInvalidArgument,
                    "invalid field selector \"" + std::string(part) + "\": expected field=value");
    }
    req.field = std::string(Trim(part.substr(0, op)));
    req.value = std::string(Trim(part.substr(value_at)));
    if (req.field.empty()) {
      return Status(Code::kInvalidArgument, "invalid field selector \"" + std::string(part) + "\"");
    }
    selector.requirements_.push_back(std::move(req));
  }
  return selector;
}

bool FieldSelector::Matches(const json& object) const {
  for (const Requirement& req : requirements_) {
    const bool equal = AsString(Lookup(object, req.field)) == req.value;
    if (equal != req.equals) return false;
  }
  return true;
}

const std::string* FieldSelector::RequiredValue(std::string_view field) const {
  for (const Requirement& req : requirements_) {
    if (req.equals && req.field == field) return &req.value;
  }
  return nullptr;
}

}  // namespace mk8s::apiserver
