#include "controllers/daemonset/history.h"

#include <algorithm>
#include <vector>

#include "controllers/common/pod_util.h"
#include "controllers/common/template_hash.h"

namespace mk8s::controllers {
namespace {

using nlohmann::json;

constexpr const char* kHashLabel = "controller-revision-hash";

std::string HashOf(const json& revision) {
  return revision.value("/metadata/labels"_json_pointer, json::object()).value(kHashLabel, "");
}

// The pod template a revision snapshots (data.spec.template, less the "$patch" directive).
json RevisionTemplate(const json& revision) {
  json pod_template = revision.value("/data/spec/template"_json_pointer, json::object());
  if (pod_template.is_object()) pod_template.erase("$patch");
  return pod_template;
}

}  // namespace

std::string DaemonSetTemplateHash(const json& ds) {
  return PodTemplateHash(ds.value("/spec/template"_json_pointer, json::object()),
                         CollisionCount(ds));
}

Result<CurrentRevision> SyncDaemonSetHistory(client::Client& api, const client::Informer& revisions,
                                             const json& ds,
                                             const std::set<std::string>& live_hashes) {
  const std::string ns = ds["metadata"].value("namespace", "");
  const std::string uid = ds["metadata"].value("uid", "");
  const json ds_template = ds.value("/spec/template"_json_pointer, json::object());
  std::vector<client::ObjectPtr> owned;
  for (const client::ObjectPtr& revision : revisions.ListByNamespace(ns)) {
    const json* owner = ControllerRef(*revision);
    if (owner != nullptr && owner->value("uid", "") == uid) owned.push_back(revision);
  }
  std::sort(owned.begin(), owned.end(), [](const client::ObjectPtr& a, const client::ObjectPtr& b) {
    return (*a).value("revision", int64_t{0}) < (*b).value("revision", int64_t{0});
  });
  const int64_t highest = owned.empty() ? 0 : (*owned.back()).value("revision", int64_t{0});
  // The current revision is the one with this template (not this name: a collisionCount raised
  // since it was made must not roll pods out); its label is the pods' hash.
  client::ObjectPtr current;
  for (const client::ObjectPtr& revision : owned) {
    if (!HashOf(*revision).empty() &&
        EquivalentPodTemplates(RevisionTemplate(*revision), ds_template)) {
      current = revision;
    }
  }
  const std::string hash = current != nullptr ? HashOf(*current) : DaemonSetTemplateHash(ds);

  if (current == nullptr) {
    json template_patch = ds.value("/spec/template"_json_pointer, json::object());
    template_patch["$patch"] = "replace";
    json labels = ds.value("/spec/template/metadata/labels"_json_pointer, json::object());
    labels[kHashLabel] = hash;
    const json revision = {
        {"apiVersion", "apps/v1"},
        {"kind", "ControllerRevision"},
        {"metadata",
         {{"name", ds["metadata"].value("name", "") + "-" + hash},
          {"namespace", ns},
          {"labels", labels},
          {"ownerReferences", json::array({MakeControllerRef(ds)})}}},
        {"data", {{"spec", {{"template", template_patch}}}}},
        {"revision", highest + 1}};
    auto created = api.Create(client::kControllerRevisions, ns, revision);
    if (!created.ok()) {
      if (!client::IsAlreadyExists(created.error())) return created.status();
      // Written by an earlier attempt the cache has not seen yet: fine if it is ours and holds
      // this template. Anything else takes the name: collisionCount goes up, and the reconcile
      // its status event queues makes the revision under a new name.
      const std::string name = revision["metadata"].value("name", "");
      auto existing = api.Get(client::kControllerRevisions, ns, name);
      if (!existing.ok()) return existing.status();  // gone meanwhile: the retry creates it
      const json* owner = ControllerRef(*existing);
      if (owner == nullptr || owner->value("uid", "") != uid ||
          !EquivalentPodTemplates(RevisionTemplate(*existing), ds_template)) {
        if (Status raised = RaiseCollisionCount(api, client::kDaemonSets, ds, name); !raised.ok()) {
          return raised;
        }
        return CurrentRevision{"", true};
      }
    }
  } else if ((*current).value("revision", int64_t{0}) < highest) {
    // A template seen before (a rollback): it becomes the newest revision again.
    json updated = *current;
    updated["revision"] = highest + 1;
    auto written = api.Update(client::kControllerRevisions, updated);
    if (!written.ok() && !client::IsNotFound(written.error())) return written.status();
  }

  // History limit: the oldest unused revisions go first.
  const int64_t limit = ds.value("/spec/revisionHistoryLimit"_json_pointer, int64_t{10});
  std::vector<client::ObjectPtr> old;
  for (const client::ObjectPtr& revision : owned) {
    if (HashOf(*revision) != hash && !live_hashes.count(HashOf(*revision))) old.push_back(revision);
  }
  for (size_t i = 0; static_cast<int64_t>(old.size() - i) > std::max<int64_t>(0, limit); ++i) {
    auto deleted = api.Delete(client::kControllerRevisions, ns,
                              (*old[i])["metadata"].value("name", ""));
    if (!deleted.ok() && !client::IsNotFound(deleted.error())) return deleted.status();
  }
  return CurrentRevision{hash, false};
}

}  // namespace mk8s::controllers
