// What a request URL means in Kubernetes terms (the upstream RequestInfo idea):
//   /api/v1/namespaces/default/pods/web/log   -> group "", version v1, namespace default,
//                                                resource pods, name web, subresource log
//   /apis/apps/v1/deployments?watch=true      -> group apps, verb watch, all namespaces
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace mk8s::apiserver {

struct RequestInfo {
  bool is_resource_request = false;  // false for /version, /healthz, /api, /openapi/...
  std::string path;
  std::string verb;  // get list watch create update patch delete deletecollection, or the
                     // lower-case HTTP method for non-resource requests
  std::string api_prefix;   // "api" or "apis"
  std::string group;        // "" for core
  std::string version;
  std::string namespace_;   // empty for cluster-scoped or all-namespace requests
  std::string resource;
  std::string subresource;
  std::string name;
  std::vector<std::string> parts;  // the path segments after the group/version
};

// `method` is the HTTP method, `path` the decoded path, `query` the raw query string.
RequestInfo ParseRequestInfo(std::string_view method, std::string_view path,
                             std::string_view query);

// Query parameters, percent-decoded. Repeated keys keep every value in order.
class QueryParams {
 public:
  explicit QueryParams(std::string_view raw);
  // The first value, or `fallback` when absent.
  std::string Get(std::string_view key, std::string_view fallback = {}) const;
  std::vector<std::string> GetAll(std::string_view key) const;
  bool Has(std::string_view key) const;
  // Go's strconv.ParseBool: 1 t T TRUE true True / 0 f F FALSE false False. Absent -> fallback;
  // anything else -> `*ok = false`.
  bool GetBool(std::string_view key, bool fallback, bool* ok = nullptr) const;

 private:
  std::vector<std::pair<std::string, std::string>> params_;
};

}  // namespace mk8s::apiserver
