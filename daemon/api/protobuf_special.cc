#include "api/protobuf_special.h"

#include <cstdio>

namespace mk8s::api::internal {
namespace {

// Days since 1970-01-01 to civil date (proleptic Gregorian); Howard Hinnant's algorithm.
void CivilFromDays(int64_t z, int64_t* y, unsigned* m, unsigned* d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = static_cast<int64_t>(yoe) + era * 400 + (*m <= 2);
}

// Appends v as a decimal fraction with trailing zeros removed (digits = width of v's field).
std::string Fraction(uint64_t v, int digits) {
  std::string s(static_cast<size_t>(digits), '0');
  for (int i = digits - 1; i >= 0; --i) {
    s[static_cast<size_t>(i)] = static_cast<char>('0' + v % 10);
    v /= 10;
  }
  while (!s.empty() && s.back() == '0') s.pop_back();
  return s;
}

}  // namespace

bool FormatRfc3339(int64_t seconds, int32_t nanos, bool micro, std::string* out) {
  // 0001-01-01 .. 9999-12-31 in Unix seconds.
  if (seconds < -62135596800LL || seconds > 253402300799LL) return false;
  if (nanos < 0 || nanos > 999999999) return false;
  int64_t days = seconds / 86400;
  int64_t rem = seconds % 86400;
  if (rem < 0) {
    rem += 86400;
    --days;
  }
  int64_t y;
  unsigned m, d;
  CivilFromDays(days, &y, &m, &d);
  char buf[64];
  int hh = static_cast<int>(rem / 3600), mm = static_cast<int>(rem / 60 % 60),
      ss = static_cast<int>(rem % 60);
  if (micro) {
    std::snprintf(buf, sizeof(buf), "%04d-%02u-%02uT%02d:%02d:%02d.%06dZ", static_cast<int>(y), m,
                  d, hh, mm, ss, nanos / 1000);
  } else {
    std::snprintf(buf, sizeof(buf), "%04d-%02u-%02uT%02d:%02d:%02dZ", static_cast<int>(y), m, d,
                  hh, mm, ss);
  }
  *out = buf;
  return true;
}

std::string FormatGoDuration(int64_t nanos) {
  if (nanos == 0) return "0s";
  bool neg = nanos < 0;
  // Work in unsigned so that INT64_MIN is safe.
  uint64_t u = neg ? 0 - static_cast<uint64_t>(nanos) : static_cast<uint64_t>(nanos);
  std::string s;
  if (u < 1000000000ULL) {
    // Sub-second: pick ns, µs or ms.
    const char* unit;
    int digits;
    uint64_t whole, frac;
    if (u < 1000ULL) {
      s = std::to_string(u) + "ns";
      return neg ? "-" + s : s;
    } else if (u < 1000000ULL) {
      unit = "\xC2\xB5s";  // µs
      digits = 3;
      whole = u / 1000;
      frac = u % 1000;
    } else {
      unit = "ms";
      digits = 6;
      whole = u / 1000000;
      frac = u % 1000000;
    }
    s = std::to_string(whole);
    std::string f = Fraction(frac, digits);
    if (!f.empty()) s += "." + f;
    s += unit;
    return neg ? "-" + s : s;
  }
  uint64_t secs = u / 1000000000ULL;
  std::string f = Fraction(u % 1000000000ULL, 9);
  uint64_t h = secs / 3600, m = secs / 60 % 60, sec = secs % 60;
  if (h > 0) s += std::to_string(h) + "h";
  if (h > 0 || m > 0) s += std::to_string(m) + "m";
  s += std::to_string(sec);
  if (!f.empty()) s += "." + f;
  s += "s";
  return neg ? "-" + s : s;
}

std::string Base64Encode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (static_cast<uint8_t>(bytes[i]) << 16) | (static_cast<uint8_t>(bytes[i + 1]) << 8) |
                 static_cast<uint8_t>(bytes[i + 2]);
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = static_cast<uint8_t>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<uint8_t>(bytes[i + 1]) << 8;
    out += kAlphabet[v >> 18];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

}  // namespace mk8s::api::internal
