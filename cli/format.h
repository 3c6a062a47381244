// Rendering of mk8sd's status for people (pretty, short) and for programs (yaml), and the CLI's
// one-line error output. Pure functions of their inputs.
#pragma once

#include <string>
#include <string_view>

#include "mk8s/v1/control.pb.h"

namespace mk8s::cli {

// Exit codes of every command.
inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// Prints `message` as one line on stderr and returns kExitFailure.
int PrintError(std::string_view message);

// MicroK8s's layout: running line, high-availability, datastore nodes, addons enabled/disabled.
std::string FormatStatusPretty(const v1::StatusResponse& status);
// `mk8s addons list`: NAME, STATE, VERSION, DESCRIPTION columns, then any addon's message.
std::string FormatAddonsTable(const google::protobuf::RepeatedPtrField<v1::AddonStatus>& addons);
// One line per component ("component/datastore: ready (sqlite)"), then one per addon.
std::string FormatStatusShort(const v1::StatusResponse& status);
// Every field of StatusResponse as YAML (block style, strings double-quoted), preceded by
// "running: true". Stable keys: they are the proto field names.
std::string FormatStatusYaml(const v1::StatusResponse& status);

// "datastore (opening store), apiserver (starting)" for the components that are not ready.
std::string NotReadySummary(const v1::StatusResponse& status);

// `text` as a YAML double-quoted scalar (valid JSON string as well).
std::string YamlQuote(std::string_view text);

// "1h2m3s" style durations for people.
std::string HumanDuration(int64_t seconds);

}  // namespace mk8s::cli
