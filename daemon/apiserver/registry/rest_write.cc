// RestStorage write verbs: create, update, patch and the scale subresource (delete and
// deletecollection: rest_delete.cc). Every write is a compare-and-swap against the revision that
// was read, so concurrent writers never lose each other's changes; read-modify-write verbs retry
// on conflict.
#include <spdlog/spdlog.h>

#include "apiserver/body_codec.h"
#include "apiserver/patch.h"
#include "apiserver/registry/admission.h"
#include "apiserver/registry/cached_object.h"
#include "apiserver/registry/conversion.h"
#include "apiserver/registry/object_meta.h"
#include "apiserver/registry/rest_storage.h"
#include "apiserver/registry/stored_bytes.h"
#include "apiserver/registry/write_util.h"
#include "apiserver/registry/watch_cache.h"
#include "apiserver/selectors.h"
#include "store/store.h"

namespace mk8s::apiserver {
namespace {

using nlohmann::json;

constexpr int kMaxConflictRetries = 8;

// The stored form: everything but the resourceVersion (the store's mod revision is the truth).
std::string StoredForm(json object) {
  if (object.contains("metadata") && object["metadata"].is_object()) {
    object["metadata"].erase("resourceVersion");
  }
  return Dump(object);
}

bool DryRun(const RestRequest& request) {
  for (const std::string& value : request.query.GetAll("dryRun")) {
    if (value == "All") return true;
  }
  return false;
}

std::optional<ApiError> CheckTypeMeta(const RestRequest& request, json& object) {
  const ResourceInfo& resource = *request.resource;
  const std::string want_version = resource.GroupVersion();
  const std::string version = object.value("apiVersion", "");
  const std::string kind = object.value("kind", "");
  if (!version.empty() && version != want_version) {
    return ApiError::BadRequest("the API version in the data (" + version +
                                ") does not match the expected API version (" + want_version + ")");
  }
  if (!kind.empty() && kind != resource.kind) {
    return ApiError::BadRequest("the kind in the data (" + kind +
                                ") does not match the expected kind (" + resource.kind + ")");
  }
  object["apiVersion"] = want_version;
  object["kind"] = resource.kind;
  if (!object.contains("metadata") || object["metadata"].is_null()) object["metadata"] = json::object();
  if (!object["metadata"].is_object()) return ApiError::BadRequest("metadata must be an object");
  json& metadata = object["metadata"];
  const std::string ns = metadata.value("namespace", "");
  if (resource.namespaced) {
    if (!ns.empty() && ns != request.info.namespace_) {
      return ApiError::BadRequest("the namespace of the provided object does not match the "
                                  "namespace sent on the request");
    }
    metadata["namespace"] = request.info.namespace_;
  } else {
    metadata.erase("namespace");
  }
  return std::nullopt;
}

// Whether the objects differ in anything but metadata and status (a change there bumps
// metadata.generation). Compared in place, key by key (object keys are sorted): no copies.
bool SpecPartChanged(const json& a, const json& b) {
  if (!a.is_object() || !b.is_object()) return a != b;
  const auto skipped = [](const std::string& key) { return key == "metadata" || key == "status"; };
  auto ia = a.begin(), ib = b.begin();
  while (true) {
    while (ia != a.end() && skipped(ia.key())) ++ia;
    while (ib != b.end() && skipped(ib.key())) ++ib;
    if (ia == a.end() || ib == b.end()) return (ia == a.end()) != (ib == b.end());
    if (ia.key() != ib.key() || *ia != *ib) return true;
    ++ia;
    ++ib;
  }
}

// Go's typed decoding (body_codec.h): wrong types are a 400 before validation or admission.
std::optional<ApiError> CheckTypes(const ResourceInfo& resource, json& object) {
  return CheckBodyTypes(resource.group, resource.version, resource.kind, object);
}

bool HasStatusSubresource(const ResourceInfo& resource) {
  return resource.FindSubresource("status") != nullptr;
}

// Replies with the stored object as `resource` serves it, stamped with its new revision.
void SendCreated(const ResourceInfo& resource, http::Responder& responder, json object,
                 int64_t revision, int code) {
  object["metadata"]["resourceVersion"] = std::to_string(revision);
  SendJson(responder, code, Dump(ToServed(resource, object)));
}

ApiError FromStoreStatus(const ResourceInfo& resource, const Status& status,
                         const std::string& name) {
  switch (status.code()) {
    case Code::kAlreadyExists: return ApiError::AlreadyExists(resource.group, resource.resource, name);
    case Code::kNotFound: return ApiError::NotFound(resource.group, resource.resource, name);
    case Code::kConflict:
      return ApiError::Conflict(resource.group, resource.resource, name,
                                "the object has been modified; please apply your changes to the "
                                "latest version and try again");
    default: return ApiError::Internal(status.message());
  }
}

ApiError FromStoreStatus(const RestRequest& request, const Status& status, const std::string& name) {
  return FromStoreStatus(*request.resource, status, name);
}

// Whether a write's callback needs the object beside its stored bytes: for a reply in another
// shape than the stored bytes, or to release a Service's allocations when the write fails.
bool KeepsObject(const ResourceInfo& resource, const StoredBytes& stored) {
  return NeedsConversion(resource) || stored.rv_offset == std::string::npos ||
         resource.resource == "services";
}

bool StrictValidation(const RestRequest& request) {
  return request.query.Get("fieldValidation") == "Strict";
}

}  // namespace

void RestStorage::Create(const RestRequest& request, std::shared_ptr<http::Responder> responder) {
  const ResourceInfo& resource = *request.resource;
  if (StrictValidation(request)) {
    if (auto error = CheckStrictFields(request.http.HeaderValue("content-type"), request.http.body,
                                       resource.group, resource.version, resource.kind)) {
      return SendError(*responder, *error);
    }
  }
  json object;
  if (auto error = DecodeBody(request.http.HeaderValue("content-type"), request.http.body, &object)) {
    return SendError(*responder, *error);
  }
  if (auto error = CheckTypeMeta(request, object)) return SendError(*responder, *error);
  if (auto error = CheckTypes(resource, object)) return SendError(*responder, *error);
  json& metadata = object["metadata"];
  std::string name = metadata.value("name", "");
  if (name.empty() && metadata.contains("generateName")) {
    name = GenerateName(metadata.value("generateName", ""));
    metadata["name"] = name;
  }
  std::vector<StatusCause> causes;
  ValidateName(resource, name, &causes);
  ValidateMetadata(metadata, &causes);
  if (!causes.empty()) {
    return SendError(*responder, ApiError::Invalid(resource.group, resource.kind, name, causes));
  }
  if (resource.namespaced) {
    const std::string ns_key = "/registry/namespaces/" + request.info.namespace_;
    CachedObjectPtr cached_ns = cache_->Get(ns_key);
    json live_ns;
    const json* ns = cached_ns ? &cached_ns->object() : nullptr;
    if (ns == nullptr) {
      // The cache may lag a namespace created a moment ago (`kubectl create ns x && kubectl
      // apply -n x`): ask the store before answering 404, as upstream's lister fallback does.
      if (Result<store::KeyValue> kv = store_->Get(ns_key); kv.ok()) {
        live_ns = ParseStoredObject(kv->value, kv->mod_rev);
        if (live_ns.is_object()) ns = &live_ns;
      }
    }
    if (ns == nullptr) {
      return SendError(*responder, ApiError::NotFound("", "namespaces", request.info.namespace_));
    }
    if (ns->contains("/metadata/deletionTimestamp"_json_pointer)) {
      return SendError(*responder,
                       ApiError::Forbidden(resource.resource + " \"" + name +
                                           "\" is forbidden: unable to create new content in "
                                           "namespace " + request.info.namespace_ +
                                           " because it is being terminated"));
    }
  }
  metadata.erase("resourceVersion");
  metadata.erase("deletionTimestamp");
  metadata.erase("deletionGracePeriodSeconds");
  metadata.erase("managedFields");
  metadata.erase("selfLink");
  metadata["uid"] = NewUid();
  metadata["creationTimestamp"] = FormatTime(std::chrono::system_clock::now());
  if (object.contains("spec")) metadata["generation"] = 1;
  if (auto error = admission_->AdmitCreate(resource, object, &request.user)) {
    return SendError(*responder, *error);
  }

  if (DryRun(request)) {
    admission_->Release(resource, object);
    return SendJson(*responder, 201, Dump(object));
  }
  if (NeedsConversion(resource)) object = ToStored(resource, object);
  object["metadata"].erase("resourceVersion");
  // Serialized once: the store gets these bytes and the reply is them with the new revision
  // spliced in, so the writer thread's callback only copies bytes. The parsed object and these
  // bytes go to the watch cache (handoff), so its dispatcher need not parse the bytes again and
  // its watchers' text is spliced from them, not dumped again.
  auto stored = std::make_shared<const StoredBytes>(SerializeStored(object));
  const std::string key = Key(resource, request.info.namespace_, name);
  json kept;  // what the callback still needs the object for: a converted reply, a Release
  if (KeepsObject(resource, *stored)) kept = object;
  const uint64_t ticket = cache_->handoff().Offer(key, stored, std::move(object));
  store_->CreateAsync(
      key, stored->bytes,
      [this, resource = &resource, responder, stored, name, key, ticket,
       object = std::move(kept)](store::WriteOutcome outcome) mutable {
        if (!outcome.status.ok()) {
          cache_->handoff().Withdraw(key, ticket);
          admission_->Release(*resource, object);
          return SendError(*responder, FromStoreStatus(*resource, outcome.status, name));
        }
        if (NeedsConversion(*resource) || stored->rv_offset == std::string::npos) {
          return SendCreated(*resource, *responder, std::move(object), outcome.result.revision,
                             201);
        }
        SendJson(*responder, 201, stored->WithResourceVersion(outcome.result.revision));
      });
}

void RestStorage::RunMutation(std::shared_ptr<Mutation> m) {
  const ResourceInfo& resource = *m->request.resource;
  const std::string& name = m->request.info.name;
  // The first cycle works on the watch cache's object: no store read, no parse, no copy. The
  // cache may lag the store: a CAS on a stale revision then fails (kConflict, or kNotFound when
  // the object is gone) and the retry reads the store, and a no-op judged on the cache's object
  // is judged again on the store's (as upstream's GuaranteedUpdate does with its cache). An
  // object the cache does not have is looked up in the store.
  CachedObjectPtr cached = m->read_store ? nullptr : cache_->Get(m->key);
  if (cached && (!cached->object().is_object() || cached->revision() < m->seen_revision)) {
    cached = nullptr;
  }
  json read;  // the store's version, when it was read from the store
  const json* current = nullptr;
  int64_t current_revision = 0;
  if (cached) {
    current = &cached->object();
    current_revision = cached->revision();
  } else {
    Result<store::KeyValue> kv = store_->Get(m->key);
    if (kv.ok()) {
      read = ParseStoredObject(kv->value, kv->mod_rev);
      if (read.is_null()) return SendError(*m->responder, ApiError::Internal("stored object is corrupt"));
      current = &read;
      current_revision = kv->mod_rev;
    } else if (kv.status().code() != Code::kNotFound) {
      return SendError(*m->responder, ApiError::Internal(kv.status().message()));
    } else if (!m->create_if_missing) {
      return SendError(*m->responder, ApiError::NotFound(resource.group, resource.resource, name));
    }
  }
  const bool from_cache = cached != nullptr;
  // Transforms see the object as this resource serves it; the store keeps the stored form.
  json served;
  if (current != nullptr && NeedsConversion(resource)) served = ToServed(resource, *current);
  json updated;
  if (auto error = m->transform(served.is_null() ? current : &served, &updated)) {
    // Judged on a cached object that may lag (a resourceVersion precondition the client took
    // from a write the cache has not seen yet): judge again on the store's version.
    if (from_cache) {
      m->read_store = true;
      return RunMutation(m);
    }
    return SendError(*m->responder, *error);
  }
  if (NeedsConversion(resource)) updated = ToStored(resource, updated);
  if (current_revision == 0) {  // create through apply/update
    if (DryRun(m->request)) return SendJson(*m->responder, 201, Dump(updated));
    store_->CreateAsync(m->key, StoredForm(updated),
                        [this, m, updated](store::WriteOutcome outcome) mutable {
                          if (outcome.status.code() == Code::kAlreadyExists &&
                              ++m->attempts < kMaxConflictRetries) {
                            return RunMutation(m);
                          }
                          if (!outcome.status.ok()) {
                            admission_->Release(*m->request.resource, updated);
                            return SendError(*m->responder,
                                             FromStoreStatus(m->request, outcome.status,
                                                             m->request.info.name));
                          }
                          SendCreated(*m->request.resource, *m->responder, std::move(updated), outcome.result.revision, 201);
                        });
    return;
  }
  if (DryRun(m->request)) return SendJson(*m->responder, 200, Dump(updated));
  if (!updated.is_object() || !updated["metadata"].is_object()) {
    return SendError(*m->responder, ApiError::BadRequest("metadata must be an object"));
  }
  // A write that changes nothing is not a write: no new revision, no watch event. Compared in
  // place (the resourceVersion set to the current one, then dropped for the stored form).
  updated["metadata"]["resourceVersion"] = (*current)["metadata"]["resourceVersion"];
  const bool unchanged = updated == *current;
  updated["metadata"].erase("resourceVersion");
  if (unchanged) {
    if (from_cache) {
      m->read_store = true;
      return RunMutation(m);
    }
    return SendCreated(resource, *m->responder, std::move(read), current_revision, 200);
  }
  // Past a retry, every cycle reads the store.
  auto retry = [this](const std::shared_ptr<Mutation>& mutation) {
    mutation->read_store = true;
    RunMutation(mutation);
  };
  // Whether a failed CAS is worth another cycle: a conflict, or a cached object that is gone.
  auto retryable = [from_cache](const Status& status) {
    return status.code() == Code::kConflict || (from_cache && status.code() == Code::kNotFound);
  };
  // An object being deleted whose last finalizer is gone leaves the store.
  // A pod in graceful deletion (deletionGracePeriodSeconds > 0) stays until its kubelet has
  // stopped it and deletes it with grace 0.
  const bool graceful_pod = updated.value("kind", "") == "Pod" &&
                            updated["metadata"].value("deletionGracePeriodSeconds", int64_t{0}) > 0;
  const bool finished = updated.contains("/metadata/deletionTimestamp"_json_pointer) &&
                        !FinalizersPending(updated) && !graceful_pod;
  if (finished) {
    store_->DeleteAsync(m->key, current_revision,
                        [this, m, retry, retryable,
                         updated = std::move(updated)](store::WriteOutcome outcome) mutable {
                          if (retryable(outcome.status) && ++m->attempts < kMaxConflictRetries) {
                            return retry(m);
                          }
                          if (!outcome.status.ok()) {
                            return SendError(*m->responder,
                                             FromStoreStatus(m->request, outcome.status,
                                                             m->request.info.name));
                          }
                          admission_->Release(*m->request.resource, updated);
                          SendCreated(*m->request.resource, *m->responder, std::move(updated), outcome.result.revision, 200);
                        });
    return;
  }
  // As in Create: serialized once, the reply spliced from the bytes, the object handed over.
  auto stored = std::make_shared<const StoredBytes>(SerializeStored(updated));
  json kept;
  if (KeepsObject(resource, *stored)) kept = updated;
  const uint64_t ticket = cache_->handoff().Offer(m->key, stored, std::move(updated));
  store_->UpdateAsync(m->key, stored->bytes, current_revision,
                      [this, m, retry, retryable, stored, ticket,
                       updated = std::move(kept)](store::WriteOutcome outcome) mutable {
                        if (!outcome.status.ok()) cache_->handoff().Withdraw(m->key, ticket);
                        if (retryable(outcome.status) && ++m->attempts < kMaxConflictRetries) {
                          return retry(m);  // re-read and re-apply on the fresh object
                        }
                        if (!outcome.status.ok()) {
                          return SendError(*m->responder,
                                           FromStoreStatus(m->request, outcome.status,
                                                           m->request.info.name));
                        }
                        const ResourceInfo& resource = *m->request.resource;
                        if (NeedsConversion(resource) || stored->rv_offset == std::string::npos) {
                          return SendCreated(resource, *m->responder, std::move(updated),
                                             outcome.result.revision, 200);
                        }
                        SendJson(*m->responder, 200,
                                 stored->WithResourceVersion(outcome.result.revision));
                      });
}

// Turns a client's full object into the stored object for an update of `current`.
static std::optional<ApiError> MergeUpdate(const RestRequest& request, Admission& admission,
                                           const json& current, json incoming, json* updated) {
  const ResourceInfo& resource = *request.resource;
  if (auto error = CheckTypeMeta(request, incoming)) return error;
  if (auto error = CheckTypes(resource, incoming)) return error;
  json& metadata = incoming["metadata"];
  const std::string name = metadata.value("name", "");
  if (!name.empty() && name != request.info.name) {
    return ApiError::BadRequest("the name of the object (" + name +
                                ") does not match the name on the URL (" + request.info.name + ")");
  }
  // Optimistic concurrency: a resourceVersion in the body must be the stored one.
  const std::string rv = metadata.value("resourceVersion", "");
  const std::string current_rv = current["metadata"].value("resourceVersion", "");
  if (!rv.empty() && rv != current_rv) {
    return ApiError::Conflict(resource.group, resource.resource, request.info.name,
                              "the object has been modified; please apply your changes to the "
                              "latest version and try again");
  }
  // A uid in the body is a precondition too: an object deleted and created again under the same
  // name is not the one the client read (upstream's "Precondition failed").
  const std::string uid = metadata.value("uid", "");
  const std::string current_uid = current["metadata"].value("uid", "");
  if (!uid.empty() && uid != current_uid) {
    return ApiError::Conflict(resource.group, resource.resource, request.info.name,
                              "Precondition failed: UID in precondition: " + uid +
                                  ", UID in object meta: " + current_uid);
  }
  const std::string& subresource = request.info.subresource;
  json result;
  // CertificateSigningRequests' /approval writes conditions only (admission keeps the rest).
  if (subresource == "status" || subresource == "approval") {
    result = current;
    result["status"] = incoming.value("status", json::object());
  } else {
    result = std::move(incoming);
    json& meta = result["metadata"];
    meta["name"] = request.info.name;
    for (const char* kept : {"uid", "creationTimestamp", "deletionTimestamp",
                             "deletionGracePeriodSeconds", "generation"}) {
      if (current["metadata"].contains(kept)) {
        meta[kept] = current["metadata"][kept];
      } else {
        meta.erase(kept);
      }
    }
    meta.erase("managedFields");
    if (HasStatusSubresource(resource)) {
      if (current.contains("status")) {
        result["status"] = current["status"];
      } else {
        result.erase("status");
      }
    }
    // spec.finalizers of a Namespace change only through namespaces/<name>/finalize.
    if (resource.resource == "namespaces" && subresource != "finalize" && current.contains("spec")) {
      result["spec"] = current["spec"];
    }
    if (current.contains("spec") && SpecPartChanged(result, current)) {
      meta["generation"] = current["metadata"].value("generation", 0) + 1;
    }
  }
  std::vector<StatusCause> causes;
  ValidateMetadata(result["metadata"], &causes);
  if (!causes.empty()) return ApiError::Invalid(resource.group, resource.kind, request.info.name, causes);
  if (auto error = admission.AdmitUpdate(resource, result, current, subresource)) return error;
  *updated = std::move(result);
  return std::nullopt;
}

void RestStorage::Update(const RestRequest& request, std::shared_ptr<http::Responder> responder) {
  const ResourceInfo& resource = *request.resource;
  if (StrictValidation(request) && request.info.subresource.empty()) {
    if (auto error = CheckStrictFields(request.http.HeaderValue("content-type"), request.http.body,
                                       resource.group, resource.version, resource.kind)) {
      return SendError(*responder, *error);
    }
  }
  json incoming;
  if (auto error = DecodeBody(request.http.HeaderValue("content-type"), request.http.body, &incoming)) {
    return SendError(*responder, *error);
  }
  if (request.info.subresource == "scale") return ScaleSubresource(request, responder);
  auto m = std::make_shared<Mutation>();
  m->request = request;
  m->responder = std::move(responder);
  m->key = Key(*request.resource, request.info.namespace_, request.info.name);
  if (incoming.is_object() && incoming.contains("/metadata/resourceVersion"_json_pointer)) {
    const json& rv = incoming.at("/metadata/resourceVersion"_json_pointer);
    const std::string* text = rv.is_string() ? rv.get_ptr<const std::string*>() : nullptr;
    if (text != nullptr && !text->empty() && text->size() < 19 &&
        text->find_first_not_of("0123456789") == std::string::npos) {
      m->seen_revision = std::stoll(*text);
    }
  }
  m->transform = [this, m_request = &m->request, incoming](const json* current, json* updated) {
    return MergeUpdate(*m_request, *admission_, *current, incoming, updated);
  };
  RunMutation(m);
}

void RestStorage::Patch(const RestRequest& request, std::shared_ptr<http::Responder> responder) {
  auto type = PatchTypeFromContentType(request.http.HeaderValue("content-type"));
  if (!type) {
    return SendError(*responder,
                     ApiError::UnsupportedMediaType(std::string(request.http.HeaderValue("content-type"))));
  }
  if (request.info.subresource == "scale") return ScaleSubresource(request, responder);
  auto m = std::make_shared<Mutation>();
  m->request = request;
  m->responder = std::move(responder);
  m->key = Key(*request.resource, request.info.namespace_, request.info.name);
  m->create_if_missing = *type == PatchType::kApply && request.info.subresource.empty();
  const PatchType patch_type = *type;
  m->transform = [this, m_request = &m->request, patch_type](const json* current, json* updated) -> std::optional<ApiError> {
    const RestRequest& request = *m_request;
    if (current == nullptr) {
      // Server-side apply of a missing object creates it from the applied configuration.
      json object;
      std::string error;
      if (!YamlToJson(request.http.body, &object, &error) || !object.is_object()) {
        return ApiError::BadRequest(error.empty() ? "the apply body must be an object" : error);
      }
      if (auto type_error = CheckTypeMeta(request, object)) return type_error;
      if (auto type_error = CheckTypes(*request.resource, object)) return type_error;
      object["metadata"]["name"] = request.info.name;
      object["metadata"].erase("resourceVersion");
      object["metadata"]["uid"] = NewUid();
      object["metadata"]["creationTimestamp"] = FormatTime(std::chrono::system_clock::now());
      if (object.contains("spec")) object["metadata"]["generation"] = 1;
      std::vector<StatusCause> causes;
      ValidateName(*request.resource, request.info.name, &causes);
      ValidateMetadata(object["metadata"], &causes);
      if (!causes.empty()) {
        return ApiError::Invalid(request.resource->group, request.resource->kind, request.info.name, causes);
      }
      if (auto admit_error = admission_->AdmitCreate(*request.resource, object, &request.user)) {
        return admit_error;
      }
      *updated = std::move(object);
      return std::nullopt;
    }
    json patched;
    if (auto error = ApplyPatch(patch_type, request.http.body, *current, &patched)) return error;
    return MergeUpdate(request, *admission_, *current, std::move(patched), updated);
  };
  RunMutation(m);
}

void RestStorage::ScaleSubresource(const RestRequest& request,
                                   std::shared_ptr<http::Responder> responder) {
  const ResourceInfo& resource = *request.resource;
  auto to_scale = [&resource](const json& object) {
    std::string selector;
    if (object.contains("/spec/selector/matchLabels"_json_pointer)) {
      for (const auto& [k, v] : object.at("/spec/selector/matchLabels"_json_pointer).items()) {
        selector += (selector.empty() ? "" : ",") + k + "=" + v.get<std::string>();
      }
    }
    (void)resource;
    const json& meta = object["metadata"];
    json scale_meta = {{"name", meta.value("name", "")}};
    for (const char* field : {"namespace", "uid", "resourceVersion", "creationTimestamp"}) {
      if (meta.contains(field)) scale_meta[field] = meta[field];
    }
    return json{{"kind", "Scale"},
                {"apiVersion", "autoscaling/v1"},
                {"metadata", std::move(scale_meta)},
                {"spec", {{"replicas", object.value("/spec/replicas"_json_pointer, 1)}}},
                {"status", {{"replicas", object.value("/status/replicas"_json_pointer, 0)},
                            {"selector", selector}}}};
  };
  const std::string key = Key(resource, request.info.namespace_, request.info.name);
  if (request.info.verb == "get") {
    Result<store::KeyValue> kv = store_->Get(key);
    if (!kv.ok()) return SendError(*responder, FromStoreStatus(request, kv.status(), request.info.name));
    return SendJson(*responder, 200, Dump(to_scale(ParseStoredObject(kv->value, kv->mod_rev))));
  }
  auto m = std::make_shared<Mutation>();
  m->request = request;
  m->responder = responder;
  m->key = key;
  m->transform = [m_request = &m->request, to_scale](const json* current, json* updated) -> std::optional<ApiError> {
    const RestRequest& request = *m_request;
    json scale = to_scale(*current);
    json changed;
    if (request.info.verb == "patch") {
      auto type = PatchTypeFromContentType(request.http.HeaderValue("content-type"));
      if (auto error = ApplyPatch(*type, request.http.body, scale, &changed)) return error;
    } else if (auto error = DecodeBody(request.http.HeaderValue("content-type"), request.http.body, &changed)) {
      return error;
    }
    const json replicas = changed.value("/spec/replicas"_json_pointer, json());
    if (!replicas.is_number_integer() || replicas.get<int64_t>() < 0) {
      return ApiError::Invalid("autoscaling", "Scale", request.info.name,
                               {{"FieldValueInvalid", "must be greater than or equal to 0", "spec.replicas"}});
    }
    const std::string rv = changed.value("/metadata/resourceVersion"_json_pointer, std::string());
    if (!rv.empty() && rv != (*current)["metadata"].value("resourceVersion", "")) {
      return ApiError::Conflict(request.resource->group, request.resource->resource, request.info.name,
                                "the object has been modified; please apply your changes to the "
                                "latest version and try again");
    }
    *updated = *current;
    if ((*updated)["spec"].value("replicas", -1) != replicas.get<int64_t>()) {
      (*updated)["spec"]["replicas"] = replicas;
      (*updated)["metadata"]["generation"] = (*current)["metadata"].value("generation", 0) + 1;
    }
    return std::nullopt;
  };
  // Reply with the Scale, not the object.
  auto scale_responder = responder;
  struct ScaleResponder final : http::Responder {
    std::shared_ptr<http::Responder> inner;
    std::function<json(const json&)> convert;
    void Send(http::Response response) override {
      if (response.status == 200) {
        json object = json::parse(response.body, nullptr, false);
        if (object.is_object()) response.body = Dump(convert(object));
      }
      inner->Send(std::move(response));
    }
    std::shared_ptr<http::ResponseStream> StartStream(int status, std::string type,
                                                      std::vector<http::Header> headers) override {
      return inner->StartStream(status, std::move(type), std::move(headers));
    }
  };
  auto wrapped = std::make_shared<ScaleResponder>();
  wrapped->inner = responder;
  wrapped->convert = to_scale;
  m->responder = wrapped;
  RunMutation(m);
}

}  // namespace mk8s::apiserver
