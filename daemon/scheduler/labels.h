// Parsed label maps and the selectors the scheduler evaluates: label selectors (pods, namespaces),
// node selector terms (node affinity), taints and tolerations.
//
// All types are immutable after Parse*() and safe to read from any thread. Parsing never throws on
// malformed input: unknown operators make a requirement match nothing, as the API server would have
// rejected such an object anyway.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace mk8s::scheduler {

// A label map as a vector sorted by key: compact, cache-friendly, binary-searched.
class Labels {
 public:
  Labels() = default;
  // Reads a JSON object of string values (metadata.labels, spec.nodeSelector); others are skipped.
  static Labels Parse(const nlohmann::json& obj);
  void Set(std::string key, std::string value);
  // Returns the value for `key`, or nullptr.
  const std::string* Find(std::string_view key) const;
  const std::vector<std::pair<std::string, std::string>>& items() const { return items_; }
  bool empty() const { return items_.empty(); }

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

enum class SelectorOp { kIn, kNotIn, kExists, kDoesNotExist, kGt, kLt, kInvalid };

struct Requirement {
  std::string key;
  SelectorOp op = SelectorOp::kInvalid;
  std::vector<std::string> values;  // sorted
  int64_t number = 0;               // Gt/Lt operand
};

// metav1.LabelSelector. A null selector matches nothing; an empty one ({}) matches everything.
class LabelSelector {
 public:
  LabelSelector() = default;  // matches nothing
  static LabelSelector Parse(const nlohmann::json& sel);
  static LabelSelector Everything();
  bool Matches(const Labels& labels) const;
  bool is_null() const { return null_; }
  // Adds `key In (value)`: used for matchLabelKeys of topology spread constraints.
  void AddEquals(const std::string& key, const std::string& value);

 private:
  bool null_ = true;
  std::vector<Requirement> reqs_;
};

// v1.NodeSelector: terms ORed, each term's matchExpressions and matchFields ANDed. A term with no
// requirements matches nothing; an empty term list matches nothing.
class NodeSelector {
 public:
  static NodeSelector Parse(const nlohmann::json& node_selector);
  bool Matches(const std::string& node_name, const Labels& node_labels) const;

  struct Term {
    std::vector<Requirement> exprs;   // over node labels
    std::vector<Requirement> fields;  // over metadata.name only
    bool Matches(const std::string& node_name, const Labels& node_labels) const;
  };
  static Term ParseTerm(const nlohmann::json& term);
  const std::vector<Term>& terms() const { return terms_; }

 private:
  std::vector<Term> terms_;
};

enum class TaintEffect { kNoSchedule, kPreferNoSchedule, kNoExecute, kOther };

struct Taint {
  std::string key;
  std::string value;
  TaintEffect effect = TaintEffect::kOther;
  static Taint Parse(const nlohmann::json& t);
};

struct Toleration {
  std::string key;
  bool exists = false;  // operator Exists (else Equal)
  std::string value;
  std::optional<TaintEffect> effect;  // empty: every effect
  static Toleration Parse(const nlohmann::json& t);
  bool Tolerates(const Taint& taint) const;
};

bool TolerationsTolerate(const std::vector<Toleration>& tols, const Taint& taint);

}  // namespace mk8s::scheduler
