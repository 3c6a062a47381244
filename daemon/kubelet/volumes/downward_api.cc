#include "kubelet/volumes/downward_api.h"

#include <sys/statvfs.h>
#include <unistd.h>

#include <cstdint>
#include <map>
#include <thread>

#include "common/quantity.h"

namespace mk8s::kubelet::volumes {
namespace {

using nlohmann::json;

// Length of the UTF-8 sequence starting at s[i] if it is valid, else 0.
size_t Utf8Length(const std::string& s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  size_t n = 0;
  uint32_t cp = 0;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
      (n == 4 && (cp < 0x10000 || cp > 0x10FFFF))) {
    return 0;
  }
  return n;
}

std::string ValueText(const json& value) {
  return value.is_string() ? value.get<std::string>() : value.dump();
}

// "metadata.labels['app']" -> ("metadata.labels", "app", true).
bool SplitSubscript(const std::string& path, std::string* base, std::string* key) {
  const size_t open = path.find("['");
  if (open == std::string::npos || path.size() < open + 4 ||
      path.compare(path.size() - 2, 2, "']") != 0) {
    return false;
  }
  *base = path.substr(0, open);
  *key = path.substr(open + 2, path.size() - open - 4);
  return true;
}

// Upstream's convertResource*ToString: ceil(value / divisor).
std::string DivideCeil(int64_t value, int64_t divisor) {
  if (divisor <= 0) divisor = 1;
  int64_t q = value / divisor;
  if (value % divisor != 0 && value > 0) ++q;
  return std::to_string(q);
}

const json* FindContainer(const json& pod, const std::string& name) {
  for (const char* list : {"containers", "initContainers"}) {
    const json* containers =
        pod.contains("spec") && pod["spec"].is_object() && pod["spec"].contains(list)
            ? &pod["spec"][list]
            : nullptr;
    if (containers == nullptr || !containers->is_array()) continue;
    for (const json& c : *containers) {
      if (c.is_object() && c.value("name", "") == name) return &c;
    }
  }
  return nullptr;
}

}  // namespace

std::string GoQuote(const std::string& s) {
  static const char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      const size_t n = Utf8Length(s, i);
      if (n == 0) {
        out += "\\x";
        out += kHex[c >> 4];
        out += kHex[c & 0xF];
        ++i;
      } else {
        out.append(s, i, n);
        i += n;
      }
      continue;
    }
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\a':
        out += "\\a";
        break;
      case '\b':
        out += "\\b";
        break;
      case '\f':
        out += "\\f";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\v':
        out += "\\v";
        break;
      default:
        if (c < 0x20 || c == 0x7F) {
          out += "\\x";
          out += kHex[c >> 4];
          out += kHex[c & 0xF];
        } else {
          out += static_cast<char>(c);
        }
    }
    ++i;
  }
  out += '"';
  return out;
}

std::string FormatMap(const json& map) {
  if (!map.is_object()) return "";
  std::map<std::string, std::string> sorted;
  for (const auto& [key, value] : map.items()) sorted[key] = ValueText(value);
  std::string out;
  for (const auto& [key, value] : sorted) {
    if (!out.empty()) out += '\n';
    out += key + "=" + GoQuote(value);
  }
  return out;
}

Result<std::string> ExtractMetadataField(const json& pod, const std::string& api_version,
                                         const std::string& field_path) {
  if (!api_version.empty() && api_version != "v1") {
    return Status(Code::kInvalidArgument, "unsupported pod version: " + api_version);
  }
  const json metadata = pod.is_object() ? pod.value("metadata", json::object()) : json::object();
  std::string base, key;
  if (SplitSubscript(field_path, &base, &key)) {
    if (base != "metadata.labels" && base != "metadata.annotations") {
      return Status(Code::kInvalidArgument, "unsupported fieldPath: " + field_path);
    }
    const json map =
        metadata.value(base == "metadata.labels" ? "labels" : "annotations", json::object());
    if (!map.is_object() || !map.contains(key)) return std::string();
    return ValueText(map[key]);
  }
  if (field_path == "metadata.labels") return FormatMap(metadata.value("labels", json::object()));
  if (field_path == "metadata.annotations") {
    return FormatMap(metadata.value("annotations", json::object()));
  }
  if (field_path == "metadata.name") return metadata.value("name", "");
  if (field_path == "metadata.namespace") return metadata.value("namespace", "");
  if (field_path == "metadata.uid") return metadata.value("uid", "");
  return Status(Code::kInvalidArgument, "unsupported fieldPath: " + field_path);
}

