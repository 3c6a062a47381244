#include "controllers/garbagecollector/garbage_collector.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

namespace mk8s::controllers {
namespace {

using nlohmann::json;

std::string NodeKey(size_t resource, const std::string& key) {
  return std::to_string(resource) + "|" + key;
}

bool HasFinalizer(const json& object, const std::string& name) {
  const json finalizers = object.value("/metadata/finalizers"_json_pointer, json::array());
  return std::find(finalizers.begin(), finalizers.end(), name) != finalizers.end();
}

}  // namespace

GarbageCollector::GarbageCollector(const ControllerContext& context)
    : Controller("garbage-collector", context),
      resources_{client::kPods,        client::kReplicaSets, client::kDeployments,
                 client::kStatefulSets, client::kDaemonSets, client::kJobs,
                 client::kCronJobs,    client::kServices,    client::kEndpoints,
                 client::kEndpointSlices, client::kConfigMaps, client::kSecrets,
                 client::kServiceAccounts, client::kControllerRevisions,
                 // Nodes own their kubelets' Leases (kube-node-lease).
                 client::kNodes, client::kLeases},
      mapper_(context.client) {}

namespace {

const nlohmann::json* MetadataField(const nlohmann::json& object, const char* field) {
  auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return nullptr;
  auto it = meta->find(field);
  return it == meta->end() ? nullptr : &*it;
}

bool SameField(const nlohmann::json& a, const nlohmann::json& b, const char* field) {
  const nlohmann::json* x = MetadataField(a, field);
  const nlohmann::json* y = MetadataField(b, field);
  return x == nullptr ? y == nullptr : y != nullptr && *x == *y;
}

// What Track() and Reconcile() act on: the uid, owners, deletion and its finalizers.
bool SameGraphFacts(const nlohmann::json& before, const nlohmann::json& after) {
  return SameField(before, after, "uid") && SameField(before, after, "ownerReferences") &&
         SameField(before, after, "deletionTimestamp") && SameField(before, after, "finalizers");
}

}  // namespace

void GarbageCollector::Setup() {
  for (size_t i = 0; i < resources_.size(); ++i) {
    client::Informer* informer = context_.informers->For(resources_[i]);
    informers_.push_back(informer);
    informer->AddEventHandler(
        {[this, i](const client::ObjectPtr& object) { Track(i, object); },
         [this, i](const client::ObjectPtr& old_object, const client::ObjectPtr& object) {
           // Most updates (status, bindings) change neither the owners nor the deletion: the
           // graph and the verdict stay as they are.
           if (SameGraphFacts(*old_object, *object)) return;
           Untrack(i, old_object);
           Track(i, object);
         },
         [this, i](const client::ObjectPtr& object) {
           Untrack(i, object);
           // Its dependents may have lost their last owner.
           const std::string uid = (*object)["metadata"].value("uid", "");
           for (const Node& dependent : DependentsOf(uid)) {
             Enqueue(NodeKey(dependent.resource, dependent.key));
           }
         }});
  }
}

void GarbageCollector::Track(size_t resource, const client::ObjectPtr& object) {
  const json& metadata = (*object)["metadata"];
  const std::string key = client::ObjectKey(*object);
  bool interesting = metadata.contains("deletionTimestamp");
  {
    std::lock_guard lock(mu_);
    by_uid_[metadata.value("uid", "")] = Node{resource, key};
    if (metadata.contains("ownerReferences")) {
      interesting = true;
      for (const json& reference : metadata["ownerReferences"]) {
        dependents_[reference.value("uid", "")].insert(NodeKey(resource, key));
      }
    }
  }
  if (interesting) Enqueue(NodeKey(resource, key));
}

void GarbageCollector::Untrack(size_t resource, const client::ObjectPtr& object) {
  const json& metadata = (*object)["metadata"];
  const std::string key = client::ObjectKey(*object);
  std::lock_guard lock(mu_);
  by_uid_.erase(metadata.value("uid", ""));
  if (metadata.contains("ownerReferences")) {
    for (const json& reference : metadata["ownerReferences"]) {
      auto it = dependents_.find(reference.value("uid", ""));
      if (it == dependents_.end()) continue;
      it->second.erase(NodeKey(resource, key));
      if (it->second.empty()) dependents_.erase(it);
    }
  }
}

std::vector<GarbageCollector::Node> GarbageCollector::DependentsOf(const std::string& uid) {
  std::vector<Node> nodes;
  std::lock_guard lock(mu_);
  auto it = dependents_.find(uid);
  if (it == dependents_.end()) return nodes;
  for (const std::string& node_key : it->second) {
    const size_t bar = node_key.find('|');
    nodes.push_back(Node{std::stoul(node_key.substr(0, bar)), node_key.substr(bar + 1)});
  }
  return nodes;
}

Result<bool> GarbageCollector::OwnerExists(const std::string& ns, const json& reference) {
  const std::string uid = reference.value("uid", "");
  {
    std::lock_guard lock(mu_);
    if (by_uid_.count(uid)) return true;
  }
  // Not in our caches: it may be a kind we do not follow, or the cache may lag. Ask the server,
  // at the path discovery gives for the owner's kind (a guessed path that the server does not
  // serve answers 404 too, which must not read as "owner gone").
  const std::string api_version = reference.value("apiVersion", "");
  const std::string kind = reference.value("kind", "");
  auto mapping = mapper_.ResourceFor(api_version, kind);
  if (!mapping.ok()) return mapping.status();
  if (!mapping->served) {
    spdlog::debug("garbage collector: owner kind {} {} is not served; its dependents stay",
                  api_version, kind);
    return true;
  }
  // A namespaced owner cannot own a cluster-scoped object: never a reason to delete it.
  if (mapping->resource.namespaced && ns.empty()) return true;
  auto owner = api().Get(mapping->resource, ns, reference.value("name", ""));
  if (!owner.ok()) {
    if (client::IsNotFound(owner.error())) return false;
    return owner.status();
  }
  return (*owner)["metadata"].value("uid", "") == uid;
}

Status GarbageCollector::RemoveOwnerReferences(size_t resource, const std::string& key,
                                               const std::set<std::string>& uids) {
  auto [ns, name] = client::SplitKey(key);
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto fresh = api().Get(resources_[resource], ns, name);
    if (!fresh.ok()) return client::IsNotFound(fresh.error()) ? Status::Ok() : fresh.status();
    json object = *fresh;
    json kept = json::array();
    for (const json& reference : object["metadata"].value("ownerReferences", json::array())) {
      if (!uids.count(reference.value("uid", ""))) kept.push_back(reference);
    }
    if (kept.empty()) {
      object["metadata"].erase("ownerReferences");
    } else {
      object["metadata"]["ownerReferences"] = kept;
    }
    auto updated = api().Update(resources_[resource], object);
    if (updated.ok() || client::IsNotFound(updated.error())) return Status::Ok();
    if (!client::IsConflict(updated.error())) return updated.status();
  }
  return Status(Code::kConflict, "too many conflicts updating " + key);
}

