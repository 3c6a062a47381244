// Client: typed-ish requests over JSON for every API client in mk8s (scheduler, controllers,
// kubelet, proxy, addons, out-of-process components). It talks to the API server only, through a
// Transport (in-process or HTTPS).
//
// Each request has an async form (callback on the transport's callback thread; keep it cheap)
// and a blocking form that waits for the async one. Never call a blocking form from a transport
// callback or from an API server thread: it would deadlock. Thread-safe; cheap to share.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "client/resources.h"
#include "client/transport.h"
#include "common/status.h"

namespace mk8s::client {

// A failed request: the metav1.Status the server sent (code, reason, message), or code 0 and
// reason "ClientError" when no answer arrived (the message says why).
struct ApiError {
  int code = 0;
  std::string reason;   // "NotFound", "AlreadyExists", "Conflict", "Invalid", "Expired", ...
  std::string message;
  std::string ToString() const;  // "409 Conflict: the object has been modified; ..."
  Status ToStatus() const;       // mapped to mk8s::Code (404 -> kNotFound, 409 -> kConflict, ...)
};

bool IsNotFound(const ApiError& e);       // 404
bool IsAlreadyExists(const ApiError& e);  // 409 AlreadyExists
bool IsConflict(const ApiError& e);       // 409 Conflict (stale resourceVersion / precondition)
bool IsGone(const ApiError& e);           // 410 (expired resourceVersion or continue token)
bool IsInvalid(const ApiError& e);        // 422
bool IsForbidden(const ApiError& e);      // 403
bool IsTransportError(const ApiError& e); // code 0: no answer

// A value or an ApiError.
template <typename T>
class [[nodiscard]] ApiResult {
 public:
  ApiResult(T value) : value_(std::move(value)) {}          // NOLINT(google-explicit-constructor)
  ApiResult(ApiError error) : error_(std::move(error)) {}  // NOLINT(google-explicit-constructor)
  bool ok() const { return value_.has_value(); }
  const ApiError& error() const { return error_; }
  Status status() const { return ok() ? Status::Ok() : error_.ToStatus(); }
  T& value() & { return *value_; }
  const T& value() const& { return *value_; }
  T&& value() && { return std::move(*value_); }
  T* operator->() { return &*value_; }
  const T* operator->() const { return &*value_; }
  T& operator*() & { return *value_; }
  const T& operator*() const& { return *value_; }

 private:
  std::optional<T> value_;
  ApiError error_;
};

// ObjectPtr (a shared, immutable parsed object) is declared in client/transport.h.

struct ListOptions {
  std::string label_selector;
  std::string field_selector;
  int64_t limit = 0;               // 0 = no limit
  std::string continue_token;
  std::string resource_version;    // "" = most recent (quorum read); "0" = any cached
  std::string resource_version_match;
  int64_t timeout_seconds = 0;     // watches only; 0 = the server's default
  bool allow_watch_bookmarks = true;  // watches only
};

struct ListResult {
  std::vector<ObjectPtr> items;
  std::string resource_version;  // of the list, to start a watch from
  std::string continue_token;    // non-empty if more pages remain
};

enum class PatchType { kMerge, kStrategic, kJson, kApply };

struct DeleteOptions {
  std::string propagation_policy;  // "", "Orphan", "Background", "Foreground"
  std::string precondition_uid;
  std::string precondition_resource_version;
  std::optional<int64_t> grace_period_seconds;
  bool dry_run = false;
};

struct WriteOptions {
  bool dry_run = false;
  std::string field_manager;  // required for kApply patches
  bool force = false;         // kApply: take ownership of conflicting fields
};

class Client {
 public:
  using JsonCallback = std::function<void(ApiResult<nlohmann::json>)>;
  using ListCallback = std::function<void(ApiResult<ListResult>)>;
  // For writers that do not need the stored object back: nothing on success (a 2xx answer's body
  // is not parsed), or the error.
  using StatusCallback = std::function<void(std::optional<ApiError> error)>;

  explicit Client(std::shared_ptr<Transport> transport);
  const std::shared_ptr<Transport>& transport() const { return transport_; }

