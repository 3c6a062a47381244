#include "addonhost/manifest.h"

#include <arpa/inet.h>

#include <cerrno>
#include <cstdlib>
#include <regex>

namespace mk8s::addonhost {
namespace {

std::vector<std::string> Split(const std::string& text, char separator) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    const size_t at = text.find(separator, start);
    parts.push_back(text.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return parts;
    start = at + 1;
  }
}

Status Invalid(const std::string& addon, const ArgSpec& spec, const std::string& value,
               const std::string& why = "") {
  return Status(Code::kInvalidArgument, "argument '" + spec.name + "' of addon " + addon +
                                            " must be " + DescribeType(spec) +
                                            (why.empty() ? "" : " (" + why + ")") + ", got '" +
                                            value + "'");
}

// Checks one value against its spec; on success `*normalized` is its canonical text.
Status CheckValue(const std::string& addon, const ArgSpec& spec, const std::string& value,
                  std::string* normalized) {
  *normalized = value;
  switch (spec.type) {
    case ArgType::kString:
      if (!spec.pattern.empty()) {
        try {
          if (!std::regex_match(value, std::regex(spec.pattern, std::regex::ECMAScript))) {
            return Invalid(addon, spec, value);
          }
        } catch (const std::regex_error&) {
          return Status(Code::kInternal, "addon " + addon + " declares an invalid pattern for '" +
                                             spec.name + "': report it to the addon's author");
        }
      }
      return Status::Ok();
    case ArgType::kInt: {
      if (value.empty()) return Invalid(addon, spec, value);
      errno = 0;
      char* end = nullptr;
      const long long number = std::strtoll(value.c_str(), &end, 10);
      if (errno != 0 || *end != '\0' || number < spec.min_value || number > spec.max_value) {
        return Invalid(addon, spec, value);
      }
      *normalized = std::to_string(number);
      return Status::Ok();
    }
    case ArgType::kBool:
      if (value == "true" || value == "yes" || value == "1" || value == "on") {
        *normalized = "true";
      } else if (value == "false" || value == "no" || value == "0" || value == "off") {
        *normalized = "false";
      } else {
        return Invalid(addon, spec, value);
      }
      return Status::Ok();
    case ArgType::kEnum:
      for (const std::string& choice : Split(spec.choices, ',')) {
        if (choice == value) return Status::Ok();
      }
      return Invalid(addon, spec, value);
    case ArgType::kIpv4List:
      for (const std::string& item : Split(value, ',')) {
        in_addr address{};
        if (item.empty() || inet_pton(AF_INET, item.c_str(), &address) != 1) {
          return Invalid(addon, spec, value, "'" + item + "' is not an IPv4 address");
        }
      }
      return Status::Ok();
  }
  return Invalid(addon, spec, value);
}

const ArgSpec* FindArg(const AddonManifest& manifest, const std::string& name) {
  for (const ArgSpec& spec : manifest.args) {
    if (spec.name == name) return &spec;
  }
  return nullptr;
}

std::string ArgNames(const AddonManifest& manifest) {
  std::string names;
  for (const ArgSpec& spec : manifest.args) names += (names.empty() ? "" : ", ") + spec.name;
  return names;
}

}  // namespace

std::string DescribeType(const ArgSpec& spec) {
  switch (spec.type) {
    case ArgType::kString:
      return spec.pattern.empty() ? "a string" : "a string matching " + spec.pattern;
    case ArgType::kInt:
      if (spec.min_value == INT64_MIN && spec.max_value == INT64_MAX) return "an integer";
      return "an integer from " + std::to_string(spec.min_value) + " to " +
             std::to_string(spec.max_value);
    case ArgType::kBool:
      return "true or false";
    case ArgType::kEnum: {
      std::string choices = spec.choices;
      for (char& c : choices) {
        if (c == ',') c = '|';
      }
      return "one of " + choices;
    }
    case ArgType::kIpv4List:
      return "comma-separated IPv4 addresses";
  }
  return "a value";
}

bool IsValidName(const std::string& name) {
  if (name.empty() || name.size() > 63 || name[0] < 'a' || name[0] > 'z') return false;
  for (const char c : name) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return true;
}

Result<ValidatedArgs> ValidateArgs(const AddonManifest& manifest, const std::string& raw) {
  std::vector<std::pair<std::string, std::string>> given;  // (name, value) as typed
  if (!raw.empty()) {
    const size_t equals = raw.find('=');
    const bool named = equals != std::string::npos && IsValidName(raw.substr(0, equals));
    if (named) {
      for (const std::string& piece : Split(raw, ';')) {
        if (piece.empty()) continue;
        const size_t at = piece.find('=');
        if (at == std::string::npos) {
          return Status(Code::kInvalidArgument, "cannot read '" + piece + "' in the arguments of " +
                                                    manifest.name +
                                                    ": write NAME=VALUE pairs separated by ';'");
        }
        given.emplace_back(piece.substr(0, at), piece.substr(at + 1));
      }
    } else if (manifest.args.empty()) {
      return Status(Code::kInvalidArgument, "addon " + manifest.name +
                                                " takes no arguments, got '" + raw +
                                                "': run 'mk8s enable " + manifest.name + "'");
    } else {
      given.emplace_back(manifest.args.front().name, raw);
    }
  }

  ValidatedArgs out;
  out.raw = raw;
  std::vector<std::string> seen;
  for (const auto& [name, value] : given) {
    const ArgSpec* spec = FindArg(manifest, name);
    if (spec == nullptr) {
      return Status(
          Code::kInvalidArgument,
          "addon " + manifest.name + " has no argument '" + name + "'" +
              (manifest.args.empty() ? ": it takes none" : ": it accepts " + ArgNames(manifest)) +
              " ('mk8s addons list' shows them)");
    }
    for (const std::string& other : seen) {
      if (other == name) {
        return Status(Code::kInvalidArgument,
                      "argument '" + name + "' of addon " + manifest.name + " is given twice");
      }
    }
    seen.push_back(name);
  }
  for (const ArgSpec& spec : manifest.args) {
    std::optional<std::string> value;
    for (const auto& [name, given_value] : given) {
      if (name == spec.name) value = given_value;
    }
    if (!value) value = spec.default_value;
    if (!value) {
      if (spec.required) {
        return Status(Code::kInvalidArgument, "addon " + manifest.name + " needs argument '" +
                                                  spec.name + "' (" + spec.help +
                                                  "): run 'mk8s enable " + manifest.name + ":" +
                                                  spec.name + "=VALUE'");
      }
      continue;
    }
    std::string normalized;
    if (Status status = CheckValue(manifest.name, spec, *value, &normalized); !status.ok()) {
      return status;
    }
    out.values.emplace_back(spec.name, std::move(normalized));
  }
  return out;
}

}  // namespace mk8s::addonhost
