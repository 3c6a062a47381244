// TokenCache: service account tokens for projected volumes, requested through the TokenRequest
// subresource (POST serviceaccounts/<name>/token, bound to the pod) and reused until they need a
// refresh, like the upstream kubelet's token manager: after 80% of their lifetime or 24 hours,
// whichever comes first.
//
// Thread-safe (an internal mutex guards the cache; it is not held during the API request).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "client/client.h"
#include "common/status.h"

namespace mk8s::kubelet::volumes {

class TokenCache {
 public:
  using TimePoint = std::chrono::system_clock::time_point;

  // A token for the pod's service account (spec.serviceAccountName, "" = "default") with
  // `audience` ("" = the API server's default audiences) and `expiration_seconds`, bound to the
  // pod. `now`: the caller's wall clock. Errors name the service account:
  //   serviceaccount "ns/builder" not found
  //   cannot get a token for serviceaccount "ns/builder": 503 ServiceUnavailable: ...
  Result<std::string> Get(client::Client& client, const nlohmann::json& pod,
                          const std::string& audience, int64_t expiration_seconds, TimePoint now);
  // Drops the pod's tokens (TearDownPod).
  void ForgetPod(const std::string& pod_uid);
  size_t size();

  static bool NeedsRefresh(TimePoint issued, TimePoint expires, TimePoint now);

 private:
  struct Entry {
    std::string token;
    TimePoint issued;
    TimePoint expires;
  };
  std::mutex mu_;
  // "<pod uid>/<sa>/<audience>/<expiration>" -> token. GUARDED_BY(mu_)
  std::map<std::string, Entry> entries_;
};

}  // namespace mk8s::kubelet::volumes
