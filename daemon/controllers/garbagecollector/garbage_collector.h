// Garbage collector: objects whose owners (metadata.ownerReferences) are gone are deleted
// (background propagation); an owner deleted with propagationPolicy=Orphan first has its
// dependents' ownerReferences removed; one deleted with Foreground waits (finalizer
// "foregroundDeletion") until its dependents are gone.
//
// It follows the resources that carry owner references in practice (workloads, pods, and the
// objects controllers derive from them, ControllerRevisions included). An owner of another kind
// is looked up through the API server's discovery mapping of its apiVersion + kind; an owner
// whose kind the server does not serve is never taken as gone (upstream does the same).
// Keys are "<resource index>|<namespace>/<name>".
// Threads: informer handlers maintain the uid and owner indexes under mu_; workers reconcile.
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <vector>

#include "client/rest_mapper.h"
#include "controllers/controller.h"

namespace mk8s::controllers {

class GarbageCollector final : public Controller {
 public:
  explicit GarbageCollector(const ControllerContext& context);
  void Setup() override;

 protected:
  Status Reconcile(const std::string& key) override;

 private:
  struct Node {
    size_t resource = 0;  // index into resources_
    std::string key;      // namespace/name
  };
  void Track(size_t resource, const client::ObjectPtr& object);
  void Untrack(size_t resource, const client::ObjectPtr& object);
  std::vector<Node> DependentsOf(const std::string& uid);
  // Whether the owner named by `reference` exists with that uid (the caches, then the API
  // server). True also when it cannot be looked up because its kind is not served, or it is
  // namespaced and the dependent is not. An error when the server could not answer: retry.
  Result<bool> OwnerExists(const std::string& ns, const nlohmann::json& reference);
  Status OrphanDependents(const nlohmann::json& owner);
  Status RemoveFinalizer(size_t resource, const nlohmann::json& object, const std::string& name);
  Status RemoveOwnerReferences(size_t resource, const std::string& key,
                               const std::set<std::string>& uids);

  std::vector<client::ResourceRef> resources_;
  std::vector<client::Informer*> informers_;
  client::RestMapper mapper_;  // owner apiVersion + kind -> resource (thread-safe)
  std::mutex mu_;
  std::map<std::string, Node> by_uid_;                          // GUARDED_BY(mu_)
  std::map<std::string, std::set<std::string>> dependents_;    // owner uid -> "i|key"; GUARDED_BY(mu_)
};

}  // namespace mk8s::controllers
