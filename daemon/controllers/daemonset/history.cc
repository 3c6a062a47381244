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

}  // namespace

std::string DaemonSetTemplateHash(const json& ds) {
  return PodTemplateHash(ds.value("/spec/template"_json_pointer, json::object()));
}

Result<std::string> SyncDaemonSetHistory(client::Client& api, const client::Informer& revisions,
                                         const json& ds, const std::set<std::string>& live_hashes) {
  const std::string ns = ds["metadata"].value("namespace", "");
  const std::string uid = ds["metadata"].value("uid", "");
  const std::string hash = DaemonSetTemplateHash(ds);
  std::vector<client::ObjectPtr> owned;
  for (const client::ObjectPtr& revision : revisions.ListByNamespace(ns)) {
    const json* owner = ControllerRef(*revision);
    if (owner != nullptr && owner->value("uid", "") == uid) owned.push_back(revision);
  }
  std::sort(owned.begin(), owned.end(), [](const client::ObjectPtr& a, const client::ObjectPtr& b) {
    return (*a).value("revision", int64_t{0}) < (*b).value("revision", int64_t{0});
  });
  const int64_t highest = owned.empty() ? 0 : (*owned.back()).value("revision", int64_t{0});
  client::ObjectPtr current;
  for (const client::ObjectPtr& revision : owned) {
    if (HashOf(*revision) == hash) current = revision;
  }

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
      // Written by an earlier attempt the cache has not seen yet: fine if it is ours.
      auto existing = api.Get(client::kControllerRevisions, ns,
                              revision["metadata"].value("name", ""));
      if (!existing.ok()) return existing.status();
      const json* owner = ControllerRef(*existing);
      if (owner == nullptr || owner->value("uid", "") != uid) {
        return Status(Code::kAlreadyExists, "ControllerRevision " + revision["metadata"].value("name", "") +
                                                " exists and belongs to another owner");
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
  return hash;
}

}  // namespace mk8s::controllers
