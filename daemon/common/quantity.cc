#include "common/quantity.h"

#include <cmath>
#include <limits>

namespace mk8s {
namespace {

using i128 = __int128;
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
constexpr int64_t kMin = std::numeric_limits<int64_t>::min();

// Suffix as base^exponent; base 10 or 2.
struct Suffix {
  int base;
  int exp;
};

std::optional<Suffix> ParseSuffix(std::string_view s) {
  if (s.empty()) return Suffix{10, 0};
  if (s.size() == 2 && s[1] == 'i') {
    switch (s[0]) {
      case 'K':
        return Suffix{2, 10};
      case 'M':
        return Suffix{2, 20};
      case 'G':
        return Suffix{2, 30};
      case 'T':
        return Suffix{2, 40};
      case 'P':
        return Suffix{2, 50};
      case 'E':
        return Suffix{2, 60};
      default:
        return std::nullopt;
    }
  }
  if (s.size() == 1) {
    switch (s[0]) {
      case 'n':
        return Suffix{10, -9};
      case 'u':
        return Suffix{10, -6};
      case 'm':
        return Suffix{10, -3};
      case 'k':
        return Suffix{10, 3};
      case 'M':
        return Suffix{10, 6};
      case 'G':
        return Suffix{10, 9};
      case 'T':
        return Suffix{10, 12};
      case 'P':
        return Suffix{10, 15};
      case 'E':
        return Suffix{10, 18};
      default:
        break;
    }
  }
  if (s[0] == 'e' || s[0] == 'E') {
    size_t i = 1;
    bool neg = false;
    if (i < s.size() && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
    if (i >= s.size() || s.size() - i > 4) return std::nullopt;
    int e = 0;
    for (; i < s.size(); ++i) {
      if (s[i] < '0' || s[i] > '9') return std::nullopt;
      e = e * 10 + (s[i] - '0');
    }
    return Suffix{10, neg ? -e : e};
  }
  return std::nullopt;
}

i128 Pow(int base, int exp) {
  i128 r = 1;
  for (int i = 0; i < exp; ++i) r *= base;
  return r;
}

// Returns ceil(value * 10^scale_pow10) with value = sign * mantissa * base^exp / 10^frac_digits,
// saturating at the int64 range.
std::optional<int64_t> Scale(std::string_view s, int extra_pow10) {
  size_t i = 0;
  bool neg = false;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
  i128 mantissa = 0;
  int digits = 0;     // significant digits kept in mantissa
  int pow10 = 0;      // power of ten applied to mantissa
  bool lost = false;  // nonzero digits dropped (for rounding up)
  bool any = false;
  bool dot = false;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c == '.') {
      if (dot) return std::nullopt;
      dot = true;
      continue;
    }
    if (c < '0' || c > '9') break;
    any = true;
    if (digits < 30) {
      mantissa = mantissa * 10 + (c - '0');
      if (mantissa != 0) ++digits;
      if (dot) --pow10;
    } else {
      if (!dot) ++pow10;
      if (c != '0') lost = true;
    }
  }
  if (!any) return std::nullopt;
  std::optional<Suffix> suf = ParseSuffix(s.substr(i));
  if (!suf) return std::nullopt;
  if (mantissa == 0) return 0;
  // Decide the magnitude first with floating point to avoid int128 overflow.
  long double approx = static_cast<long double>(mantissa) * std::pow(10.0L, pow10 + extra_pow10) *
                       std::pow(static_cast<long double>(suf->base), suf->exp);
  if (approx > 9.3e18L) return neg ? kMin : kMax;
  // Exact: numerator / denominator.
  i128 num = mantissa;
  i128 den = 1;
  int p10 = pow10 + extra_pow10 + (suf->base == 10 ? suf->exp : 0);
  if (p10 >= 0) {
    num *= Pow(10, p10);
  } else if (p10 >= -36) {
    den *= Pow(10, -p10);
  } else {
    return neg ? 0 : 1;  // a positive value far below one milli-unit rounds up to 1
  }
  if (suf->base == 2) num *= Pow(2, suf->exp);
  i128 q = num / den;
  bool rem = (num % den) != 0 || lost;
  int64_t out;
  if (neg) {
    out = -static_cast<int64_t>(q);  // ceil toward +inf truncates toward zero
  } else {
    out = static_cast<int64_t>(q + (rem ? 1 : 0));
  }
  return out;
}

}  // namespace

std::optional<int64_t> ParseQuantityMilli(std::string_view s) { return Scale(s, 3); }
std::optional<int64_t> ParseQuantityValue(std::string_view s) { return Scale(s, 0); }

int64_t JsonQuantityMilli(const nlohmann::json& v) {
  if (v.is_string()) return ParseQuantityMilli(v.get_ref<const std::string&>()).value_or(0);
  if (v.is_number_integer()) return v.get<int64_t>() * 1000;
  if (v.is_number()) return static_cast<int64_t>(std::ceil(v.get<double>() * 1000));
  return 0;
}

int64_t JsonQuantityValue(const nlohmann::json& v) {
  if (v.is_string()) return ParseQuantityValue(v.get_ref<const std::string&>()).value_or(0);
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number()) return static_cast<int64_t>(std::ceil(v.get<double>()));
  return 0;
}

}  // namespace mk8s
