#include "client/resources.h"

namespace mk8s::client {

std::string ResourceRef::GroupVersionPath() const {
  return group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
}

std::string ResourceRef::Path(std::string_view ns, std::string_view name,
                              std::string_view subresource) const {
  std::string path = GroupVersionPath();
  if (namespaced && !ns.empty()) {
    path += "/namespaces/";
    path += ns;
  }
  path += "/";
  path += resource;
  if (!name.empty()) {
    path += "/";
    path += name;
    if (!subresource.empty()) {
      path += "/";
      path += subresource;
    }
  }
  return path;
}

}  // namespace mk8s::client
