// RestMapper: which resource serves an apiVersion + kind (an ownerReference's, say), learned from
// the API server's own discovery documents (GET /api/v1, /apis/<group>/<version>), never guessed
// from the kind's spelling.
//
// Each group version's document is fetched once and cached for the mapper's lifetime; the served
// set changes only when the API server is upgraded, and a controller manager that wins the
// leadership again builds a new mapper. A group version the server answers 404 for is cached as
// serving nothing. Transport and other errors are not cached (the next call asks again).
// Thread-safe; the blocking call must not run on a transport callback thread.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "client/client.h"

namespace mk8s::client {

class RestMapper {
 public:
  // `client`: shared with its other users.
  explicit RestMapper(std::shared_ptr<Client> client);

  struct Mapping {
    bool served = false;   // false: the server serves no resource of this apiVersion + kind
    ResourceRef resource;  // valid when served
  };
  // The resource of `kind` in `api_version` ("v1", "apps/v1"). An ApiError only when discovery
  // could not be read (no answer, 5xx, 403): the caller cannot tell and should retry later.
  ApiResult<Mapping> ResourceFor(const std::string& api_version, const std::string& kind);

 private:
  struct Served {
    std::string kind;
    ResourceRef resource;
  };

  std::shared_ptr<Client> client_;
  std::mutex mu_;
  std::map<std::string, std::vector<Served>> by_group_version_;  // GUARDED_BY(mu_)
};

}  // namespace mk8s::client
