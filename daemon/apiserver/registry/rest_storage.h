// Generic REST storage for every stored resource: get, list, watch, create, update, patch, delete
// and deletecollection over the store, with reads served from the watch cache.
//
// Threads: Handle() runs on a transport thread and never blocks on disk; writes complete on the
// store's writer thread, and watch events are pushed from the watch cache's dispatcher thread.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "apiserver/api_error.h"
#include "apiserver/http/http_types.h"
#include "apiserver/request_info.h"
#include "apiserver/resources.h"

namespace mk8s::store {
class Store;
}
namespace mk8s::pki {
class JwtSigner;
}

namespace mk8s::apiserver {

class WatchCache;
class TimerQueue;
class Admission;
class KubeletClient;

struct UserInfo {
  std::string name;
  std::string uid;
  std::vector<std::string> groups;
};

// One decoded resource request.
struct RestRequest {
  RequestInfo info;
  const ResourceInfo* resource = nullptr;
  QueryParams query{""};
  http::Request http;
  UserInfo user;
};

// Sends a Status error.
void SendError(http::Responder& responder, const ApiError& error);
// Sends an object (JSON) with the given HTTP status.
void SendJson(http::Responder& responder, int status, std::string body);

class RestStorage {
 public:
  // Pointers are not owned and must outlive this object.
  // `kubelet` (may be null: pods/log then answers 503) proxies to kubelets.
  RestStorage(store::Store* store, WatchCache* cache, TimerQueue* timers, Admission* admission,
              const pki::JwtSigner* token_signer, KubeletClient* kubelet = nullptr);

  void Handle(RestRequest request, std::shared_ptr<http::Responder> responder);

  // Storage keys: /registry/<storage_resource>/[<namespace>/]<name>
  static std::string Key(const ResourceInfo& resource, const std::string& ns,
                         const std::string& name);
  static std::string Prefix(const ResourceInfo& resource, const std::string& ns);

 private:
  void Get(const RestRequest& request, std::shared_ptr<http::Responder> responder);
  void List(const RestRequest& request, std::shared_ptr<http::Responder> responder);
  void Watch(const RestRequest& request, std::shared_ptr<http::Responder> responder);
  void Create(const RestRequest& request, std::shared_ptr<http::Responder> responder);
  void Update(const RestRequest& request, std::shared_ptr<http::Responder> responder);
  void Patch(const RestRequest& request, std::shared_ptr<http::Responder> responder);
  void Delete(const RestRequest& request, std::shared_ptr<http::Responder> responder);
  void DeleteCollection(const RestRequest& request, std::shared_ptr<http::Responder> responder);
  void ScaleSubresource(const RestRequest& request, std::shared_ptr<http::Responder> responder);
  // pods/<name>/eviction, honouring the pod's PodDisruptionBudget (rest_eviction.cc).
  void Evict(const RestRequest& request, std::shared_ptr<http::Responder> responder);
  // serviceaccounts/<name>/token: a TokenRequest answered with a signed JWT.
  void CreateToken(const RestRequest& request, std::shared_ptr<http::Responder> responder);
  // pods/log (proxied to the node's kubelet), exec, attach, portforward, proxy (pod_proxy.cc).
  void ProxyToKubelet(const RestRequest& request, std::shared_ptr<http::Responder> responder);

  // A read-modify-write of one object: read it, `transform` it, then compare-and-swap it back;
  // on a CAS conflict the whole cycle runs again on a fresh read (bounded).
  struct Mutation {
    RestRequest request;
    std::shared_ptr<http::Responder> responder;
    std::string key;
    // Produces the new object from the current one (null when absent). An error ends the request.
    std::function<std::optional<ApiError>(const nlohmann::json* current, nlohmann::json* updated)>
        transform;
    bool create_if_missing = false;
    int attempts = 0;
    // The first cycle reads the watch cache's object; a retry, or a no-op judged on the cache's
    // object (which may lag the store), reads the store.
    bool read_store = false;
    // A resourceVersion the client already saw (an update's precondition): a cached object
    // older than it is known stale, so the store is read at once.
    int64_t seen_revision = 0;
  };
  void RunMutation(std::shared_ptr<Mutation> mutation);
  void FinishDelete(const RestRequest& request, const std::string& key, int64_t revision,
                    std::shared_ptr<http::Responder> responder, nlohmann::json last);

  store::Store* const store_;
  WatchCache* const cache_;
  TimerQueue* const timers_;
  Admission* const admission_;
  const pki::JwtSigner* const token_signer_;
  KubeletClient* const kubelet_;
};

}  // namespace mk8s::apiserver
