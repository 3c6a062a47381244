// Label and field selectors, as the ?labelSelector= and ?fieldSelector= query parameters use them.
//   labels: "app=web,tier!=db,env in (prod,staging),!legacy,release"
//   fields: "metadata.name=web,spec.nodeName!=,status.phase=Running"
// Parsed once per request; matching is const and thread-safe.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace mk8s::apiserver {

class LabelSelector {
 public:
  enum class Op { kEquals, kNotEquals, kIn, kNotIn, kExists, kDoesNotExist };
  struct Requirement {
    std::string key;
    Op op = Op::kExists;
    std::vector<std::string> values;
  };

  static Result<LabelSelector> Parse(std::string_view text);
  // From a metav1.LabelSelector object ({matchLabels, matchExpressions}).
  static Result<LabelSelector> FromObject(const nlohmann::json& selector);
  bool Empty() const { return requirements_.empty(); }
  // `labels` is an object of string values (or null/absent = no labels).
  bool Matches(const nlohmann::json& labels) const;
  std::string ToString() const;

 private:
  std::vector<Requirement> requirements_;
};

class FieldSelector {
 public:
  struct Requirement {
    std::string field;  // "metadata.name", "spec.nodeName", "involvedObject.uid", ...
    bool equals = true;
    std::string value;
  };
  static Result<FieldSelector> Parse(std::string_view text);
  bool Empty() const { return requirements_.empty(); }
  // Looks the dotted field up in the object; a missing field compares as "".
  bool Matches(const nlohmann::json& object) const;
  // The value required for `field` by an equality requirement, if any (lets a list or watch
  // narrow to one name or namespace).
  const std::string* RequiredValue(std::string_view field) const;

 private:
  std::vector<Requirement> requirements_;
};

}  // namespace mk8s::apiserver
