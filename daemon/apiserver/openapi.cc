#include "apiserver/openapi.h"

#include <openssl/sha.h>

#include <nlohmann/json.hpp>

#include "apiserver/api_error.h"
#include "apiserver/resources.h"
#include "common/version.h"

namespace mk8s::apiserver {
namespace {

using nlohmann::json;

std::string Hash(const std::string& text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (int i = 0; i < 32; ++i) {  // upstream uses a 128-character hash; any stable one works
    out.push_back(kHex[digest[i] >> 4]);
    out.push_back(kHex[digest[i] & 15]);
  }
  return out;
}

json Operation(const ResourceInfo& info, const std::string& description) {
  return {{"description", description},
          {"x-kubernetes-group-version-kind",
           {{"group", info.group}, {"version", info.version}, {"kind", info.kind}}},
          {"parameters", json::array({{{"name", "fieldValidation"}, {"in", "query"},
                                       {"schema", {{"type", "string"}}}},
                                      {{"name", "dryRun"}, {"in", "query"},
                                       {"schema", {{"type", "string"}}}}})},
          {"responses", {{"200", {{"description", "OK"}}}}}};
}

}  // namespace

OpenApi::OpenApi(const ResourceRegistry& registry) {
  json paths_index = json::object();
  for (const std::string& gv : registry.GroupVersions()) {
    const std::string doc_path = gv.find('/') == std::string::npos ? "api/" + gv : "apis/" + gv;
    json paths = json::object();
    for (const ResourceInfo& info : registry.All()) {
      if (info.GroupVersion() != gv) continue;
      const std::string base = "/" + doc_path + (info.namespaced ? "/namespaces/{namespace}/" : "/") +
                               info.resource;
      paths[base] = {{"post", Operation(info, "create a " + info.kind)},
                     {"get", Operation(info, "list " + info.kind + " objects")}};
      paths[base + "/{name}"] = {{"get", Operation(info, "read a " + info.kind)},
                                 {"put", Operation(info, "replace a " + info.kind)},
                                 {"patch", Operation(info, "partially update a " + info.kind)},
                                 {"delete", Operation(info, "delete a " + info.kind)}};
    }
    json document = {{"openapi", "3.0.0"},
                     {"info", {{"title", "Kubernetes"}, {"version", kKubernetesVersion}}},
                     {"paths", std::move(paths)},
                     {"components", {{"schemas", json::object()}}}};
    std::string text = document.dump();
    paths_index[doc_path] = {{"serverRelativeURL", "/openapi/v3/" + doc_path + "?hash=" + Hash(text)}};
    documents_.emplace(doc_path, std::move(text));
  }
  index_ = json{{"paths", std::move(paths_index)}}.dump();
}

std::pair<int, std::string> OpenApi::Serve(std::string_view path) const {
  if (path == "/openapi/v3" || path == "/openapi/v3/") return {200, index_};
  constexpr std::string_view kPrefix = "/openapi/v3/";
  auto it = documents_.find(path.substr(kPrefix.size()));
  if (it == documents_.end()) {
    return {404, ApiError{404, "NotFound", "the server could not find the requested resource"}.ToJson()};
  }
  return {200, it->second};
}

}  // namespace mk8s::apiserver
