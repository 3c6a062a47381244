// UserInfo: the identity an authenticator hands to the API server (Kubernetes user.Info).
//
// A plain value type; thread-compatible.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace mk8s::pki {

struct UserInfo {
  std::string user;                 // e.g. "admin", "system:node:n1", "system:serviceaccount:ns:sa"
  std::string uid;                  // may be empty
  std::vector<std::string> groups;  // e.g. {"system:masters"}
  std::map<std::string, std::vector<std::string>> extra;  // e.g. pod name/uid of a SA token
};

}  // namespace mk8s::pki
