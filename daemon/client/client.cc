#include "client/client.h"

#include <future>

#include <nlohmann/json.hpp>

namespace mk8s::client {

using json = nlohmann::json;

namespace {

const char* ReasonForCode(int code) {
  switch (code) {
    case 400: return "BadRequest";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "NotFound";
    case 405: return "MethodNotAllowed";
    case 409: return "Conflict";
    case 410: return "Expired";
    case 413: return "RequestEntityTooLarge";
    case 415: return "UnsupportedMediaType";
    case 422: return "Invalid";
    case 429: return "TooManyRequests";
    case 500: return "InternalError";
    case 503: return "ServiceUnavailable";
    case 504: return "Timeout";
    default: return "Unknown";
  }
}

std::string AddParam(std::string query, std::string_view name, std::string_view value) {
  if (!query.empty()) query += '&';
  query += name;
  query += '=';
  query += QueryEscape(value);
  return query;
}

std::string WriteQuery(const WriteOptions& options) {
  std::string query;
  if (options.dry_run) query = AddParam(query, "dryRun", "All");
  if (!options.field_manager.empty()) query = AddParam(query, "fieldManager", options.field_manager);
  if (options.force) query = AddParam(query, "force", "true");
  return query;
}

std::string Dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

template <typename T>
ApiResult<T> Wait(const std::function<void(std::function<void(ApiResult<T>)>)>& start) {
  auto promise = std::make_shared<std::promise<ApiResult<T>>>();
  auto future = promise->get_future();
  start([promise](ApiResult<T> result) { promise->set_value(std::move(result)); });
  return future.get();
}

}  // namespace

std::string ApiError::ToString() const {
  return std::to_string(code) + " " + reason + ": " + message;
}

Status ApiError::ToStatus() const {
  Code status_code = Code::kInternal;
  switch (code) {
    case 0: status_code = Code::kUnavailable; break;
    case 400: case 422: status_code = Code::kInvalidArgument; break;
    case 404: status_code = Code::kNotFound; break;
    case 409: status_code = reason == "AlreadyExists" ? Code::kAlreadyExists : Code::kConflict; break;
    case 410: status_code = Code::kCompacted; break;
    case 429: status_code = Code::kResourceExhausted; break;
    case 503: status_code = Code::kUnavailable; break;
    case 504: status_code = Code::kDeadlineExceeded; break;
    default: break;
  }
  return Status(status_code, ToString());
}

bool IsNotFound(const ApiError& e) { return e.code == 404; }
bool IsAlreadyExists(const ApiError& e) { return e.code == 409 && e.reason == "AlreadyExists"; }
bool IsConflict(const ApiError& e) { return e.code == 409 && e.reason != "AlreadyExists"; }
bool IsGone(const ApiError& e) { return e.code == 410; }
bool IsInvalid(const ApiError& e) { return e.code == 422; }
bool IsForbidden(const ApiError& e) { return e.code == 403; }
bool IsTransportError(const ApiError& e) { return e.code == 0; }

Client::Client(std::shared_ptr<Transport> transport) : transport_(std::move(transport)) {}

namespace {

// The ApiError of a non-2xx answer (`body` is its parsed body, or discarded if not JSON).
ApiError ErrorOf(Response& response, const json& body) {
  ApiError error{response.status, ReasonForCode(response.status), std::move(response.body)};
  if (body.is_object() && body.value("kind", "") == "Status") {
    if (body.contains("code") && body["code"].is_number_integer()) error.code = body["code"];
    if (body.contains("reason") && body["reason"].is_string()) error.reason = body["reason"];
    if (body.contains("message") && body["message"].is_string()) error.message = body["message"];
  }
  return error;
}

ApiError TransportError(const Response& response) {
  return ApiError{0, "ClientError", response.body.empty() ? "no response" : response.body};
}

}  // namespace

ApiResult<json> Client::Decode(Response response) {
  if (response.status == 0) return TransportError(response);
  json body = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  if (response.status >= 200 && response.status < 300) {
    if (body.is_discarded()) {
      return ApiError{response.status, "ClientError",
                      "the API server answered with a body that is not JSON"};
    }
    return body;
  }
  return ErrorOf(response, body);
}

std::optional<ApiError> Client::DecodeStatus(Response response) {
  if (response.status == 0) return TransportError(response);
  if (response.status >= 200 && response.status < 300) return std::nullopt;
  const json body = json::parse(response.body, nullptr, /*allow_exceptions=*/false);
  return ErrorOf(response, body);
}

void Client::DoStatusOnlyAsync(Request request, StatusCallback done) {
  transport_->Send(std::move(request), [done = std::move(done)](Response response) {
    done(DecodeStatus(std::move(response)));
  });
}

void Client::DoAsync(Request request, JsonCallback done) {
  transport_->Send(std::move(request),
                   [done = std::move(done)](Response response) { done(Decode(std::move(response))); });
}

void Client::GetAsync(const ResourceRef& ref, const std::string& ns, const std::string& name,
                      JsonCallback done) {
  Request request;
  request.path = ref.Path(ns, name);
  DoAsync(std::move(request), std::move(done));
}

Request Client::ListRequest(const ResourceRef& ref, const std::string& ns,
                            const ListOptions& options, bool watch) {
  Request request;
  request.path = ref.Path(ns);
  std::string& q = request.query;
  if (!options.label_selector.empty()) q = AddParam(q, "labelSelector", options.label_selector);
  if (!options.field_selector.empty()) q = AddParam(q, "fieldSelector", options.field_selector);
  if (!options.resource_version.empty()) {
    q = AddParam(q, "resourceVersion", options.resource_version);
  }
  if (watch) {
    q = AddParam(q, "watch", "1");
    if (options.allow_watch_bookmarks) q = AddParam(q, "allowWatchBookmarks", "true");
    if (options.timeout_seconds > 0) {
      q = AddParam(q, "timeoutSeconds", std::to_string(options.timeout_seconds));
    }
  } else {
    if (options.limit > 0) q = AddParam(q, "limit", std::to_string(options.limit));
    if (!options.continue_token.empty()) q = AddParam(q, "continue", options.continue_token);
    if (!options.resource_version_match.empty()) {
      q = AddParam(q, "resourceVersionMatch", options.resource_version_match);
    }
  }
  return request;
}

void Client::ListAsync(const ResourceRef& ref, const std::string& ns, const ListOptions& options,
                       ListCallback done) {
  Request request = ListRequest(ref, ns, options, false);
  request.accept_objects = true;  // in-process: the items come as the server's shared objects
  transport_->Send(std::move(request), [done = std::move(done)](Response response) {
    std::optional<std::vector<ObjectPtr>> shared_items = std::move(response.items);
    ApiResult<json> result = Decode(std::move(response));
    if (!result.ok()) return done(result.error());
    json& list = *result;
    ListResult out;
    if (shared_items) out.items = std::move(*shared_items);
    if (list.contains("metadata") && list["metadata"].is_object()) {
      out.resource_version = list["metadata"].value("resourceVersion", "");
      out.continue_token = list["metadata"].value("continue", "");
    }
    if (!shared_items && list.contains("items") && list["items"].is_array()) {
      out.items.reserve(list["items"].size());
      for (json& item : list["items"]) out.items.push_back(std::make_shared<const json>(std::move(item)));
    }
    done(std::move(out));
  });
}

Request Client::CreateRequest(const ResourceRef& ref, const std::string& ns, const json& object,
                             const WriteOptions& options) {
  Request request;
  request.method = "POST";
  request.path = ref.Path(ns);
  request.query = WriteQuery(options);
  request.content_type = "application/json";
  request.body = Dump(object);
  return request;
}

void Client::CreateAsync(const ResourceRef& ref, const std::string& ns, const json& object,
                         JsonCallback done, const WriteOptions& options) {
  DoAsync(CreateRequest(ref, ns, object, options), std::move(done));
}

void Client::CreateStatusOnlyAsync(const ResourceRef& ref, const std::string& ns,
                                   const json& object, StatusCallback done,
                                   const WriteOptions& options) {
  DoStatusOnlyAsync(CreateRequest(ref, ns, object, options), std::move(done));
}

namespace {

Request PutRequest(const ResourceRef& ref, const json& object, const std::string& subresource,
                   const WriteOptions& options) {
  const json& meta = object.contains("metadata") ? object["metadata"] : json::object();
  Request request;
  request.method = "PUT";
  request.path = ref.Path(meta.value("namespace", ""), meta.value("name", ""), subresource);
  request.query = WriteQuery(options);
  request.content_type = "application/json";
  request.body = Dump(object);
  return request;
}

}  // namespace

void Client::UpdateAsync(const ResourceRef& ref, const json& object, JsonCallback done,
                         const WriteOptions& options) {
  DoAsync(PutRequest(ref, object, "", options), std::move(done));
}

void Client::UpdateStatusAsync(const ResourceRef& ref, const json& object, JsonCallback done,
                               const WriteOptions& options) {
  DoAsync(PutRequest(ref, object, "status", options), std::move(done));
}

Request Client::PatchRequest(const ResourceRef& ref, const std::string& ns,
                            const std::string& name, PatchType type, const json& patch,
                            const std::string& subresource, const WriteOptions& options) {
  Request request;
  request.method = "PATCH";
  request.path = ref.Path(ns, name, subresource);
  request.query = WriteQuery(options);
  switch (type) {
    case PatchType::kMerge: request.content_type = "application/merge-patch+json"; break;
    case PatchType::kStrategic: request.content_type = "application/strategic-merge-patch+json"; break;
    case PatchType::kJson: request.content_type = "application/json-patch+json"; break;
    case PatchType::kApply: request.content_type = "application/apply-patch+yaml"; break;
  }
  request.body = Dump(patch);
  return request;
}

void Client::PatchAsync(const ResourceRef& ref, const std::string& ns, const std::string& name,
                        PatchType type, const json& patch, JsonCallback done,
                        const std::string& subresource, const WriteOptions& options) {
  DoAsync(PatchRequest(ref, ns, name, type, patch, subresource, options), std::move(done));
}

void Client::PatchStatusOnlyAsync(const ResourceRef& ref, const std::string& ns,
                                  const std::string& name, PatchType type, const json& patch,
                                  StatusCallback done, const std::string& subresource,
                                  const WriteOptions& options) {
  DoStatusOnlyAsync(PatchRequest(ref, ns, name, type, patch, subresource, options),
                    std::move(done));
}

void Client::DeleteAsync(const ResourceRef& ref, const std::string& ns, const std::string& name,
                         const DeleteOptions& options, JsonCallback done) {
  json body = {{"kind", "DeleteOptions"}, {"apiVersion", "v1"}};
  if (!options.propagation_policy.empty()) body["propagationPolicy"] = options.propagation_policy;
  if (!options.precondition_uid.empty()) body["preconditions"]["uid"] = options.precondition_uid;
  if (!options.precondition_resource_version.empty()) {
    body["preconditions"]["resourceVersion"] = options.precondition_resource_version;
  }
  if (options.grace_period_seconds) body["gracePeriodSeconds"] = *options.grace_period_seconds;
  if (options.dry_run) body["dryRun"] = json::array({"All"});
  Request request;
  request.method = "DELETE";
  request.path = ref.Path(ns, name);
  request.content_type = "application/json";
  request.body = Dump(body);
  DoAsync(std::move(request), std::move(done));
}

void Client::CreateSubresourceAsync(const ResourceRef& ref, const std::string& ns,
                                    const std::string& name, const std::string& subresource,
                                    const json& body, JsonCallback done) {
  Request request;
  request.method = "POST";
  request.path = ref.Path(ns, name, subresource);
  request.content_type = "application/json";
  request.body = Dump(body);
  DoAsync(std::move(request), std::move(done));
}

std::shared_ptr<StreamHandle> Client::Watch(const ResourceRef& ref, const std::string& ns,
                                            const ListOptions& options, StreamCallbacks callbacks) {
  return transport_->Stream(ListRequest(ref, ns, options, true), std::move(callbacks));
}

// --- blocking forms

ApiResult<json> Client::Do(Request request) {
  return Wait<json>([&](JsonCallback done) { DoAsync(std::move(request), std::move(done)); });
}

ApiResult<json> Client::Get(const ResourceRef& ref, const std::string& ns, const std::string& name) {
  return Wait<json>([&](JsonCallback done) { GetAsync(ref, ns, name, std::move(done)); });
}

ApiResult<ListResult> Client::List(const ResourceRef& ref, const std::string& ns,
                                   const ListOptions& options) {
  return Wait<ListResult>([&](ListCallback done) { ListAsync(ref, ns, options, std::move(done)); });
}

ApiResult<ListResult> Client::ListAll(const ResourceRef& ref, const std::string& ns,
                                      const ListOptions& options) {
  ListOptions page = options;
  ListResult all;
  for (;;) {
    ApiResult<ListResult> result = List(ref, ns, page);
    if (!result.ok()) return result;
    for (ObjectPtr& item : result->items) all.items.push_back(std::move(item));
    if (all.resource_version.empty()) all.resource_version = result->resource_version;
    if (result->continue_token.empty() || page.limit <= 0) break;
    page.continue_token = result->continue_token;
    page.resource_version.clear();  // the continue token pins the revision
  }
  return all;
}

ApiResult<json> Client::Create(const ResourceRef& ref, const std::string& ns, const json& object,
                               const WriteOptions& options) {
  return Wait<json>(
      [&](JsonCallback done) { CreateAsync(ref, ns, object, std::move(done), options); });
}

ApiResult<json> Client::Update(const ResourceRef& ref, const json& object,
                               const WriteOptions& options) {
  return Wait<json>([&](JsonCallback done) { UpdateAsync(ref, object, std::move(done), options); });
}

ApiResult<json> Client::UpdateStatus(const ResourceRef& ref, const json& object,
                                     const WriteOptions& options) {
  return Wait<json>(
      [&](JsonCallback done) { UpdateStatusAsync(ref, object, std::move(done), options); });
}

ApiResult<json> Client::Patch(const ResourceRef& ref, const std::string& ns,
                              const std::string& name, PatchType type, const json& patch,
                              const std::string& subresource, const WriteOptions& options) {
  return Wait<json>([&](JsonCallback done) {
    PatchAsync(ref, ns, name, type, patch, std::move(done), subresource, options);
  });
}

ApiResult<json> Client::Delete(const ResourceRef& ref, const std::string& ns,
                               const std::string& name, const DeleteOptions& options) {
  return Wait<json>([&](JsonCallback done) { DeleteAsync(ref, ns, name, options, std::move(done)); });
}

ApiResult<json> Client::CreateSubresource(const ResourceRef& ref, const std::string& ns,
                                          const std::string& name, const std::string& subresource,
                                          const json& body) {
  return Wait<json>([&](JsonCallback done) {
    CreateSubresourceAsync(ref, ns, name, subresource, body, std::move(done));
  });
}

std::string ObjectKey(const json& object) {
  auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return "";
  const std::string ns = meta->value("namespace", "");
  const std::string name = meta->value("name", "");
  return ns.empty() ? name : ns + "/" + name;
}

std::pair<std::string, std::string> SplitKey(const std::string& key) {
  const size_t slash = key.find('/');
  if (slash == std::string::npos) return {"", key};
  return {key.substr(0, slash), key.substr(slash + 1)};
}

}  // namespace mk8s::client
