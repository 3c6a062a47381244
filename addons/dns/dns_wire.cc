#include "dns_wire.h"

#include <arpa/inet.h>

#include <cstring>

namespace mk8s::dns {
namespace {

constexpr size_t kMinQuestion = 5;  // root name + type + class
constexpr size_t kMinRecord = 11;   // root name + type + class + ttl + rdlength
constexpr int kMaxJumps = 127;

class Reader {
 public:
  Reader(std::span<const uint8_t> wire, std::string* error) : wire_(wire), error_(error) {}

  bool Fail(const char* why) {
    if (error_ != nullptr && error_->empty()) *error_ = why;
    return false;
  }
  size_t pos() const { return pos_; }
  size_t remaining() const { return wire_.size() - pos_; }

  bool U16(uint16_t* v) {
    if (remaining() < 2) return Fail("message truncated");
    *v = static_cast<uint16_t>(wire_[pos_] << 8 | wire_[pos_ + 1]);
    pos_ += 2;
    return true;
  }
  bool U32(uint32_t* v) {
    uint16_t hi = 0, lo = 0;
    if (!U16(&hi) || !U16(&lo)) return false;
    *v = static_cast<uint32_t>(hi) << 16 | lo;
    return true;
  }

  // Reads a possibly compressed name at the cursor and moves past its in-place bytes.
  bool Name(Labels* out) {
    out->clear();
    size_t p = pos_;
    size_t segment_start = pos_;  // a pointer must land strictly before this
    size_t end = 0;
    bool jumped = false;
    size_t wire_length = 0;
    int jumps = 0;
    while (true) {
      if (p >= wire_.size()) return Fail("name runs past the end of the message");
      const uint8_t length = wire_[p];
      if ((length & 0xC0) == 0xC0) {
        if (p + 1 >= wire_.size()) return Fail("truncated compression pointer");
        const size_t target = static_cast<size_t>(length & 0x3F) << 8 | wire_[p + 1];
        if (target >= segment_start) return Fail("compression pointer does not point backwards");
        if (++jumps > kMaxJumps) return Fail("too many compression pointers");
        if (!jumped) end = p + 2;
        jumped = true;
        segment_start = target;
        p = target;
        continue;
      }
      if ((length & 0xC0) != 0) return Fail("reserved label type");
      wire_length += length + 1u;
      if (wire_length > kMaxNameWire) return Fail("name longer than 255 bytes");
      if (length == 0) {
        if (!jumped) end = p + 1;
        break;
      }
      if (p + 1 + length > wire_.size()) return Fail("label runs past the end of the message");
      out->emplace_back(reinterpret_cast<const char*>(&wire_[p + 1]), length);
      p += 1 + length;
    }
    pos_ = end;
    return true;
  }

  bool Skip(size_t n) {
    if (remaining() < n) return Fail("record data runs past the end of the message");
    pos_ += n;
    return true;
  }

