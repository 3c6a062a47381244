#include "apiserver/registry/object_meta.h"

#include <cctype>
#include <ctime>
#include <nlohmann/json.hpp>
#include <random>

#include "apiserver/resources.h"

namespace mk8s::apiserver {
namespace {

thread_local std::mt19937_64 random_engine{std::random_device{}()};

bool IsDns1123Label(const std::string& s, size_t max = 63) {
  if (s.empty() || s.size() > max) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!alnum && !(c == '-' && i > 0 && i + 1 < s.size())) return false;
  }
  return true;
}

bool IsDns1035Label(const std::string& s) {
  return IsDns1123Label(s) && s[0] >= 'a' && s[0] <= 'z';
}

bool IsDns1123Subdomain(const std::string& s) {
  if (s.empty() || s.size() > 253) return false;
  size_t start = 0;
  while (start <= s.size()) {
    size_t dot = s.find('.', start);
    if (dot == std::string::npos) dot = s.size();
    if (!IsDns1123Label(s.substr(start, dot - start))) return false;
    start = dot + 1;
    if (dot == s.size()) break;
  }
  return true;
}

bool IsQualifiedName(const std::string& key) {
  // [prefix/]name; prefix a DNS subdomain, name <= 63 chars of [A-Za-z0-9_.-], alnum at ends.
  std::string name = key;
  const size_t slash = key.find('/');
  if (slash != std::string::npos) {
    if (!IsDns1123Subdomain(key.substr(0, slash))) return false;
    name = key.substr(slash + 1);
  }
  if (name.empty() || name.size() > 63) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alnum = std::isalnum(static_cast<unsigned char>(c)) != 0;
    if (!alnum && !((c == '-' || c == '_' || c == '.') && i > 0 && i + 1 < name.size())) return false;
  }
  return true;
}

bool IsLabelValue(const std::string& value) {
  if (value.empty()) return true;
  if (value.size() > 63) return false;
  for (size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    const bool alnum = std::isalnum(static_cast<unsigned char>(c)) != 0;
    if (!alnum && !((c == '-' || c == '_' || c == '.') && i > 0 && i + 1 < value.size())) return false;
  }
  return true;
}

}  // namespace

std::string FormatTime(std::chrono::system_clock::time_point time) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(time);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%SZ", &utc);
  return buffer;
}

std::string FormatMicroTime(std::chrono::system_clock::time_point time) {
  const auto micros =
      std::chrono::duration_cast<std::chrono::microseconds>(time.time_since_epoch()).count() %
      1000000;
  std::string base = FormatTime(time);
  base.pop_back();  // 'Z'
  char fraction[16];
  std::snprintf(fraction, sizeof(fraction), ".%06lldZ", static_cast<long long>(micros));
  return base + fraction;
}

bool ParseTime(const std::string& text, std::chrono::system_clock::time_point* out) {
  std::tm tm{};
  const char* rest = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (rest == nullptr) return false;
  long long micros = 0;
  if (*rest == '.') {
    ++rest;
    long long scale = 100000;
    while (std::isdigit(static_cast<unsigned char>(*rest))) {
      micros += (*rest - '0') * scale;
      scale /= 10;
      ++rest;
    }
  }
  long offset = 0;
  if (*rest == 'Z' || *rest == 'z') {
    ++rest;
  } else if (*rest == '+' || *rest == '-') {
    int hours = 0, minutes = 0;
    if (std::sscanf(rest + 1, "%2d:%2d", &hours, &minutes) != 2) return false;
    offset = (hours * 3600L + minutes * 60L) * (*rest == '-' ? -1 : 1);
    rest += 6;
  } else {
    return false;
  }
  if (*rest != '\0') return false;
  const std::time_t seconds = timegm(&tm) - offset;
  *out = std::chrono::system_clock::from_time_t(seconds) + std::chrono::microseconds(micros);
  return true;
}

std::string NewUid() {
  std::uniform_int_distribution<uint64_t> dist;
  uint64_t hi = dist(random_engine), lo = dist(random_engine);
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // variant 10
  char buffer[40];
  std::snprintf(buffer, sizeof(buffer), "%08llx-%04llx-%04llx-%04llx-%012llx",
                static_cast<unsigned long long>(hi >> 32),
                static_cast<unsigned long long>((hi >> 16) & 0xffff),
                static_cast<unsigned long long>(hi & 0xffff),
                static_cast<unsigned long long>(lo >> 48),
                static_cast<unsigned long long>(lo & 0xffffffffffffULL));
  return buffer;
}

std::string GenerateName(const std::string& prefix) {
  static constexpr char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  std::uniform_int_distribution<size_t> dist(0, sizeof(kAlphabet) - 2);
  std::string base = prefix.size() > 58 ? prefix.substr(0, 58) : prefix;
  for (int i = 0; i < 5; ++i) base.push_back(kAlphabet[dist(random_engine)]);
  return base;
}

void ValidateName(const ResourceInfo& resource, const std::string& name,
                  std::vector<StatusCause>* causes) {
  if (name.empty()) {
    causes->push_back({"FieldValueRequired", "Required value: name or generateName is required",
                       "metadata.name"});
    return;
  }
  bool ok = true;
  std::string rule;
  if (resource.group == "rbac.authorization.k8s.io") {
    ok = name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('%') == std::string::npos;
    rule = "may not be '.' or '..' and may not contain '/' or '%'";
  } else if (resource.resource == "services") {
    ok = IsDns1035Label(name);
    rule = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with "
           "an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or "
           "'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";
  } else if (resource.resource == "namespaces") {
    ok = IsDns1123Label(name);
    rule = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
           "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
           "regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
  } else {
    ok = IsDns1123Subdomain(name);
    rule = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' "
           "or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
           "regex used for validation is "
           "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
  }
  if (!ok) {
    causes->push_back({"FieldValueInvalid", "Invalid value: \"" + name + "\": " + rule,
                       "metadata.name"});
  }
}

void ValidateMetadata(const nlohmann::json& metadata, std::vector<StatusCause>* causes) {
  for (const char* field : {"labels", "annotations"}) {
    auto it = metadata.find(field);
    if (it == metadata.end() || it->is_null()) continue;
    if (!it->is_object()) {
      causes->push_back({"FieldValueInvalid", "must be a map of strings",
                         std::string("metadata.") + field});
      continue;
    }
    for (const auto& [key, value] : it->items()) {
      const std::string path = std::string("metadata.") + field;
      if (!IsQualifiedName(key)) {
        causes->push_back({"FieldValueInvalid",
                           "Invalid value: \"" + key + "\": name part must consist of "
                           "alphanumeric characters, '-', '_' or '.'",
                           path});
      }
      if (!value.is_string()) {
        causes->push_back({"FieldValueInvalid", "Invalid value: values must be strings", path});
      } else if (std::string(field) == "labels" && !IsLabelValue(value.get<std::string>())) {
        causes->push_back({"FieldValueInvalid",
                           "Invalid value: \"" + value.get<std::string>() +
                               "\": a valid label must be an empty string or consist of "
                               "alphanumeric characters, '-', '_' or '.'",
                           path});
      }
    }
  }
}

}  // namespace mk8s::apiserver
