#include "scheduler/labels.h"

#include <algorithm>
#include <charconv>

namespace mk8s::scheduler {
namespace {

const std::string* StrOrNull(const nlohmann::json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) return nullptr;
  return &it->get_ref<const std::string&>();
}

SelectorOp ParseOp(const std::string* op) {
  if (op == nullptr) return SelectorOp::kInvalid;
  if (*op == "In") return SelectorOp::kIn;
  if (*op == "NotIn") return SelectorOp::kNotIn;
  if (*op == "Exists") return SelectorOp::kExists;
  if (*op == "DoesNotExist") return SelectorOp::kDoesNotExist;
  if (*op == "Gt") return SelectorOp::kGt;
  if (*op == "Lt") return SelectorOp::kLt;
  return SelectorOp::kInvalid;
}

bool ParseInt(std::string_view s, int64_t* out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && p == s.data() + s.size();
}

Requirement ParseRequirement(const nlohmann::json& r) {
  Requirement req;
  if (const std::string* k = StrOrNull(r, "key")) req.key = *k;
  req.op = ParseOp(StrOrNull(r, "operator"));
  auto vals = r.is_object() ? r.find("values") : r.end();
  if (r.is_object() && vals != r.end() && vals->is_array()) {
    for (const auto& v : *vals) {
      if (v.is_string()) req.values.push_back(v.get<std::string>());
    }
  }
  std::sort(req.values.begin(), req.values.end());
  if (req.op == SelectorOp::kGt || req.op == SelectorOp::kLt) {
    if (req.values.size() != 1 || !ParseInt(req.values[0], &req.number)) {
      req.op = SelectorOp::kInvalid;
    }
  }
  return req;
}

bool HasValue(const Requirement& r, const std::string& v) {
  return std::binary_search(r.values.begin(), r.values.end(), v);
}

bool RequirementMatches(const Requirement& r, const std::string* v) {
  switch (r.op) {
    case SelectorOp::kIn:
      return v != nullptr && HasValue(r, *v);
    case SelectorOp::kNotIn:
      return v == nullptr || !HasValue(r, *v);
    case SelectorOp::kExists:
      return v != nullptr;
    case SelectorOp::kDoesNotExist:
      return v == nullptr;
    case SelectorOp::kGt:
    case SelectorOp::kLt: {
      int64_t n = 0;
      if (v == nullptr || !ParseInt(*v, &n)) return false;
      return r.op == SelectorOp::kGt ? n > r.number : n < r.number;
    }
    case SelectorOp::kInvalid:
      return false;
  }
  return false;
}

TaintEffect ParseEffect(const std::string& e) {
  if (e == "NoSchedule") return TaintEffect::kNoSchedule;
  if (e == "PreferNoSchedule") return TaintEffect::kPreferNoSchedule;
  if (e == "NoExecute") return TaintEffect::kNoExecute;
  return TaintEffect::kOther;
}

}  // namespace

Labels Labels::Parse(const nlohmann::json& obj) {
  Labels l;
  if (!obj.is_object()) return l;
  l.items_.reserve(obj.size());
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    if (it.value().is_string()) l.items_.emplace_back(it.key(), it.value().get<std::string>());
  }
  // nlohmann::json objects iterate in key order already; sort anyway for ordered_json inputs.
  std::sort(l.items_.begin(), l.items_.end());
  return l;
}

void Labels::Set(std::string key, std::string value) {
  auto it = std::lower_bound(items_.begin(), items_.end(), key,
                             [](const auto& kv, const std::string& k) { return kv.first < k; });
  if (it != items_.end() && it->first == key) {
    it->second = std::move(value);
  } else {
    items_.emplace(it, std::move(key), std::move(value));
  }
}

const std::string* Labels::Find(std::string_view key) const {
  auto it = std::lower_bound(items_.begin(), items_.end(), key,
                             [](const auto& kv, std::string_view k) { return kv.first < k; });
  if (it != items_.end() && it->first == key) return &it->second;
  return nullptr;
}

