// SharedInformerFactory: one informer per (resource, namespace, selectors) shared by every
// controller of a process, so a resource is listed and watched once.
//
// Thread-safe. Informers live as long as the factory; Shutdown() (or the destructor) stops them
// all. Call Shutdown() before the transport's server goes away.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>

#include "client/informer.h"

namespace mk8s::client {

class SharedInformerFactory {
 public:
  explicit SharedInformerFactory(std::shared_ptr<Client> client, InformerOptions defaults = {});
  ~SharedInformerFactory();

  // The shared informer for `resource` (created on first use, with `options` overriding the
  // factory defaults' namespace and selectors). Set indexes and handlers before Start().
  Informer* For(const ResourceRef& resource, const std::string& ns = "",
                const std::string& label_selector = "", const std::string& field_selector = "");
  // Starts every informer not yet started (later For() calls need another Start()).
  void Start();
  // Waits until every started informer has synced. False on timeout.
  bool WaitForCacheSync(std::chrono::milliseconds timeout);
  void Shutdown();
  const std::shared_ptr<Client>& client() const { return client_; }

 private:
  using Key = std::tuple<std::string, std::string, std::string, std::string, std::string>;
  std::shared_ptr<Client> client_;
  InformerOptions defaults_;
  std::mutex mu_;
  std::map<Key, std::unique_ptr<Informer>> informers_;  // GUARDED_BY(mu_)
  bool shut_down_ = false;                              // GUARDED_BY(mu_)
};

}  // namespace mk8s::client
