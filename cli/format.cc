#include "cli/format.h"

#include <algorithm>
#include <cstdio>
#include <iostream>
#include <sstream>

namespace mk8s::cli {

int PrintError(std::string_view message) {
  std::string line(message);
  for (char& c : line) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  std::cout.flush();
  std::cerr << line << '\n';
  return kExitFailure;
}

std::string YamlQuote(std::string_view text) {
  std::string out = "\"";
  for (const unsigned char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          char escaped[8];
          std::snprintf(escaped, sizeof(escaped), "\\u%04x", c);
          out += escaped;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  return out + "\"";
}

std::string HumanDuration(int64_t seconds) {
  if (seconds < 0) seconds = 0;
  std::string out;
  if (seconds >= 86400) out += std::to_string(seconds / 86400) + "d";
  if (seconds >= 3600) out += std::to_string(seconds / 3600 % 24) + "h";
  if (seconds >= 60) out += std::to_string(seconds / 60 % 60) + "m";
  return out + std::to_string(seconds % 60) + "s";
}

std::string NotReadySummary(const v1::StatusResponse& status) {
  std::string out;
  for (const v1::ComponentStatus& component : status.components()) {
    if (component.ready()) continue;
    if (!out.empty()) out += ", ";
    out += component.name();
    if (!component.message().empty()) out += " (" + component.message() + ")";
  }
  return out.empty() ? "the daemon reports not ready" : out;
}

namespace {

// "    dns                  # (core) CoreDNS" as MicroK8s lists addons.
void AppendAddonLine(std::ostringstream& out, const v1::AddonStatus& addon) {
  std::string name = addon.name();
  if (name.size() < 20) name.resize(20, ' ');
  out << "    " << name << " # (" << (addon.repository().empty() ? "core" : addon.repository())
      << ") " << addon.description() << '\n';
}

// "enabled, healthy", "enabled, unhealthy", "disabled", "failed", "refused".
std::string AddonCondition(const v1::AddonStatus& addon) {
  std::string state = addon.state().empty() ? (addon.enabled() ? "enabled" : "disabled")
                                            : addon.state();
  if (state == "enabled") state += addon.healthy() ? ", healthy" : ", unhealthy";
  return state;
}

}  // namespace

std::string FormatStatusPretty(const v1::StatusResponse& status) {
  std::ostringstream out;
  if (status.ready()) {
    out << "mk8s is running\n";
  } else {
    out << "mk8s is running but not ready: " << NotReadySummary(status) << '\n';
  }
  out << "high-availability: " << (status.high_availability() ? "yes" : "no") << '\n';
  out << "  datastore master nodes:";
  if (status.datastore_nodes().empty()) out << " none";
  for (const std::string& node : status.datastore_nodes()) out << ' ' << node;
  out << "\n  datastore standby nodes: none\n";
  out << "addons:\n  enabled:\n";
  for (const v1::AddonStatus& addon : status.addons()) {
    if (addon.enabled()) AppendAddonLine(out, addon);
  }
  out << "  disabled:\n";
  for (const v1::AddonStatus& addon : status.addons()) {
    if (!addon.enabled()) AppendAddonLine(out, addon);
  }
  // Each addon's own word: its health when enabled, or why it is not running.
  bool details = false;
  for (const v1::AddonStatus& addon : status.addons()) {
    if (addon.message().empty()) continue;
    if (!details) out << "addon details:\n";
    details = true;
    out << "  " << addon.name() << ": " << AddonCondition(addon) << ": " << addon.message() << '\n';
  }
  return out.str();
}

std::string FormatAddonsTable(const google::protobuf::RepeatedPtrField<v1::AddonStatus>& addons) {
  if (addons.empty()) {
    return "No addons found. Addon libraries (*.so) go in <state-dir>/addons or the installed "
           "addons folder.\n";
  }
  size_t name_width = 4, state_width = 5, version_width = 7;
  for (const v1::AddonStatus& addon : addons) {
    name_width = std::max(name_width, addon.name().size());
    state_width = std::max(state_width, AddonCondition(addon).size());
    version_width = std::max(version_width, addon.version().size());
  }
  const auto pad = [](std::string text, size_t width) {
    text.resize(std::max(text.size(), width), ' ');
    return text;
  };
  std::ostringstream out;
  out << pad("NAME", name_width) << "  " << pad("STATE", state_width) << "  "
      << pad("VERSION", version_width) << "  DESCRIPTION\n";
  for (const v1::AddonStatus& addon : addons) {
    out << pad(addon.name(), name_width) << "  " << pad(AddonCondition(addon), state_width) << "  "
        << pad(addon.version(), version_width) << "  " << addon.description() << '\n';
    if (!addon.message().empty()) {
      out << pad("", name_width) << "  " << addon.message() << '\n';
    }
  }
  return out.str();
}

std::string FormatStatusShort(const v1::StatusResponse& status) {
  std::ostringstream out;
  for (const v1::ComponentStatus& component : status.components()) {
    out << "component/" << component.name() << ": " << (component.ready() ? "ready" : "not ready");
    if (!component.message().empty()) out << " (" << component.message() << ")";
    out << '\n';
  }
  for (const v1::AddonStatus& addon : status.addons()) {
    out << "addon/" << (addon.repository().empty() ? "core" : addon.repository()) << '/'
        << addon.name() << ": " << (addon.enabled() ? "enabled" : "disabled");
    if (!addon.message().empty()) out << " (" << AddonCondition(addon) << ": " << addon.message() << ")";
    out << '\n';
  }
  return out.str();
}

std::string FormatStatusYaml(const v1::StatusResponse& status) {
  std::ostringstream out;
  const auto boolean = [](bool value) { return value ? "true" : "false"; };
  out << "running: true\n";
  out << "ready: " << boolean(status.ready()) << '\n';
  out << "version: " << YamlQuote(status.version()) << '\n';
  out << "pid: " << status.pid() << '\n';
  out << "uptime_seconds: " << status.uptime_seconds() << '\n';
  out << "state_dir: " << YamlQuote(status.state_dir()) << '\n';
  out << "rss_bytes: " << status.rss_bytes() << '\n';
  out << "high_availability: " << boolean(status.high_availability()) << '\n';
  out << "datastore_nodes:" << (status.datastore_nodes().empty() ? " []" : "") << '\n';
  for (const std::string& node : status.datastore_nodes()) out << "  - " << YamlQuote(node) << '\n';
  out << "components:" << (status.components().empty() ? " []" : "") << '\n';
  for (const v1::ComponentStatus& component : status.components()) {
    out << "  - name: " << YamlQuote(component.name()) << '\n'
        << "    ready: " << boolean(component.ready()) << '\n'
        << "    message: " << YamlQuote(component.message()) << '\n';
  }
  out << "addons:" << (status.addons().empty() ? " []" : "") << '\n';
  for (const v1::AddonStatus& addon : status.addons()) {
    out << "  - name: " << YamlQuote(addon.name()) << '\n'
        << "    enabled: " << boolean(addon.enabled()) << '\n'
        << "    description: " << YamlQuote(addon.description()) << '\n'
        << "    repository: " << YamlQuote(addon.repository()) << '\n'
        << "    message: " << YamlQuote(addon.message()) << '\n'
        << "    state: " << YamlQuote(addon.state()) << '\n'
        << "    healthy: " << boolean(addon.healthy()) << '\n'
        << "    version: " << YamlQuote(addon.version()) << '\n'
        << "    args: " << YamlQuote(addon.args()) << '\n';
  }
  const v1::DatastoreStatus& datastore = status.datastore();
  out << "datastore:\n"
      << "  backend: " << YamlQuote(datastore.backend()) << '\n'
      << "  path: " << YamlQuote(datastore.path()) << '\n'
      << "  revision: " << datastore.revision() << '\n'
      << "  compacted_revision: " << datastore.compacted_revision() << '\n'
      << "  keys: " << datastore.keys() << '\n'
      << "  writes: " << datastore.writes() << '\n'
      << "  commits: " << datastore.commits() << '\n'
      << "  fsyncs: " << datastore.fsyncs() << '\n';
  return out.str();
}

}  // namespace mk8s::cli