LabelSelector LabelSelector::Parse(const nlohmann::json& sel) {
  LabelSelector s;
  if (!sel.is_object()) return s;  // null / absent: matches nothing
  s.null_ = false;
  auto ml = sel.find("matchLabels");
  if (ml != sel.end() && ml->is_object()) {
    for (auto it = ml->begin(); it != ml->end(); ++it) {
      if (!it.value().is_string()) continue;
      s.reqs_.push_back(Requirement{it.key(), SelectorOp::kIn, {it.value().get<std::string>()}, 0});
    }
  }
  auto me = sel.find("matchExpressions");
  if (me != sel.end() && me->is_array()) {
    for (const auto& r : *me) {
      Requirement req = ParseRequirement(r);
      // Label selectors have no Gt/Lt.
      if (req.op == SelectorOp::kGt || req.op == SelectorOp::kLt) req.op = SelectorOp::kInvalid;
      s.reqs_.push_back(std::move(req));
    }
  }
  return s;
}

LabelSelector LabelSelector::Everything() {
  LabelSelector s;
  s.null_ = false;
  return s;
}

void LabelSelector::AddEquals(const std::string& key, const std::string& value) {
  if (null_) return;
  reqs_.push_back(Requirement{key, SelectorOp::kIn, {value}, 0});
}

bool LabelSelector::Matches(const Labels& labels) const {
  if (null_) return false;
  for (const Requirement& r : reqs_) {
    if (!RequirementMatches(r, labels.Find(r.key))) return false;
  }
  return true;
}

NodeSelector::Term NodeSelector::ParseTerm(const nlohmann::json& term) {
  Term t;
  if (!term.is_object()) return t;
  auto me = term.find("matchExpressions");
  if (me != term.end() && me->is_array()) {
    for (const auto& r : *me) t.exprs.push_back(ParseRequirement(r));
  }
  auto mf = term.find("matchFields");
  if (mf != term.end() && mf->is_array()) {
    for (const auto& r : *mf) {
      Requirement req = ParseRequirement(r);
      // Only metadata.name with In/NotIn is a valid field selector.
      if (req.key != "metadata.name" ||
          (req.op != SelectorOp::kIn && req.op != SelectorOp::kNotIn)) {
        req.op = SelectorOp::kInvalid;
      }
      t.fields.push_back(std::move(req));
    }
  }
  return t;
}

bool NodeSelector::Term::Matches(const std::string& node_name, const Labels& node_labels) const {
  if (exprs.empty() && fields.empty()) return false;
  for (const Requirement& r : exprs) {
    if (!RequirementMatches(r, node_labels.Find(r.key))) return false;
  }
  for (const Requirement& r : fields) {
    if (!RequirementMatches(r, &node_name)) return false;
  }
  return true;
}

NodeSelector NodeSelector::Parse(const nlohmann::json& node_selector) {
  NodeSelector ns;
  if (!node_selector.is_object()) return ns;
  auto terms = node_selector.find("nodeSelectorTerms");
  if (terms == node_selector.end() || !terms->is_array()) return ns;
  for (const auto& t : *terms) ns.terms_.push_back(ParseTerm(t));
  return ns;
}

bool NodeSelector::Matches(const std::string& node_name, const Labels& node_labels) const {
  for (const Term& t : terms_) {
    if (t.Matches(node_name, node_labels)) return true;
  }
  return false;
}

Taint Taint::Parse(const nlohmann::json& t) {
  Taint taint;
  if (const std::string* k = StrOrNull(t, "key")) taint.key = *k;
  if (const std::string* v = StrOrNull(t, "value")) taint.value = *v;
  if (const std::string* e = StrOrNull(t, "effect")) taint.effect = ParseEffect(*e);
  return taint;
}

Toleration Toleration::Parse(const nlohmann::json& t) {
  Toleration tol;
  if (const std::string* k = StrOrNull(t, "key")) tol.key = *k;
  if (const std::string* v = StrOrNull(t, "value")) tol.value = *v;
  const std::string* op = StrOrNull(t, "operator");
  tol.exists = op != nullptr && *op == "Exists";
  if (const std::string* e = StrOrNull(t, "effect"); e != nullptr && !e->empty()) {
    tol.effect = ParseEffect(*e);
  }
  return tol;
}

bool Toleration::Tolerates(const Taint& taint) const {
  if (effect.has_value() && *effect != taint.effect) return false;
  // An empty key matches every key (with Exists: tolerates everything).
  if (!key.empty() && key != taint.key) return false;
  return exists || value == taint.value;
}

bool TolerationsTolerate(const std::vector<Toleration>& tols, const Taint& taint) {
  for (const Toleration& t : tols) {
    if (t.Tolerates(taint)) return true;
  }
  return false;
}

}  // namespace mk8s::scheduler