 private:
  std::span<const uint8_t> wire_;
  std::string* error_;
  size_t pos_ = 0;
};

bool ReadRecords(Reader& reader, uint16_t count, std::vector<Record>* out) {
  out->reserve(count);
  for (uint16_t i = 0; i < count; ++i) {
    Record record;
    if (!reader.Name(&record.name) || !reader.U16(&record.type) || !reader.U16(&record.klass)) {
      return false;
    }
    record.ttl_offset = reader.pos();
    if (!reader.U32(&record.ttl) || !reader.U16(&record.rdlength)) return false;
    record.rdata_offset = reader.pos();
    if (!reader.Skip(record.rdlength)) return false;
    out->push_back(std::move(record));
  }
  return true;
}

}  // namespace

std::string ToLower(std::string_view text) {
  std::string out(text);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

std::optional<Labels> SplitName(std::string_view dotted) {
  Labels labels;
  if (!dotted.empty() && dotted.back() == '.') dotted.remove_suffix(1);
  if (dotted.empty()) return labels;
  size_t wire_length = 1;
  size_t start = 0;
  while (true) {
    const size_t dot = dotted.find('.', start);
    const std::string_view label =
        dotted.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (label.empty() || label.size() > kMaxLabel) return std::nullopt;
    wire_length += label.size() + 1;
    if (wire_length > kMaxNameWire) return std::nullopt;
    labels.emplace_back(label);
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  return labels;
}

std::string LookupKey(const Labels& labels) {
  std::string key;
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) key.push_back('.');
    for (char c : labels[i]) {
      if (c == '.' || c == '\\') key.push_back('\\');
      key.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
    }
  }
  return key;
}

std::optional<Message> Parse(std::span<const uint8_t> wire, std::string* error,
                             std::optional<Header>* header_out) {
  Reader reader(wire, error);
  Message message;
  Header& h = message.header;
  if (wire.size() < kHeaderSize) {
    reader.Fail("shorter than a DNS header");
    return std::nullopt;
  }
  reader.U16(&h.id);
  reader.U16(&h.flags);
  reader.U16(&h.qdcount);
  reader.U16(&h.ancount);
  reader.U16(&h.nscount);
  reader.U16(&h.arcount);
  if (header_out != nullptr) *header_out = h;
  const size_t records = static_cast<size_t>(h.ancount) + h.nscount + h.arcount;
  if (h.qdcount * kMinQuestion + records * kMinRecord > reader.remaining()) {
    reader.Fail("section counts exceed the message size");
    return std::nullopt;
  }
  message.questions.reserve(h.qdcount);
  for (uint16_t i = 0; i < h.qdcount; ++i) {
    Question q;
    if (!reader.Name(&q.name) || !reader.U16(&q.type) || !reader.U16(&q.klass)) {
      return std::nullopt;
    }
    message.questions.push_back(std::move(q));
  }
  if (!ReadRecords(reader, h.ancount, &message.answers) ||
      !ReadRecords(reader, h.nscount, &message.authority) ||
      !ReadRecords(reader, h.arcount, &message.additional)) {
    return std::nullopt;
  }
  for (const Record& record : message.additional) {
    if (record.type != kTypeOPT) continue;
    if (message.edns.has_value()) {
      reader.Fail("more than one OPT record");
      return std::nullopt;
    }
    if (!record.name.empty()) {
      reader.Fail("OPT record with a non-root owner");
      return std::nullopt;
    }
    Edns edns;
    edns.udp_size = record.klass < kClassicUdpSize ? kClassicUdpSize : record.klass;
    edns.version = static_cast<uint8_t>(record.ttl >> 16);
    edns.dnssec_ok = (record.ttl & 0x8000) != 0;
    message.edns = edns;
  }
  // Trailing garbage after the counted sections is tolerated (as most servers do).
  return message;
}

// ---------------------------------------------------------------- Writer

void Writer::U16(uint16_t v) {
  out_.push_back(static_cast<uint8_t>(v >> 8));
  out_.push_back(static_cast<uint8_t>(v));
}

void Writer::U32(uint32_t v) {
  U16(static_cast<uint16_t>(v >> 16));
  U16(static_cast<uint16_t>(v));
}

void Writer::Name(const Labels& labels) {
  for (size_t i = 0; i < labels.size(); ++i) {
    const std::string key = LookupKey(Labels(labels.begin() + i, labels.end()));
    if (auto it = suffixes_.find(key); it != suffixes_.end()) {
      U16(static_cast<uint16_t>(0xC000 | it->second));
      return;
    }
    if (out_.size() < 0x3FFF) suffixes_.emplace(key, static_cast<uint16_t>(out_.size()));
    U8(static_cast<uint8_t>(labels[i].size()));
    out_.insert(out_.end(), labels[i].begin(), labels[i].end());
  }
  U8(0);
}

void Writer::WriteHeader(const Header& header) {
  out_.clear();
  suffixes_.clear();
  U16(header.id);
  U16(header.flags);
  U16(header.qdcount);
  U16(header.ancount);
  U16(header.nscount);
  U16(header.arcount);
}

void Writer::WriteQuestion(const Question& question) {
  Name(question.name);
  U16(question.type);
  U16(question.klass);
}

void Writer::WriteRr(const Rr& rr) {
  const std::optional<Labels> owner = SplitName(rr.owner);
  Name(owner.value_or(Labels{}));
  U16(rr.type);
  U16(kClassIN);
  U32(rr.ttl);
  const size_t length_at = out_.size();
  U16(0);
  std::visit(
      [&](const auto& data) {
        using T = std::decay_t<decltype(data)>;
        if constexpr (std::is_same_v<T, std::array<uint8_t, 4>> ||
                      std::is_same_v<T, std::array<uint8_t, 16>>) {
          out_.insert(out_.end(), data.begin(), data.end());
        } else if constexpr (std::is_same_v<T, std::string>) {
          Name(SplitName(data).value_or(Labels{}));
        } else if constexpr (std::is_same_v<T, SrvData>) {
          U16(data.priority);
          U16(data.weight);
          U16(data.port);
          // RFC 2782: the target is never compressed.
          for (const std::string& label : SplitName(data.target).value_or(Labels{})) {
            U8(static_cast<uint8_t>(label.size()));
            out_.insert(out_.end(), label.begin(), label.end());
          }
          U8(0);
        } else {
          Name(SplitName(data.mname).value_or(Labels{}));
          Name(SplitName(data.rname).value_or(Labels{}));
          U32(data.serial);
          U32(data.refresh);
          U32(data.retry);
          U32(data.expire);
          U32(data.minimum);
        }
      },
      rr.data);
  const size_t length = out_.size() - length_at - 2;
  out_[length_at] = static_cast<uint8_t>(length >> 8);
  out_[length_at + 1] = static_cast<uint8_t>(length);
}

void Writer::WriteOpt(uint16_t udp_size, uint8_t extended_rcode) {
  U8(0);  // root owner
  U16(kTypeOPT);
  U16(udp_size);
  U32(static_cast<uint32_t>(extended_rcode) << 24);  // version 0, no flags
  U16(0);                                            // no options
}

void Writer::SetCounts(uint16_t qd, uint16_t an, uint16_t ns, uint16_t ar) {
  if (out_.size() < kHeaderSize) return;
  const uint16_t counts[4] = {qd, an, ns, ar};
  for (int i = 0; i < 4; ++i) {
    out_[4 + 2 * i] = static_cast<uint8_t>(counts[i] >> 8);
    out_[5 + 2 * i] = static_cast<uint8_t>(counts[i]);
  }
}

// ---------------------------------------------------------------- addresses

std::optional<std::array<uint8_t, 4>> ParseIpv4(std::string_view text) {
  if (text.size() > 15) return std::nullopt;
  char buffer[16] = {0};
  std::memcpy(buffer, text.data(), text.size());
  std::array<uint8_t, 4> ip{};
  if (inet_pton(AF_INET, buffer, ip.data()) != 1) return std::nullopt;
  return ip;
}

std::optional<std::array<uint8_t, 16>> ParseIpv6(std::string_view text) {
  if (text.size() > 45) return std::nullopt;
  char buffer[46] = {0};
  std::memcpy(buffer, text.data(), text.size());
  std::array<uint8_t, 16> ip{};
  if (inet_pton(AF_INET6, buffer, ip.data()) != 1) return std::nullopt;
  return ip;
}

std::string FormatIpv4(const std::array<uint8_t, 4>& ip) {
  char buffer[INET_ADDRSTRLEN] = {0};
  inet_ntop(AF_INET, ip.data(), buffer, sizeof(buffer));
  return buffer;
}

std::string FormatIpv6(const std::array<uint8_t, 16>& ip) {
  char buffer[INET6_ADDRSTRLEN] = {0};
  inet_ntop(AF_INET6, ip.data(), buffer, sizeof(buffer));
  return buffer;
}

}  // namespace mk8s::dns