  // --- async forms: `done` runs once on the transport's callback thread.
  void GetAsync(const ResourceRef& ref, const std::string& ns, const std::string& name,
                JsonCallback done);
  // One page (follow continue_token for more).
  void ListAsync(const ResourceRef& ref, const std::string& ns, const ListOptions& options,
                 ListCallback done);
  void CreateAsync(const ResourceRef& ref, const std::string& ns, const nlohmann::json& object,
                   JsonCallback done, const WriteOptions& options = {});
  // PUT to metadata.namespace/metadata.name. metadata.resourceVersion, if set, is the
  // compare-and-swap precondition (409 Conflict when stale).
  void UpdateAsync(const ResourceRef& ref, const nlohmann::json& object, JsonCallback done,
                   const WriteOptions& options = {});
  void UpdateStatusAsync(const ResourceRef& ref, const nlohmann::json& object, JsonCallback done,
                         const WriteOptions& options = {});
  void PatchAsync(const ResourceRef& ref, const std::string& ns, const std::string& name,
                  PatchType type, const nlohmann::json& patch, JsonCallback done,
                  const std::string& subresource = "", const WriteOptions& options = {});
  void DeleteAsync(const ResourceRef& ref, const std::string& ns, const std::string& name,
                   const DeleteOptions& options, JsonCallback done);
  // POST to a subresource: pods/binding, pods/eviction, serviceaccounts/token, ...
  void CreateSubresourceAsync(const ResourceRef& ref, const std::string& ns,
                              const std::string& name, const std::string& subresource,
                              const nlohmann::json& body, JsonCallback done);
  // Any request whose answer is JSON.
  void DoAsync(Request request, JsonCallback done);
  // Status-only forms of CreateAsync / PatchAsync / DoAsync, for fire-and-forget writers (events,
  // lease renewals, load generators): the same request, but a 2xx answer is not parsed.
  void CreateStatusOnlyAsync(const ResourceRef& ref, const std::string& ns,
                             const nlohmann::json& object, StatusCallback done,
                             const WriteOptions& options = {});
  void PatchStatusOnlyAsync(const ResourceRef& ref, const std::string& ns, const std::string& name,
                            PatchType type, const nlohmann::json& patch, StatusCallback done,
                            const std::string& subresource = "", const WriteOptions& options = {});
  void DoStatusOnlyAsync(Request request, StatusCallback done);

  // --- blocking forms.
  ApiResult<nlohmann::json> Get(const ResourceRef& ref, const std::string& ns,
                                const std::string& name);
  ApiResult<ListResult> List(const ResourceRef& ref, const std::string& ns,
                             const ListOptions& options = {});
  // Every page (options.limit is the page size; 0 = one request).
  ApiResult<ListResult> ListAll(const ResourceRef& ref, const std::string& ns,
                                const ListOptions& options = {});
  ApiResult<nlohmann::json> Create(const ResourceRef& ref, const std::string& ns,
                                   const nlohmann::json& object, const WriteOptions& options = {});
  ApiResult<nlohmann::json> Update(const ResourceRef& ref, const nlohmann::json& object,
                                   const WriteOptions& options = {});
  ApiResult<nlohmann::json> UpdateStatus(const ResourceRef& ref, const nlohmann::json& object,
                                         const WriteOptions& options = {});
  ApiResult<nlohmann::json> Patch(const ResourceRef& ref, const std::string& ns,
                                  const std::string& name, PatchType type,
                                  const nlohmann::json& patch, const std::string& subresource = "",
                                  const WriteOptions& options = {});
  ApiResult<nlohmann::json> Delete(const ResourceRef& ref, const std::string& ns,
                                   const std::string& name, const DeleteOptions& options = {});
  ApiResult<nlohmann::json> CreateSubresource(const ResourceRef& ref, const std::string& ns,
                                              const std::string& name,
                                              const std::string& subresource,
                                              const nlohmann::json& body);
  ApiResult<nlohmann::json> Do(Request request);

  // Starts a watch (?watch=1) from options.resource_version. Lines are raw watch events
  // ({"type":..,"object":..}); parse them off the callback thread if they are large.
  std::shared_ptr<StreamHandle> Watch(const ResourceRef& ref, const std::string& ns,
                                      const ListOptions& options, StreamCallbacks callbacks);

  // The request a call would send (exposed for tests and for callers with special needs).
  static Request ListRequest(const ResourceRef& ref, const std::string& ns,
                             const ListOptions& options, bool watch);
  // Decodes an answer: 2xx JSON -> value; otherwise the metav1.Status -> ApiError.
  static ApiResult<nlohmann::json> Decode(Response response);
  // Decodes only the outcome: nullopt for a 2xx answer (its body unread), else the ApiError.
  static std::optional<ApiError> DecodeStatus(Response response);
  // The requests the write calls send (shared by the JSON and status-only forms).
  static Request CreateRequest(const ResourceRef& ref, const std::string& ns,
                               const nlohmann::json& object, const WriteOptions& options);
  static Request PatchRequest(const ResourceRef& ref, const std::string& ns,
                              const std::string& name, PatchType type,
                              const nlohmann::json& patch, const std::string& subresource,
                              const WriteOptions& options);

 private:
  std::shared_ptr<Transport> transport_;
};

// "namespace/name", or "name" for cluster-scoped objects (client-go's MetaNamespaceKeyFunc).
std::string ObjectKey(const nlohmann::json& object);
// Splits a key into namespace (empty for cluster-scoped) and name.
std::pair<std::string, std::string> SplitKey(const std::string& key);

}  // namespace mk8s::client
