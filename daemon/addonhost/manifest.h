// The host's own copy of an addon's manifest (copied out of the addon's C structs at load, so
// nothing here points into addon memory), and validation of the user's arguments against it.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace mk8s::addonhost {

enum class ArgType { kString = 0, kInt = 1, kBool = 2, kEnum = 3, kIpv4List = 4 };

struct ArgSpec {
  std::string name;
  std::string help;
  ArgType type = ArgType::kString;
  bool required = false;
  std::optional<std::string> default_value;
  std::string choices;  // kEnum: "a,b,c"
  std::string pattern;  // kString: ECMAScript regex for the whole value, empty = any
  int64_t min_value = INT64_MIN;
  int64_t max_value = INT64_MAX;
};

struct AddonManifest {
  std::string name;
  std::string version;
  std::string description;
  std::string repository = "core";
  std::vector<ArgSpec> args;
  std::vector<std::string> depends_on;
  bool needs_root = false;
};

// Arguments after validation: (name, normalized value) in manifest order, defaults filled in.
struct ValidatedArgs {
  std::vector<std::pair<std::string, std::string>> values;
  std::string raw;  // what the user typed after "NAME:"
};

// "string", "integer 1..10", "one of a|b", "IPv4 list", "boolean".
std::string DescribeType(const ArgSpec& spec);

// True for [a-z][a-z0-9-]{0,62}: addon and argument names.
bool IsValidName(const std::string& name);

// Parses and validates the text after "NAME:". Two forms:
//   "key=value;key=value"  named arguments (the form whenever the text starts with "name=")
//   "value"                the whole text is the value of the addon's first argument
// (so `dns:1.1.1.1,8.8.8.8` sets dns's first argument). kInvalidArgument with a one-line message
// naming the argument, what it accepts and what was given.
Result<ValidatedArgs> ValidateArgs(const AddonManifest& manifest, const std::string& raw);

}  // namespace mk8s::addonhost
