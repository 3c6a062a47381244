#include "common/time_zone.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <iterator>

namespace mk8s {
namespace {

// TZif (RFC 8536) header: "TZif", version, 15 reserved bytes, then six big-endian counts.
constexpr size_t kHeaderSize = 44;
constexpr size_t kMaxFileSize = 1 << 20;

struct Counts {
  uint32_t isut, isstd, leap, time, type, chars;
};

uint32_t Be32(const std::string& data, size_t at) {
  return (uint32_t(uint8_t(data[at])) << 24) | (uint32_t(uint8_t(data[at + 1])) << 16) |
         (uint32_t(uint8_t(data[at + 2])) << 8) | uint32_t(uint8_t(data[at + 3]));
}

int64_t Be64(const std::string& data, size_t at) {
  return static_cast<int64_t>((uint64_t(Be32(data, at)) << 32) | Be32(data, at + 4));
}

bool ReadHeader(const std::string& data, size_t at, char* version, Counts* counts) {
  if (data.size() < at + kHeaderSize || data.compare(at, 4, "TZif") != 0) return false;
  *version = data[at + 4];
  *counts = {Be32(data, at + 20), Be32(data, at + 24), Be32(data, at + 28),
             Be32(data, at + 32), Be32(data, at + 36), Be32(data, at + 40)};
  return counts->type > 0;
}

size_t BlockSize(const Counts& c, size_t time_size) {
  return size_t(c.time) * time_size + c.time + size_t(c.type) * 6 + c.chars +
         size_t(c.leap) * (time_size + 4) + c.isstd + c.isut;
}

bool ValidZoneName(std::string_view name) {
  if (name.empty() || name.size() > 255 || name.front() == '/' || name == "Local") return false;
  if (name.find("..") != std::string_view::npos) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '_' || c == '-' ||
           c == '+';
  });
}

}  // namespace

TimeZone TimeZone::Utc() {
  TimeZone zone;
  zone.name_ = "UTC";
  return zone;
}

Result<TimeZone> TimeZone::Load(std::string_view name, const std::string& zoneinfo_dir) {
  if (!ValidZoneName(name)) {
    return Status(Code::kInvalidArgument,
                  "invalid time zone name \"" + std::string(name) +
                      "\": use an explicit IANA zone such as \"Etc/UTC\" or \"Europe/Berlin\"");
  }
  std::ifstream file(zoneinfo_dir + "/" + std::string(name), std::ios::binary);
  if (!file) {
    if (name == "UTC" || name == "Etc/UTC" || name == "GMT" || name == "Etc/GMT") {
      TimeZone zone = Utc();
      zone.name_ = std::string(name);
      return zone;
    }
    return Status(Code::kNotFound, "unknown time zone " + std::string(name) + " (not found in " +
                                       zoneinfo_dir + "; is the tzdata package installed?)");
  }
  std::string data;
  data.assign(std::istreambuf_iterator<char>(file), std::istreambuf_iterator<char>());
  const Status malformed(Code::kInvalidArgument,
                         "time zone " + std::string(name) + ": not a valid TZif file");
  if (data.size() > kMaxFileSize) return malformed;

  char version = 0;
  Counts counts{};
  if (!ReadHeader(data, 0, &version, &counts)) return malformed;
  size_t at = kHeaderSize;
  size_t time_size = 4;
  if (version >= '2') {
    // Skip the 32-bit block; the 64-bit one follows with its own header.
    at += BlockSize(counts, 4);
    if (!ReadHeader(data, at, &version, &counts)) return malformed;
    at += kHeaderSize;
    time_size = 8;
  }
  if (data.size() < at + BlockSize(counts, time_size)) return malformed;

  std::vector<int32_t> type_offsets(counts.type);
  const size_t types_at = at + size_t(counts.time) * (time_size + 1);
  for (uint32_t i = 0; i < counts.type; ++i) {
    type_offsets[i] = static_cast<int32_t>(Be32(data, types_at + size_t(i) * 6));
  }
  TimeZone zone;
  zone.name_ = std::string(name);
  zone.initial_offset_ = type_offsets[0];
  for (uint32_t i = 0; i < counts.time; ++i) {
    const int64_t when = time_size == 8 ? Be64(data, at + size_t(i) * 8)
                                        : static_cast<int32_t>(Be32(data, at + size_t(i) * 4));
    const uint8_t type = static_cast<uint8_t>(data[at + size_t(counts.time) * time_size + i]);
    if (type >= counts.type) return malformed;
    if (!zone.transitions_.empty() && when <= zone.transitions_.back()) return malformed;
    zone.transitions_.push_back(when);
    zone.offsets_.push_back(type_offsets[type]);
  }
  return zone;
}

int64_t TimeZone::OffsetAt(int64_t utc_seconds) const {
  auto after = std::upper_bound(transitions_.begin(), transitions_.end(), utc_seconds);
  if (after == transitions_.begin()) return initial_offset_;
  return offsets_[static_cast<size_t>(after - transitions_.begin()) - 1];
}

}  // namespace mk8s
