// /openapi/v3: the index of group-versions and one document per group-version, built from the
// resource registry. kubectl uses it to learn that the server validates fields itself
// (fieldValidation), so `apply`/`create -f`/`replace -f` validate strictly on the server.
#pragma once

#include <map>
#include <string>
#include <string_view>
#include <utility>

namespace mk8s::apiserver {

class ResourceRegistry;

class OpenApi {
 public:
  explicit OpenApi(const ResourceRegistry& registry);
  // {status, body} for /openapi/v3 or /openapi/v3/<api|apis/group>/<version>.
  std::pair<int, std::string> Serve(std::string_view path) const;

 private:
  std::string index_;
  std::map<std::string, std::string, std::less<>> documents_;  // "apis/apps/v1" -> document
};

}  // namespace mk8s::apiserver