Status GarbageCollector::RemoveFinalizer(size_t resource, const json& object,
                                         const std::string& finalizer) {
  json updated = object;
  json kept = json::array();
  for (const json& f : object["metadata"].value("finalizers", json::array())) {
    if (f != finalizer) kept.push_back(f);
  }
  updated["metadata"]["finalizers"] = kept;
  auto result = api().Update(resources_[resource], updated);
  if (result.ok() || client::IsNotFound(result.error())) return Status::Ok();
  return result.status();  // conflicts retry with backoff
}

Status GarbageCollector::Reconcile(const std::string& node_key) {
  const size_t bar = node_key.find('|');
  const size_t resource = std::stoul(node_key.substr(0, bar));
  const std::string key = node_key.substr(bar + 1);
  client::ObjectPtr object = informers_[resource]->Get(key);
  if (!object) return Status::Ok();
  const json& metadata = (*object)["metadata"];
  const std::string uid = metadata.value("uid", "");

  // An owner being deleted with Orphan or Foreground propagation.
  if (metadata.contains("deletionTimestamp")) {
    if (HasFinalizer(*object, "orphan")) {
      for (const Node& dependent : DependentsOf(uid)) {
        if (Status status = RemoveOwnerReferences(dependent.resource, dependent.key, {uid});
            !status.ok()) {
          return status;
        }
      }
      return RemoveFinalizer(resource, *object, "orphan");
    }
    if (HasFinalizer(*object, "foregroundDeletion")) {
      std::vector<Node> dependents = DependentsOf(uid);
      if (dependents.empty()) return RemoveFinalizer(resource, *object, "foregroundDeletion");
      for (const Node& dependent : dependents) {
        client::ObjectPtr child = informers_[dependent.resource]->Get(dependent.key);
        if (!child || (*child).contains("/metadata/deletionTimestamp"_json_pointer)) continue;
        auto [ns, name] = client::SplitKey(dependent.key);
        client::DeleteOptions options;
        options.propagation_policy = "Foreground";
        auto deleted = api().Delete(resources_[dependent.resource], ns, name, options);
        if (!deleted.ok() && !client::IsNotFound(deleted.error())) return deleted.status();
      }
      EnqueueAfter(node_key, std::chrono::milliseconds(500));
      return Status::Ok();
    }
  }

  // A dependent: does it still have an owner?
  if (!metadata.contains("ownerReferences") || metadata["ownerReferences"].empty()) {
    return Status::Ok();
  }
  const std::string ns = metadata.value("namespace", "");
  std::set<std::string> missing;
  size_t owners = 0;
  for (const json& reference : metadata["ownerReferences"]) {
    ++owners;
    Result<bool> exists = OwnerExists(ns, reference);
    if (!exists.ok()) return exists.status();  // the server could not tell: retry with backoff
    if (!*exists) missing.insert(reference.value("uid", ""));
  }
  if (missing.empty()) return Status::Ok();
  auto [object_ns, name] = client::SplitKey(key);
  if (missing.size() == owners) {
    if (metadata.contains("deletionTimestamp")) return Status::Ok();  // already going
    client::DeleteOptions options;
    options.propagation_policy = "Background";
    options.precondition_uid = uid;
    auto deleted = api().Delete(resources_[resource], object_ns, name, options);
    if (!deleted.ok() && !client::IsNotFound(deleted.error()) &&
        !client::IsConflict(deleted.error())) {
      return deleted.status();
    }
    spdlog::debug("garbage collector: deleted {} {} (its owners are gone)",
                  resources_[resource].Name(), key);
    return Status::Ok();
  }
  return RemoveOwnerReferences(resource, key, missing);
}

}  // namespace mk8s::controllers