Result<std::string> ExtractResourceField(const json& pod, const json& ref,
                                         const std::string& default_container,
                                         const json* node_allocatable) {
  if (!ref.is_object()) return Status(Code::kInvalidArgument, "resourceFieldRef is not an object");
  const std::string resource = ref.value("resource", "");
  std::string container_name = ref.value("containerName", "");
  if (container_name.empty()) container_name = default_container;
  if (container_name.empty()) {
    return Status(Code::kInvalidArgument,
                  "resourceFieldRef " + resource + ": containerName is required");
  }
  const json* container = FindContainer(pod, container_name);
  if (container == nullptr) {
    return Status(Code::kInvalidArgument, "container " + container_name + " not found");
  }
  // Divisor: absent or zero means 1.
  int64_t divisor_milli = 1000, divisor_value = 1;
  if (ref.contains("divisor") && !ref["divisor"].is_null()) {
    const std::string text =
        ref["divisor"].is_string() ? ref["divisor"].get<std::string>() : ref["divisor"].dump();
    auto milli = ParseQuantityMilli(text);
    auto value = ParseQuantityValue(text);
    if (!milli || !value) {
      return Status(Code::kInvalidArgument,
                    "resourceFieldRef " + resource + ": invalid divisor \"" + text + "\"");
    }
    if (*milli != 0) {
      divisor_milli = *milli;
      divisor_value = *value;
    }
  }
  const size_t dot = resource.find('.');
  const std::string kind = dot == std::string::npos ? "" : resource.substr(0, dot);
  const std::string name = dot == std::string::npos ? "" : resource.substr(dot + 1);
  const bool known = name == "cpu" || name == "memory" || name == "ephemeral-storage" ||
                     name.rfind("hugepages-", 0) == 0;
  if ((kind != "limits" && kind != "requests") || !known) {
    return Status(Code::kInvalidArgument, "unsupported container resource : " + resource);
  }
  const json resources = container->value("resources", json::object());
  const json list = resources.is_object() ? resources.value(kind, json::object()) : json::object();
  json quantity = list.is_object() && list.contains(name) ? list[name] : json();
  if (quantity.is_null() && kind == "limits" &&
      (name == "cpu" || name == "memory" || name == "ephemeral-storage")) {
    // As upstream's defaultPodLimitsForDownwardAPI: no limit = the node's allocatable.
    const json host = node_allocatable == nullptr ? HostAllocatable() : json();
    const json& allocatable = node_allocatable == nullptr ? host : *node_allocatable;
    if (allocatable.is_object() && allocatable.contains(name)) quantity = allocatable[name];
  }
  if (name == "cpu") return DivideCeil(JsonQuantityMilli(quantity), divisor_milli);
  return DivideCeil(JsonQuantityValue(quantity), divisor_value);
}

json HostAllocatable(const std::string& path) {
  json out = json::object();
  unsigned cpus = std::thread::hardware_concurrency();
  out["cpu"] = std::to_string(cpus == 0 ? 1 : cpus);
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page_size > 0) {
    out["memory"] = std::to_string(static_cast<int64_t>(pages) * page_size);
  }
  struct statvfs fs {};
  if (statvfs(path.c_str(), &fs) == 0) {
    out["ephemeral-storage"] =
        std::to_string(static_cast<int64_t>(fs.f_blocks) * static_cast<int64_t>(fs.f_frsize));
  }
  return out;
}

}  // namespace mk8s::kubelet::volumes
