// Garbage collector: objects whose owners (metadata.ownerReferences) are gone are deleted
// (background propagation); an owner deleted with propagationPolicy=Orphan first has its
// dependents' ownerReferences removed; one deleted with Foreground waits (finalizer
// "foregroundDeletion") until its dependents are gone.
//
// It follows the resources that carry owner references in practice (workloads, pods, and the
// objects controllers derive from them). Keys are "<resource index>|<namespace>/<name>".
// Threads: informer handlers maintain the uid and owner indexes under mu_; workers reconcile.
#pragma once

#include <map>
#include <mutex>
#include <set>
#include <vector>

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
  // True if the owner named by `reference` exists with that uid (cache, then the API server).
  bool OwnerExists(const std::string& ns, const nlohmann::json& reference);
  Status OrphanDependents(const nlohmann::json& owner);
  Status RemoveFinalizer(size_t resource, const nlohmann::json& object, const std::string& name);
  Status RemoveOwnerReferences(size_t resource, const std::string& key,
                               const std::set<std::string>& uids);

  std::vector<client::ResourceRef> resources_;
  std::vector<client::Informer*> informers_;
  std::mutex mu_;
  std::map<std::string, Node> by_uid_;                          // GUARDED_BY(mu_)
  std::map<std::string, std::set<std::string>> dependents_;    // owner uid -> "i|key"; GUARDED_BY(mu_)
};

}  // namespace mk8s::controllers
