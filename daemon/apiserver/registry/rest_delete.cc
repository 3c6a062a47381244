// RestStorage delete verbs: delete (finalizers, propagation policy, graceful pod deletion,
// Terminating namespaces) and deletecollection. Both go through RunMutation (rest_write.cc), so a
// delete is a compare-and-swap like every other write.
#include <algorithm>
#include <mutex>

#include "apiserver/registry/object_meta.h"
#include "apiserver/registry/priority_admission.h"
#include "apiserver/registry/rest_storage.h"
#include "apiserver/registry/watch_cache.h"
#include "apiserver/registry/write_util.h"
#include "apiserver/selectors.h"

namespace mk8s::apiserver {

using nlohmann::json;

void RestStorage::Delete(const RestRequest& request, std::shared_ptr<http::Responder> responder) {
  const ResourceInfo& resource = *request.resource;
  if (resource.resource == "priorityclasses" && IsSystemPriorityClass(request.info.name)) {
    return SendError(*responder, ApiError::Forbidden(
                                     "priorityclasses.scheduling.k8s.io \"" + request.info.name +
                                     "\" is forbidden: this is a system priority class and "
                                     "cannot be deleted"));
  }
  json options = json::object();
  if (!request.http.body.empty()) {
    options = json::parse(request.http.body, nullptr, false);
    if (!options.is_object())
      return SendError(*responder, ApiError::BadRequest("DeleteOptions must be a JSON object"));
  }
  if (request.query.Has("gracePeriodSeconds")) {
    try {
      options["gracePeriodSeconds"] = std::stoll(request.query.Get("gracePeriodSeconds"));
    } catch (...) {
      return SendError(*responder, ApiError::BadRequest("gracePeriodSeconds must be an integer"));
    }
  }
  if (request.query.Has("propagationPolicy"))
    options["propagationPolicy"] = request.query.Get("propagationPolicy");
  const std::string policy =
      options.value("propagationPolicy", options.value("orphanDependents", false) ? "Orphan" : "");
  if (!policy.empty() && policy != "Orphan" && policy != "Background" && policy != "Foreground") {
    return SendError(*responder,
                     ApiError::BadRequest("invalid propagationPolicy \"" + policy + "\""));
  }
  auto m = std::make_shared<Mutation>();
  m->request = request;
  m->responder = responder;
  m->key = Key(resource, request.info.namespace_, request.info.name);
  m->transform = [options, policy](const json* current, json* updated) -> std::optional<ApiError> {
    const json& meta = (*current)["metadata"];
    if (options.contains("/preconditions/uid"_json_pointer) &&
        options.at("/preconditions/uid"_json_pointer) != meta.value("uid", "")) {
      return ApiError{409, "Conflict",
                      "Precondition failed: UID in precondition: " +
                          options.at("/preconditions/uid"_json_pointer).dump() +
                          ", UID in object meta: " + meta.value("uid", "")};
    }
    if (options.contains("/preconditions/resourceVersion"_json_pointer) &&
        options.at("/preconditions/resourceVersion"_json_pointer) !=
            meta.value("resourceVersion", "")) {
      return ApiError{409, "Conflict",
                      "Precondition failed: resourceVersion in precondition does "
                      "not match the object"};
    }
    *updated = *current;
    json& new_meta = (*updated)["metadata"];
    json finalizers = new_meta.value("finalizers", json::array());
    auto add_finalizer = [&](const char* name) {
      if (std::find(finalizers.begin(), finalizers.end(), name) == finalizers.end())
        finalizers.push_back(name);
    };
    if (policy == "Foreground") add_finalizer("foregroundDeletion");
    if (policy == "Orphan") add_finalizer("orphan");
    // A namespace with spec.finalizers turns Terminating; the namespace controller deletes its
    // contents and then finalizes it.
    if ((*current).value("kind", "") == "Namespace" && FinalizersPending(*current)) {
      if (!new_meta.contains("deletionTimestamp")) {
        new_meta["deletionTimestamp"] = FormatTime(std::chrono::system_clock::now());
        new_meta["deletionGracePeriodSeconds"] = 0;
      }
      if (!finalizers.empty()) new_meta["finalizers"] = finalizers;
      (*updated)["status"]["phase"] = "Terminating";
      return std::nullopt;
    }
    // Pods on a node end gracefully: the kubelet stops them, then deletes with grace 0.
    int64_t grace = options.value("gracePeriodSeconds", int64_t{-1});
    const bool pod_on_node =
        (*current).value("kind", "") == "Pod" &&
        !(*current).value("/spec/nodeName"_json_pointer, std::string()).empty() &&
        (*current).value("/status/phase"_json_pointer, std::string()) != "Succeeded" &&
        (*current).value("/status/phase"_json_pointer, std::string()) != "Failed";
    if (pod_on_node && grace < 0)
      grace = (*current).value("/spec/terminationGracePeriodSeconds"_json_pointer, 30);
    if (!pod_on_node) grace = 0;
    const bool graceful = grace > 0 && pod_on_node;
    if (!finalizers.empty() || graceful) {
      if (!new_meta.contains("deletionTimestamp")) {
        new_meta["deletionTimestamp"] = FormatTime(std::chrono::system_clock::now() +
                                                   std::chrono::seconds(graceful ? grace : 0));
        new_meta["deletionGracePeriodSeconds"] = graceful ? grace : 0;
      } else if (graceful && grace < new_meta.value("deletionGracePeriodSeconds", grace)) {
        new_meta["deletionGracePeriodSeconds"] = grace;  // a shorter grace period wins
      }
      new_meta["finalizers"] = finalizers;
      if (!graceful && finalizers.empty()) new_meta.erase("finalizers");
      // Keep it: finalizers or the kubelet finish the deletion.
      if (!finalizers.empty() || graceful) {
        if (finalizers.empty()) new_meta.erase("finalizers");
        return std::nullopt;
      }
    }
    // No finalizers and nothing graceful: delete now (RunMutation sees the empty finalizers).
    new_meta["deletionTimestamp"] = FormatTime(std::chrono::system_clock::now());
    new_meta["deletionGracePeriodSeconds"] = 0;
    new_meta.erase("finalizers");
    return std::nullopt;
  };
  RunMutation(m);
}

void RestStorage::DeleteCollection(const RestRequest& request,
                                   std::shared_ptr<http::Responder> responder) {
  const ResourceInfo& resource = *request.resource;
  auto labels = LabelSelector::Parse(request.query.Get("labelSelector"));
  if (!labels.ok()) return SendError(*responder, ApiError::BadRequest(labels.status().message()));
  auto fields = FieldSelector::Parse(request.query.Get("fieldSelector"));
  if (!fields.ok()) return SendError(*responder, ApiError::BadRequest(fields.status().message()));
  WatchCache::Snapshot snapshot = cache_->List(Prefix(resource, request.info.namespace_));
  std::vector<std::string> names;
  for (const auto& item : snapshot.items) {
    const json& object = item->object();
    const json labels_json = object.value("/metadata/labels"_json_pointer, json::object());
    if (labels->Matches(labels_json) && fields->Matches(object)) {
      names.push_back(object["metadata"].value("name", ""));
    }
  }
  // Delete each one; answer once all are done, with the list of what was deleted.
  struct Collector final : http::Responder {
    std::mutex mu;
    size_t remaining = 0;
    json items = json::array();
    std::shared_ptr<http::Responder> inner;
    std::string list_kind, api_version;
    void Send(http::Response response) override {
      std::lock_guard lock(mu);
      if (response.status < 300) {
        json object = json::parse(response.body, nullptr, false);
        if (object.is_object()) items.push_back(std::move(object));
      }
      if (--remaining == 0) {
        inner->Send(http::Response{200,
                                   "application/json",
                                   {},
                                   Dump(json{{"kind", list_kind},
                                             {"apiVersion", api_version},
                                             {"metadata", json::object()},
                                             {"items", items}})});
      }
    }
    std::shared_ptr<http::ResponseStream> StartStream(int, std::string,
                                                      std::vector<http::Header>) override {
      return nullptr;
    }
  };
  auto collector = std::make_shared<Collector>();
  collector->inner = responder;
  collector->list_kind = resource.kind + "List";
  collector->api_version = resource.GroupVersion();
  collector->remaining = names.size();
  if (names.empty()) {
    return SendJson(*responder, 200,
                    Dump(json{{"kind", collector->list_kind},
                              {"apiVersion", collector->api_version},
                              {"metadata", json::object()},
                              {"items", json::array()}}));
  }
  for (const std::string& name : names) {
    RestRequest one = request;
    one.info.name = name;
    one.info.verb = "delete";
    Delete(one, collector);
  }
}

}  // namespace mk8s::apiserver
