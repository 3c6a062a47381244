#include "kubelet/volumes/service_account_token.h"

#include <nlohmann/json.hpp>

namespace mk8s::kubelet::volumes {

using nlohmann::json;

bool TokenCache::NeedsRefresh(TimePoint issued, TimePoint expires, TimePoint now) {
  if (now >= expires) return true;
  if (now - issued > std::chrono::hours(24)) return true;
  const auto lifetime = expires - issued;
  return now >= issued + lifetime * 8 / 10;
}

Result<std::string> TokenCache::Get(client::Client& client, const json& pod,
                                    const std::string& audience, int64_t expiration_seconds,
                                    TimePoint now) {
  const json metadata = pod.value("metadata", json::object());
  const std::string ns = metadata.value("namespace", "");
  const std::string pod_name = metadata.value("name", "");
  const std::string pod_uid = metadata.value("uid", "");
  std::string account = pod.value("/spec/serviceAccountName"_json_pointer, std::string());
  if (account.empty()) account = "default";
  const std::string key =
      pod_uid + "/" + account + "/" + audience + "/" + std::to_string(expiration_seconds);
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(key);
    if (it != entries_.end() && !NeedsRefresh(it->second.issued, it->second.expires, now)) {
      return it->second.token;
    }
  }

  json spec = {{"expirationSeconds", expiration_seconds},
               {"boundObjectRef",
                {{"apiVersion", "v1"}, {"kind", "Pod"}, {"name", pod_name}, {"uid", pod_uid}}}};
  if (!audience.empty()) spec["audiences"] = json::array({audience});
  const json body = {
      {"apiVersion", "authentication.k8s.io/v1"}, {"kind", "TokenRequest"}, {"spec", spec}};
  auto reply = client.CreateSubresource(client::kServiceAccounts, ns, account, "token", body);
  if (!reply.ok()) {
    if (client::IsNotFound(reply.error())) {
      return Status(Code::kNotFound, "serviceaccount \"" + ns + "/" + account + "\" not found");
    }
    return Status(Code::kUnavailable, "cannot get a token for serviceaccount \"" + ns + "/" +
                                          account + "\": " + reply.error().ToString());
  }
  const std::string token = reply->value("/status/token"_json_pointer, std::string());
  if (token.empty()) {
    return Status(Code::kUnavailable, "the TokenRequest for serviceaccount \"" + ns + "/" +
                                          account + "\" returned no token");
  }
  // The server may shorten the lifetime (spec.expirationSeconds of the answer).
  const int64_t granted = reply->value("/spec/expirationSeconds"_json_pointer, expiration_seconds);
  Entry entry{token, now, now + std::chrono::seconds(granted > 0 ? granted : expiration_seconds)};
  std::lock_guard<std::mutex> lock(mu_);
  entries_[key] = std::move(entry);
  return token;
}

void TokenCache::ForgetPod(const std::string& pod_uid) {
  std::lock_guard<std::mutex> lock(mu_);
  const std::string prefix = pod_uid + "/";
  for (auto it = entries_.lower_bound(prefix);
       it != entries_.end() && it->first.rfind(prefix, 0) == 0;) {
    it = entries_.erase(it);
  }
}

size_t TokenCache::size() {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

}  // namespace mk8s::kubelet::volumes
