// /openapi/v3: the index of group-versions and one document per group-version, built from the
// resource registry and the API schema (daemon/api). Each document carries the paths of its
// resources and, under components.schemas, every schema type reachable from the kinds it serves,
// named as upstream names them ("io.k8s.api.core.v1.Pod"). kubectl uses the documents to learn
// that the server validates fields itself (fieldValidation), for `kubectl explain`, and for the
// patch metadata (x-kubernetes-patch-merge-key / -strategy) of client-side apply.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>

namespace mk8s::api {
class Schema;
class MessageType;
}  // namespace mk8s::api

namespace mk8s::apiserver {

class ResourceRegistry;

class OpenApi {
 public:
  // Builds every document once, from Schema::Builtin().
  explicit OpenApi(const ResourceRegistry& registry);
  OpenApi(const ResourceRegistry& registry, const api::Schema& schema);

  // {status, body} for /openapi/v3 or /openapi/v3/<api|apis/group>/<version>. The index names
  // each document with a `?hash=` of its content; the query string is ignored when serving.
  std::pair<int, std::string> Serve(std::string_view path) const;

  // Size of all documents together and the time taken to build them (for the startup log).
  size_t total_bytes() const { return total_bytes_; }
  int64_t build_micros() const { return build_micros_; }

 private:
  std::string index_;
  std::map<std::string, std::string, std::less<>> documents_;  // "apis/apps/v1" -> document
  size_t total_bytes_ = 0;
  int64_t build_micros_ = 0;
};

// The upstream OpenAPI component name of a schema message ("io.k8s.api.apps.v1.Deployment",
// "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta").
std::string OpenApiComponentName(const api::MessageType& type);

}  // namespace mk8s::apiserver
