// SAX-driven strict field validation. See field_validation.h for the contract.
#include "api/field_validation.h"

#include <set>
#include <utility>

#include <nlohmann/json.hpp>

namespace mk8s::api {
namespace {

using nlohmann::json;

// What the JSON value about to be parsed is expected to be.
struct Expect {
  enum What { kAny, kScalar, kMessage, kMap, kList } what = kAny;
  const MessageType* message = nullptr;  // kMessage
  const Field* field = nullptr;          // kMap / kList: the field they belong to
  bool map_of_list = false;              // kMap whose values are lists
};

Expect ElementOf(const Field& f) {
  Expect e;
  if (f.kind == ValueKind::kMessage) {
    e.what = Expect::kMessage;
    e.message = f.message;
  } else if (f.kind == ValueKind::kRawExtension || f.kind == ValueKind::kFieldsV1) {
    e.what = Expect::kAny;
  } else {
    e.what = Expect::kScalar;
  }
  return e;
}

Expect ValueOf(const Field& f) {
  Expect e;
  e.field = &f;
  switch (f.shape) {
    case FieldShape::kList: e.what = Expect::kList; return e;
    case FieldShape::kMap: e.what = Expect::kMap; return e;
    case FieldShape::kMapOfList:
      e.what = Expect::kMap;
      e.map_of_list = true;
      return e;
    case FieldShape::kSingle: break;
  }
  return ElementOf(f);
}

struct Frame {
  bool is_array = false;
  Expect expect;      // kMessage/kMap/kList when checked; kAny for free-form or mistyped values
  std::string path;   // only maintained for checked frames
  std::set<std::string, std::less<>> keys;
  size_t index = 0;   // arrays: index of the next element
};

class StrictSax : public nlohmann::json_sax<json> {
 public:
  explicit StrictSax(const MessageType& root) {
    next_.what = Expect::kMessage;
    next_.message = &root;
  }

  bool null() override { return Scalar(); }
  bool boolean(bool) override { return Scalar(); }
  bool number_integer(number_integer_t) override { return Scalar(); }
  bool number_unsigned(number_unsigned_t) override { return Scalar(); }
  bool number_float(number_float_t, const string_t&) override { return Scalar(); }
  bool string(string_t&) override { return Scalar(); }
  bool binary(binary_t&) override { return Scalar(); }

  bool start_object(std::size_t) override {
    BeginValue();
    Frame f;
    f.expect = next_;
    if (f.expect.what != Expect::kMessage && f.expect.what != Expect::kMap) f.expect = Expect();
    if (f.expect.what != Expect::kAny) f.path = std::move(next_path_);
    if (stack_.empty()) top_level_ = true;
    stack_.push_back(std::move(f));
    return true;
  }

  bool key(string_t& k) override {
    Frame& top = stack_.back();
    next_ = Expect();
    next_path_.clear();
    if (top.expect.what == Expect::kAny) return true;
    next_path_ = top.path.empty() ? k : top.path + "." + k;
    if (!top.keys.insert(k).second) problems_.push_back("duplicate field \"" + next_path_ + "\"");
    if (top.expect.what == Expect::kMap) {
      const Field& f = *top.expect.field;
      if (top.expect.map_of_list) {
        next_.what = Expect::kList;
        next_.field = &f;
      } else {
        next_ = ElementOf(f);
      }
      return true;
    }
    // A message.
    if (stack_.size() == 1 && (k == "apiVersion" || k == "kind")) {
      next_.what = Expect::kScalar;
      return true;
    }
    const Field* f = top.expect.message->FieldByJson(k);
    if (f == nullptr) {
      problems_.push_back("unknown field \"" + next_path_ + "\"");
      return true;
    }
    next_ = ValueOf(*f);
    return true;
  }

  bool end_object() override {
    stack_.pop_back();
    return true;
  }

  bool start_array(std::size_t) override {
    BeginValue();
    Frame f;
    f.is_array = true;
    f.expect = next_.what == Expect::kList ? next_ : Expect();
    if (f.expect.what != Expect::kAny) f.path = std::move(next_path_);
    stack_.push_back(std::move(f));
    return true;
  }

  bool end_array() override {
    stack_.pop_back();
    return true;
  }

  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& ex) override {
    error_ = "request body is not valid JSON at byte " + std::to_string(position) + ": " +
             ex.what();
    return false;
  }

  bool top_level_object() const { return top_level_; }
  const std::string& error() const { return error_; }
  std::vector<std::string>& problems() { return problems_; }

 private:
  // Called at the start of every value: inside an array, computes the element's expectation.
  void BeginValue() {
    if (stack_.empty() || !stack_.back().is_array) return;
    Frame& top = stack_.back();
    size_t i = top.index++;
    next_ = Expect();
    next_path_.clear();
    if (top.expect.what != Expect::kList) return;
    next_ = ElementOf(*top.expect.field);
    next_path_ = top.path + "[" + std::to_string(i) + "]";
  }
  bool Scalar() {
    BeginValue();
    return true;
  }

  std::vector<Frame> stack_;
  Expect next_;
  std::string next_path_;
  bool top_level_ = false;
  std::vector<std::string> problems_;
  std::string error_;
};

}  // namespace

Result<std::vector<std::string>> StrictFieldProblems(std::string_view json_body,
                                                     const MessageType& type) {
  try {
    StrictSax sax(type);
    bool ok = json::sax_parse(json_body.begin(), json_body.end(), &sax);
    if (!ok || !sax.error().empty()) {
      return Status(Code::kInvalidArgument,
                    sax.error().empty() ? "request body is not valid JSON" : sax.error());
    }
    if (!sax.top_level_object())
      return Status(Code::kInvalidArgument, "request body must be a JSON object");
    return std::move(sax.problems());
  } catch (const std::exception& e) {
    return Status(Code::kInvalidArgument, std::string("request body is not valid JSON: ") +
                                              e.what());
  }
}

Result<std::vector<std::string>> StrictFieldProblems(std::string_view json_body,
                                                     std::string_view group,
                                                     std::string_view version,
                                                     std::string_view kind,
                                                     const Schema& schema) {
  const MessageType* type = schema.ForKind(group, version, kind);
  if (type == nullptr) {
    std::string gv = group.empty() ? std::string(version)
                                   : std::string(group) + "/" + std::string(version);
    return Status(Code::kNotFound, "no schema for kind \"" + std::string(kind) + "\" in \"" + gv +
                                       "\"");
  }
  return StrictFieldProblems(json_body, *type);
}

}  // namespace mk8s::api
