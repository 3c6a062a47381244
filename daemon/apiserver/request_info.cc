#include "apiserver/request_info.h"

#include <cctype>

#include "common/url_encoding.h"

namespace mk8s::apiserver {
namespace {

std::vector<std::string> SplitPath(std::string_view path) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start < path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    if (slash > start) parts.emplace_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return parts;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

QueryParams::QueryParams(std::string_view raw) : params_(common::ParseQuery(raw)) {}

std::string QueryParams::Get(std::string_view key, std::string_view fallback) const {
  for (const auto& [k, v] : params_) {
    if (k == key) return v;
  }
  return std::string(fallback);
}

std::vector<std::string> QueryParams::GetAll(std::string_view key) const {
  std::vector<std::string> values;
  for (const auto& [k, v] : params_) {
    if (k == key) values.push_back(v);
  }
  return values;
}

bool QueryParams::Has(std::string_view key) const {
  for (const auto& [k, v] : params_) {
    if (k == key) return true;
  }
  return false;
}

bool QueryParams::GetBool(std::string_view key, bool fallback, bool* ok) const {
  if (ok != nullptr) *ok = true;
  if (!Has(key)) return fallback;
  const std::string value = Get(key);
  if (value == "1" || value == "t" || value == "T" || value == "true" || value == "TRUE" ||
      value == "True") {
    return true;
  }
  if (value == "0" || value == "f" || value == "F" || value == "false" || value == "FALSE" ||
      value == "False") {
    return false;
  }
  if (ok != nullptr) *ok = false;
  return fallback;
}

RequestInfo ParseRequestInfo(std::string_view method, std::string_view path,
                             std::string_view query) {
  RequestInfo info;
  info.path = std::string(path);
  info.verb = Lower(method);
  std::vector<std::string> parts = SplitPath(path);
  if (parts.empty() || (parts[0] != "api" && parts[0] != "apis")) return info;
  info.api_prefix = parts[0];
  size_t next = 1;
  if (info.api_prefix == "apis") {
    if (parts.size() < 3) return info;  // /apis, /apis/<group>: discovery
    info.group = parts[1];
    info.version = parts[2];
    next = 3;
  } else {
    if (parts.size() < 2) return info;  // /api
    info.version = parts[1];
    next = 2;
  }
  parts.erase(parts.begin(), parts.begin() + static_cast<std::ptrdiff_t>(next));
  if (parts.empty()) return info;  // /api/v1, /apis/apps/v1: discovery
  info.is_resource_request = true;
  info.parts = parts;

  // namespaces/<ns>/<resource>... addresses namespaced objects; but "namespaces/<name>" and its
  // own subresources (status, finalize) address the Namespace object itself.
  if (parts[0] == "namespaces" && parts.size() >= 2) {
    info.namespace_ = parts[1];
    if (parts.size() >= 3 && parts[2] != "status" && parts[2] != "finalize") {
      parts.erase(parts.begin(), parts.begin() + 2);
    }
  }
  info.resource = parts[0];
  if (parts.size() >= 2) info.name = parts[1];
  if (parts.size() >= 3) info.subresource = parts[2];

  const QueryParams params(query);
  const std::string http = Lower(method);
  if (http == "get" || http == "head") {
    bool ok = true;
    const bool watch = params.GetBool("watch", false, &ok);
    if (info.name.empty()) {
      info.verb = watch ? "watch" : "list";
    } else {
      info.verb = "get";
    }
    if (parts.size() > 3) info.verb = "get";  // e.g. proxy paths
  } else if (http == "post") {
    info.verb = "create";
  } else if (http == "put") {
    info.verb = "update";
  } else if (http == "patch") {
    info.verb = "patch";
  } else if (http == "delete") {
    info.verb = info.name.empty() ? "deletecollection" : "delete";
  }
  if (info.resource == "namespaces" && !info.name.empty()) {
    info.namespace_.clear();  // cluster-scoped for storage purposes
  }
  return info;
}

}  // namespace mk8s::apiserver
