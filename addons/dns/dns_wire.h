// The DNS wire format (RFC 1035, 2782, 3596, 6891): a bounds-checked parser and a writer with
// name compression. Our own codec rather than libldns: the addon needs a small subset, the hot
// path (parse a query, write an answer) stays allocation-light, the hostile-input rules (pointer
// loops, label and name limits, section counts) are explicit here and fuzzed by our tests, and
// the addon library keeps no runtime dependency beyond the SDK.
//
// Hostile input: Parse never reads outside the buffer and never loops: compression pointers must
// point strictly backwards (so every jump makes progress towards the start), labels are <= 63
// bytes, names <= 255 wire bytes, and section counts must fit the remaining bytes. Any violation
// is a parse error (the caller answers FORMERR or drops the packet).
//
// Threads: everything here is a value type or a pure function; no shared state.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace mk8s::dns {

enum RrType : uint16_t {
  kTypeA = 1,
  kTypeNS = 2,
  kTypeCNAME = 5,
  kTypeSOA = 6,
  kTypePTR = 12,
  kTypeMX = 15,
  kTypeTXT = 16,
  kTypeAAAA = 28,
  kTypeSRV = 33,
  kTypeOPT = 41,
  kTypeANY = 255,
};
constexpr uint16_t kClassIN = 1;

enum Rcode : uint8_t {
  kNoError = 0,
  kFormErr = 1,
  kServFail = 2,
  kNxDomain = 3,
  kNotImp = 4,
  kRefused = 5,
};

constexpr size_t kHeaderSize = 12;
constexpr size_t kMaxLabel = 63;
constexpr size_t kMaxNameWire = 255;
constexpr size_t kClassicUdpSize = 512;

// The fixed header; flags are kept as the raw 16 bits with accessors.
struct Header {
  uint16_t id = 0;
  uint16_t flags = 0;
  uint16_t qdcount = 0, ancount = 0, nscount = 0, arcount = 0;

  bool qr() const { return flags & 0x8000; }
  uint8_t opcode() const { return (flags >> 11) & 0xF; }
  bool aa() const { return flags & 0x0400; }
  bool tc() const { return flags & 0x0200; }
  bool rd() const { return flags & 0x0100; }
  bool ra() const { return flags & 0x0080; }
  uint8_t rcode() const { return flags & 0xF; }
  void set(uint16_t bit, bool on) { flags = on ? (flags | bit) : (flags & ~bit); }
  void set_rcode(uint8_t code) { flags = (flags & ~0xF) | (code & 0xF); }
};
constexpr uint16_t kFlagQR = 0x8000, kFlagAA = 0x0400, kFlagTC = 0x0200, kFlagRD = 0x0100,
                   kFlagRA = 0x0080;

// A domain name as its labels, in the case they were received (never empty labels).
using Labels = std::vector<std::string>;

// "Web.Default.svc" -> {"Web","Default","svc"}; "" or "." -> {}. No escapes: our own names are
// DNS-1123 text. Returns nullopt for an empty label or a label/name over the limits.
std::optional<Labels> SplitName(std::string_view dotted);
// The lookup key: lowercase labels joined by '.', no trailing dot ("" for the root). A '.' or
// '\' inside a label is escaped with '\' so that it can never alias another name.
std::string LookupKey(const Labels& labels);

struct Question {
  Labels name;
  uint16_t type = 0;
  uint16_t klass = 0;
};

struct Edns {
  uint16_t udp_size = kClassicUdpSize;  // the requester's payload size (>= 512)
  uint8_t version = 0;
  bool dnssec_ok = false;
};

// One parsed resource record. `ttl_offset` / `rdata_offset` index the parsed buffer (the cache
// patches TTLs in place there).
struct Record {
  Labels name;
  uint16_t type = 0;
  uint16_t klass = 0;
  uint32_t ttl = 0;
  size_t ttl_offset = 0;
  size_t rdata_offset = 0;
  uint16_t rdlength = 0;
};

struct Message {
  Header header;
  std::vector<Question> questions;
  std::vector<Record> answers, authority, additional;
  std::optional<Edns> edns;  // from the OPT record in `additional`, if any
};

// Parses a whole message. On failure returns nullopt and, if `error` is given, says why.
// `header_out` (optional) receives the header whenever at least 12 bytes were present, so the
// caller can answer FORMERR with the right id.
std::optional<Message> Parse(std::span<const uint8_t> wire, std::string* error = nullptr,
                             std::optional<Header>* header_out = nullptr);

// ---------------------------------------------------------------- records to write

struct SrvData {
  uint16_t priority = 0;
  uint16_t weight = 0;
  uint16_t port = 0;
  std::string target;  // dotted
};
struct SoaData {
  std::string mname, rname;  // dotted
  uint32_t serial = 0, refresh = 0, retry = 0, expire = 0, minimum = 0;
};
// A: 4 bytes, AAAA: 16 bytes; CNAME/PTR/NS: a dotted name.
using RData =
    std::variant<std::array<uint8_t, 4>, std::array<uint8_t, 16>, std::string, SrvData, SoaData>;

// A record to encode. `owner` is dotted; when it equals the question's name (ignoring case) the
// writer reuses the question's spelling through compression.
struct Rr {
  std::string owner;
  uint16_t type = 0;
  uint32_t ttl = 0;
  RData data;
};

// Writes a message front to back with RFC 1035 name compression (case-insensitive suffixes).
// Not thread-safe; one per response.
class Writer {
 public:
  void WriteHeader(const Header& header);
  void WriteQuestion(const Question& question);
  void WriteRr(const Rr& rr);
  // An OPT pseudo-record advertising `udp_size` (RFC 6891); `extended_rcode` is the upper 8
  // bits of a 12-bit rcode (1 = BADVERS).
  void WriteOpt(uint16_t udp_size, uint8_t extended_rcode = 0);
  // Patches the section counts in the already written header.
  void SetCounts(uint16_t qd, uint16_t an, uint16_t ns, uint16_t ar);
  std::vector<uint8_t> Take() { return std::move(out_); }
  size_t size() const { return out_.size(); }

 private:
  void U8(uint8_t v) { out_.push_back(v); }
  void U16(uint16_t v);
  void U32(uint32_t v);
  void Name(const Labels& labels);

  std::vector<uint8_t> out_;
  std::map<std::string, uint16_t> suffixes_;  // LookupKey of a written suffix -> its offset
};

// Helpers shared by the resolver and the tests.
std::optional<std::array<uint8_t, 4>> ParseIpv4(std::string_view text);
std::optional<std::array<uint8_t, 16>> ParseIpv6(std::string_view text);
std::string FormatIpv4(const std::array<uint8_t, 4>& ip);
std::string FormatIpv6(const std::array<uint8_t, 16>& ip);
std::string ToLower(std::string_view text);

}  // namespace mk8s::dns
