// Test-only protobuf encoder for hand-building Kubernetes protobuf bodies.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mk8s::api::testing {

class Pb {
 public:
  Pb& Varint(int field, uint64_t v) {
    Tag(field, 0);
    PutVarint(v);
    return *this;
  }
  Pb& Str(int field, std::string_view s) {
    Tag(field, 2);
    PutVarint(s.size());
    out_.append(s);
    return *this;
  }
  Pb& Msg(int field, const Pb& m) { return Str(field, m.out_); }
  Pb& Fixed64(int field, uint64_t v) {
    Tag(field, 1);
    for (int i = 0; i < 8; ++i) out_.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
    return *this;
  }
  // A map<string,string> entry.
  Pb& Entry(int field, std::string_view key, std::string_view value) {
    return Msg(field, Pb().Str(1, key).Str(2, value));
  }
  Pb& EntryMsg(int field, std::string_view key, const Pb& value) {
    return Msg(field, Pb().Str(1, key).Msg(2, value));
  }
  const std::string& bytes() const { return out_; }

  // magic + runtime.Unknown{TypeMeta{apiVersion, kind}, raw, "", ""} as client-go writes it.
  static std::string Body(std::string_view api_version, std::string_view kind, const Pb& obj) {
    Pb unknown;
    unknown.Msg(1, Pb().Str(1, api_version).Str(2, kind)).Msg(2, obj).Str(3, "").Str(4, "");
    return std::string("k8s\0", 4) + unknown.out_;
  }

 private:
  void Tag(int field, int wire) { PutVarint((static_cast<uint64_t>(field) << 3) | wire); }
  void PutVarint(uint64_t v) {
    while (v >= 0x80) {
      out_.push_back(static_cast<char>((v & 0x7f) | 0x80));
      v >>= 7;
    }
    out_.push_back(static_cast<char>(v));
  }
  std::string out_;
};

}  // namespace mk8s::api::testing
