// RestStorage read verbs: get, list (with selectors, limit/continue, Table output) and watch.
#include <spdlog/spdlog.h>

#include <random>

#include "apiserver/registry/cached_object.h"
#include "apiserver/registry/conversion.h"
#include "apiserver/registry/rest_storage.h"
#include "apiserver/registry/watch_cache.h"
#include "apiserver/selectors.h"
#include "apiserver/table.h"
#include "apiserver/timer_queue.h"
#include "pki/encoding.h"
#include "store/store.h"

namespace mk8s::apiserver {
namespace {

using nlohmann::json;

constexpr std::string_view kTableContentType = "application/json;as=Table;v=v1;g=meta.k8s.io";
constexpr auto kFreshnessTimeout = std::chrono::seconds(5);
// How often a list waiting for the cache to catch up looks again (on the timer thread).
constexpr auto kFreshnessPoll = std::chrono::milliseconds(2);

// 504 with reason Timeout and Retry-After 1 s: the cache did not reach the revision in time.
ApiError TooLargeResourceVersion(const std::string& message) {
  ApiError error = ApiError::TooManyRequests(message, 1);
  error.reason = "Timeout";
  error.code = 504;
  return error;
}

bool WantsTable(const RestRequest& request) {
  return request.http.HeaderValue("accept").find("as=Table") != std::string_view::npos;
}

std::string ListKind(const ResourceInfo& resource) { return resource.kind + "List"; }

// Filters the request asked for, parsed once.
struct Filters {
  LabelSelector labels;
  FieldSelector fields;
  bool Matches(const json& object) const {
    if (labels.Empty() && fields.Empty()) return true;  // most watches: no lookups at all
    const json* labels_json = nullptr;
    static const json kEmpty = json::object();
    auto metadata = object.find("metadata");
    if (metadata != object.end()) {
      auto it = metadata->find("labels");
      if (it != metadata->end()) labels_json = &*it;
    }
    return labels.Matches(labels_json ? *labels_json : kEmpty) && fields.Matches(object);
  }
};

std::optional<ApiError> ParseFilters(const RestRequest& request, Filters* filters) {
  auto labels = LabelSelector::Parse(request.query.Get("labelSelector"));
  if (!labels.ok()) return ApiError::BadRequest(labels.status().message());
  auto fields = FieldSelector::Parse(request.query.Get("fieldSelector"));
  if (!fields.ok()) return ApiError::BadRequest(fields.status().message());
  filters->labels = std::move(*labels);
  filters->fields = std::move(*fields);
  return std::nullopt;
}

// Continue tokens carry the list's revision and the last key returned, as upstream's do.
std::string EncodeContinue(int64_t revision, const std::string& last_key) {
  return pki::Base64Encode(
      json{{"v", "meta.k8s.io/v1"}, {"rv", revision}, {"start", last_key + '\0'}}.dump());
}

bool DecodeContinue(const std::string& token, int64_t* revision, std::string* last_key) {
  std::optional<std::string> text = pki::Base64Decode(token);
  if (!text) return false;
  json parsed = json::parse(*text, nullptr, false);
  if (!parsed.is_object() || !parsed["rv"].is_number_integer() || !parsed["start"].is_string()) {
    return false;
  }
  *revision = parsed["rv"].get<int64_t>();
  *last_key = parsed["start"].get<std::string>();
  if (!last_key->empty() && last_key->back() == '\0') last_key->pop_back();
  return true;
}

std::string TableBody(const ResourceInfo& resource, const std::vector<const json*>& objects,
                      const std::string& revision, const std::string& continue_token) {
  const auto now = std::chrono::system_clock::now();
  json rows = json::array();
  for (const json* object : objects) {
    rows.push_back({{"cells", TableCells(resource, *object, now)},
                    {"object", TableRowObject(*object)}});
  }
  json metadata = {{"resourceVersion", revision}};
  if (!continue_token.empty()) metadata["continue"] = continue_token;
  json table = {{"kind", "Table"},
                {"apiVersion", "meta.k8s.io/v1"},
                {"metadata", std::move(metadata)},
                {"columnDefinitions", TableColumns(resource)},
                {"rows", std::move(rows)}};
  return table.dump(-1, ' ', false, json::error_handler_t::replace);
}

void SendList(const RestRequest& request, http::Responder& responder,
              const std::vector<CachedObjectPtr>& items, int64_t revision,
              const std::string& continue_token) {
  const ResourceInfo& resource = *request.resource;
  if (WantsTable(request)) {
    std::vector<const json*> objects;
    for (const auto& item : items) objects.push_back(&item->object());
    responder.Send(http::Response{200, std::string(kTableContentType), {},
                                  TableBody(resource, objects, std::to_string(revision),
                                            continue_token)});
    return;
  }
  const bool convert = NeedsConversion(resource);
  if (!convert && responder.AcceptsObjects()) {
    // In-process object path: the client takes the cache's own parsed objects (no serialize,
    // no parse, no second copy). The envelope carries everything but the items.
    std::string envelope = "{\"kind\":\"" + ListKind(resource) + "\",\"apiVersion\":\"" +
                           resource.GroupVersion() + "\",\"metadata\":{\"resourceVersion\":\"" +
                           std::to_string(revision) + "\"";
    if (!continue_token.empty()) envelope += ",\"continue\":\"" + continue_token + "\"";
    envelope += "},\"items\":[]}";
    std::vector<http::SharedObject> objects;
    objects.reserve(items.size());
    for (const CachedObjectPtr& item : items) objects.push_back(SharedObjectOf(item));
    responder.SendObjects(http::Response{200, "application/json", {}, std::move(envelope)},
                          std::move(objects));
    return;
  }
  // Splice the cached per-object JSON instead of rebuilding one big document.
  std::string body = "{\"kind\":\"" + ListKind(resource) + "\",\"apiVersion\":\"" +
                     resource.GroupVersion() + "\",\"metadata\":{\"resourceVersion\":\"" +
                     std::to_string(revision) + "\"";
  if (!continue_token.empty()) body += ",\"continue\":\"" + continue_token + "\"";
  body += "},\"items\":[";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) body += ',';
    body += convert ? ToServed(resource, items[i]->object()).dump(-1, ' ', false, json::error_handler_t::replace)
                    : items[i]->Json();
  }
  body += "]}";
  responder.Send(http::Response{200, "application/json", {}, std::move(body)});
}

// A list waiting for the watch cache to reach a revision (see RestStorage::List).
struct PendingList {
  WatchCache* cache = nullptr;
  TimerQueue* timers = nullptr;
  RestRequest request;
  std::shared_ptr<http::Responder> responder;
  Filters filters;
  int64_t limit = 0;
  std::string prefix;
  int64_t wanted = 0;
  TimerQueue::Clock::time_point deadline;
};

// Lists `prefix` from the cache's current snapshot, filtered, the first `limit` items.
void ListFromCache(WatchCache& cache, const RestRequest& request, http::Responder& responder,
                   const Filters& filters, int64_t limit, const std::string& prefix) {
  WatchCache::Snapshot snapshot;
  if (const std::string* name = filters.fields.RequiredValue("metadata.name")) {
    // A single-name list (kubectl wait, rollout status, delete --wait) needs one lookup.
    snapshot.revision = cache.revision();
    if (auto object = cache.Get(prefix + *name)) snapshot.items.push_back(object);
  } else {
    snapshot = cache.List(prefix);
  }
  std::vector<CachedObjectPtr> items;
  bool more = false;
  for (auto& item : snapshot.items) {
    if (!filters.Matches(item->object())) continue;
    if (limit != 0 && static_cast<int64_t>(items.size()) >= limit) {
      more = true;
      break;
    }
    items.push_back(std::move(item));
  }
  const std::string next =
      more && !items.empty() ? EncodeContinue(snapshot.revision, items.back()->key()) : "";
  SendList(request, responder, items, snapshot.revision, next);
}

// Polls the cache on the timer thread until it reached `pending->wanted` (then lists) or the
// deadline passed (then 504, as upstream's "Too large resource version").
void ListWhenFresh(std::shared_ptr<PendingList> pending) {
  pending->timers->Schedule(TimerQueue::Clock::now() + kFreshnessPoll, [pending] {
    const int64_t current = pending->cache->revision();
    if (current >= pending->wanted) {
      return ListFromCache(*pending->cache, pending->request, *pending->responder,
                           pending->filters, pending->limit, pending->prefix);
    }
    if (TimerQueue::Clock::now() >= pending->deadline) {
      return SendError(*pending->responder,
                       TooLargeResourceVersion("Too large resource version: " +
                                               std::to_string(pending->wanted) +
                                               ", current resource version: " +
                                               std::to_string(current)));
    }
    ListWhenFresh(pending);
  });
}

}  // namespace

void SendError(http::Responder& responder, const ApiError& error) {
  http::Response response{error.code, "application/json", {}, error.ToJson()};
  if (error.retry_after_seconds > 0) {
    response.headers.push_back({"retry-after", std::to_string(error.retry_after_seconds)});
  }
  responder.Send(std::move(response));
}

void SendJson(http::Responder& responder, int status, std::string body) {
  responder.Send(http::Response{status, "application/json", {}, std::move(body)});
}

std::string RestStorage::Key(const ResourceInfo& resource, const std::string& ns,
                             const std::string& name) {
  return Prefix(resource, ns) + name;
}

std::string RestStorage::Prefix(const ResourceInfo& resource, const std::string& ns) {
  std::string prefix = "/registry/" + resource.storage_resource + "/";
  if (resource.namespaced && !ns.empty()) prefix += ns + "/";
  return prefix;
}

void RestStorage::Get(const RestRequest& request, std::shared_ptr<http::Responder> responder) {
  const ResourceInfo& resource = *request.resource;
  const std::string key = Key(resource, request.info.namespace_, request.info.name);
  // A GET reads the latest state. The watch cache has it when it has applied every revision the
  // store had committed when this request got here (the store's revision is read first): then
  // any write acknowledged before the request is in the cache, and the answer is the cached
  // version, whose JSON text is built once per version (no store read, no parse, no dump). A
  // cache a moment behind (a commit it has not applied yet) sends the request to the store.
  const int64_t committed = store_->CurrentRevision();
  if (cache_->revision() >= committed) {
    CachedObjectPtr cached = cache_->Get(key);
    if (cached == nullptr) {
      return SendError(*responder, ApiError::NotFound(resource.group, resource.resource,
                                                      request.info.name));
    }
    if (WantsTable(request)) {
      std::vector<const json*> objects{&cached->object()};
      return responder->Send(http::Response{
          200, std::string(kTableContentType), {},
          TableBody(resource, objects, std::to_string(cached->revision()), "")});
    }
    if (NeedsConversion(resource)) {
      return SendJson(*responder, 200,
                      ToServed(resource, cached->object())
                          .dump(-1, ' ', false, json::error_handler_t::replace));
    }
    return SendJson(*responder, 200, cached->Json());
  }
  Result<store::KeyValue> kv = store_->Get(key);
  if (!kv.ok()) {
    if (kv.status().code() == Code::kNotFound) {
      return SendError(*responder, ApiError::NotFound(resource.group, resource.resource,
                                                      request.info.name));
    }
    return SendError(*responder, ApiError::Internal(kv.status().message()));
  }
  json object = ParseStoredObject(kv->value, kv->mod_rev);
  if (object.is_null()) return SendError(*responder, ApiError::Internal("stored object is corrupt"));
  if (WantsTable(request)) {
    std::vector<const json*> objects{&object};
    responder->Send(http::Response{200, std::string(kTableContentType), {},
                                   TableBody(resource, objects, std::to_string(kv->mod_rev), "")});
    return;
  }
  SendJson(*responder, 200,
           ToServed(resource, object).dump(-1, ' ', false, json::error_handler_t::replace));
}

void RestStorage::List(const RestRequest& request, std::shared_ptr<http::Responder> responder) {
  const ResourceInfo& resource = *request.resource;
  Filters filters;
  if (auto error = ParseFilters(request, &filters)) return SendError(*responder, *error);
  int64_t limit = 0;
  if (const std::string text = request.query.Get("limit"); !text.empty()) {
    try {
      limit = std::stoll(text);
    } catch (...) {
      return SendError(*responder, ApiError::BadRequest("limit must be an integer"));
    }
    if (limit < 0) limit = 0;
  }
  const std::string prefix = Prefix(resource, request.info.namespace_);

  // Continuation pages are read from the store at the first page's revision, so every page
  // belongs to one consistent snapshot.
  if (const std::string token = request.query.Get("continue"); !token.empty()) {
    int64_t revision = 0;
    std::string last_key;
    if (!DecodeContinue(token, &revision, &last_key) ||
        last_key.compare(0, prefix.size(), prefix) != 0) {
      return SendError(*responder, ApiError::BadRequest("continue key is not valid"));
    }
    std::vector<CachedObjectPtr> items;
    bool more = false;  // another page exists after this one
    std::string cursor = last_key;
    while (true) {
      store::ListOptions options;
      options.at_revision = revision;
      options.start_after = cursor;
      options.limit = limit == 0 ? 0 : std::max<int64_t>(limit, 100);
      Result<store::ListResult> page = store_->List(prefix, options);
      if (!page.ok()) {
        if (page.status().code() == Code::kCompacted) {
          return SendError(*responder,
                           ApiError::Gone("The provided continue parameter is too old to display "
                                          "a consistent list result. You can start a new list "
                                          "without the continue parameter."));
        }
        return SendError(*responder, ApiError::Internal(page.status().message()));
      }
      for (const store::KeyValue& kv : page->kvs) {
        if (limit != 0 && static_cast<int64_t>(items.size()) >= limit) {
          more = true;  // a row beyond this page
          break;
        }
        cursor = kv.key;
        json object = ParseStoredObject(kv.value, kv.mod_rev);
        if (object.is_null() || !filters.Matches(object)) continue;
        items.push_back(std::make_shared<CachedObject>(kv.key, kv.mod_rev, std::move(object)));
      }
      if (more || !page->more) break;  // page full, or the store has nothing after it
      if (limit != 0 && static_cast<int64_t>(items.size()) >= limit) {
        more = true;  // full exactly at the end of a store page that has more behind it
        break;
      }
    }
    const std::string next =
        more && !items.empty() ? EncodeContinue(revision, items.back()->key()) : "";
    return SendList(request, *responder, items, revision, next);
  }

  // resourceVersion "" = the latest; "0" = whatever the cache has; N = at least N.
  const std::string rv = request.query.Get("resourceVersion");
  int64_t wanted = 0;  // the revision the cache must have reached; 0 = none
  if (rv != "0") {
    if (!rv.empty()) {
      try {
        wanted = std::stoll(rv);
      } catch (...) {
        return SendError(*responder, ApiError::BadRequest("invalid resourceVersion \"" + rv + "\""));
      }
    }
    if (wanted == 0) wanted = store_->CurrentRevision();
  }
  if (wanted <= cache_->revision()) {
    return ListFromCache(*cache_, request, *responder, filters, limit, prefix);
  }
  if (timers_ == nullptr) {  // no timer thread (some tests): wait here
    if (Status status = cache_->WaitUntilFresh(wanted, kFreshnessTimeout); !status.ok()) {
      return SendError(*responder, TooLargeResourceVersion(status.message()));
    }
    return ListFromCache(*cache_, request, *responder, filters, limit, prefix);
  }
  // The cache is behind (a write it has not applied yet, or a resourceVersion from the future):
  // look again on the timer thread instead of holding this transport thread, so no client can
  // stall the server by asking for a revision that does not come.
  auto pending = std::make_shared<PendingList>();
  pending->cache = cache_;
  pending->timers = timers_;
  pending->request = request;
  pending->responder = std::move(responder);
  pending->filters = std::move(filters);
  pending->limit = limit;
  pending->prefix = prefix;
  pending->wanted = wanted;
  pending->deadline = TimerQueue::Clock::now() + kFreshnessTimeout;
  ListWhenFresh(std::move(pending));
}

// One watch stream: filters cache events and writes them as newline-delimited JSON frames.
namespace {

struct WatchStream : std::enable_shared_from_this<WatchStream> {
  const ResourceInfo* resource = nullptr;
  Filters filters;
  bool table = false;
  bool table_header_sent = false;  // dispatcher thread only
  // The client takes shared objects (in-process, no table, no conversion): set before registering.
  bool objects = false;
  std::shared_ptr<http::ResponseStream> stream;
  std::unique_ptr<WatchCache::Registration> registration;
  std::mutex registration_mu;  // guards registration and timer_ids
  TimerQueue* timers = nullptr;
  std::vector<uint64_t> timer_ids;  // GUARDED_BY(registration_mu)

  std::string Frame(const char* type, const CachedObject& object) {
    if (!table) {
      std::string frame = "{\"type\":\"";
      frame += type;
      frame += "\",\"object\":";
      frame += NeedsConversion(*resource)
                   ? ToServed(*resource, object.object()).dump(-1, ' ', false, json::error_handler_t::replace)
                   : object.Json();
      frame += "}\n";
      return frame;
    }
    std::vector<const json*> objects{&object.object()};
    json row_table = json::parse(TableBody(*resource, objects, object.object()["metadata"].value(
                                                                   "resourceVersion", ""), ""));
    if (table_header_sent) row_table["columnDefinitions"] = json::array();
    table_header_sent = true;
    return json{{"type", type}, {"object", std::move(row_table)}}.dump(
               -1, ' ', false, json::error_handler_t::replace) + "\n";
  }

  // A bookmark a minute tells the client how far it has seen, so a resume is cheap.
  void ScheduleBookmark(WatchCache* cache) {
    std::weak_ptr<WatchStream> weak = shared_from_this();
    std::lock_guard lock(registration_mu);
    timer_ids.push_back(timers->Schedule(
        TimerQueue::Clock::now() + std::chrono::seconds(60), [weak, cache] {
          auto self = weak.lock();
          if (!self) return;
          json bookmark = {
              {"type", "BOOKMARK"},
              {"object",
               {{"kind", self->resource->kind},
                {"apiVersion", self->resource->GroupVersion()},
                {"metadata", {{"resourceVersion", std::to_string(cache->revision())}}}}}};
          if (self->stream->Write(bookmark.dump() + "\n")) self->ScheduleBookmark(cache);
        }));
  }

  // Called by the watch cache's dispatcher, or while the watch starts (replay): must not block.
  // Calls for one watch never overlap and come in revision order (WatchCache's contract).
  void OnEvent(const CacheEventPtr& event) {
    if (!event) {  // the cache dropped this watch (compaction/restore): the client re-lists
      stream->Close();
      return;
    }
    const bool now_matches = filters.Matches(event->object->object());
    const bool before_matched = event->previous && filters.Matches(event->previous->object());
    const char* type = nullptr;
    switch (event->type) {
      case WatchEventType::kDeleted:
        if (now_matches) type = "DELETED";
        break;
      case WatchEventType::kAdded:
        if (now_matches) type = "ADDED";
        break;
      case WatchEventType::kModified:
        if (now_matches && before_matched) type = "MODIFIED";
        else if (now_matches) type = "ADDED";
        else if (before_matched) type = "DELETED";
        break;
    }
    if (type == nullptr) return;
    if (objects) {
      // In-process object path (decided at start): hand over the cache's shared object.
      stream->WriteObject(type, SharedObjectOf(event->object));
      return;
    }
    if (table) {
      stream->Write(Frame(type, *event->object));  // rows are per stream (header once)
      return;
    }
    // Every plain watcher of this resource sends the same bytes for this event: build them once
    // and share them (no per-watcher copy down to the TLS write).
    stream->WriteShared(
        event->frames.Get(resource, type, [&] { return Frame(type, *event->object); }));
  }
};

}  // namespace

void RestStorage::Watch(const RestRequest& request, std::shared_ptr<http::Responder> responder) {
  const ResourceInfo& resource = *request.resource;
  auto watch = std::make_shared<WatchStream>();
  watch->resource = &resource;
  watch->table = WantsTable(request);
  watch->timers = timers_;
  if (auto error = ParseFilters(request, &watch->filters)) return SendError(*responder, *error);
  if (!request.info.name.empty()) {
    // /namespaces/ns/pods/name?watch=true (the deprecated form) watches one object.
    auto fields = FieldSelector::Parse("metadata.name=" + request.info.name);
    if (fields.ok()) watch->filters.fields = std::move(*fields);
  }
  bool ok = true;
  const bool bookmarks = request.query.GetBool("allowWatchBookmarks", false, &ok);
  const std::string rv = request.query.Get("resourceVersion");
  int64_t after = 0;
  if (!rv.empty() && rv != "0") {
    try {
      after = std::stoll(rv);
    } catch (...) {
      return SendError(*responder, ApiError::BadRequest("invalid resourceVersion \"" + rv + "\""));
    }
  }
  int64_t timeout_seconds = 0;
  if (const std::string text = request.query.Get("timeoutSeconds"); !text.empty()) {
    try {
      timeout_seconds = std::stoll(text);
    } catch (...) {
      return SendError(*responder, ApiError::BadRequest("timeoutSeconds must be an integer"));
    }
  }
  if (timeout_seconds <= 0) {
    // Like kube-apiserver's --min-request-timeout: between 30 and 60 minutes.
    thread_local std::mt19937 random_engine{std::random_device{}()};
    timeout_seconds = 1800 + std::uniform_int_distribution<int>(0, 1800)(random_engine);
  }
  const std::string content_type =
      watch->table ? std::string(kTableContentType) : std::string("application/json");
  watch->stream = responder->StartStream(200, content_type);
  watch->objects = !watch->table && !NeedsConversion(resource) && watch->stream->AcceptsObjects();
  std::weak_ptr<WatchStream> weak = watch;
  auto registration = cache_->Watch(
      Prefix(resource, request.info.namespace_), after, rv.empty() || rv == "0",
      [weak](const CacheEventPtr& event) {
        if (auto self = weak.lock()) self->OnEvent(event);
      });
  if (!registration.ok()) {
    // Expired: one ERROR event with a 410 Status, then the end of the stream.
    ApiError gone = ApiError::Gone(registration.status().message());
    watch->stream->Write("{\"type\":\"ERROR\",\"object\":" + gone.ToJson() + "}\n");
    watch->stream->Close();
    return;
  }
  {
    std::lock_guard lock(watch->registration_mu);
    watch->registration = std::move(*registration);
  }
  const auto deadline = TimerQueue::Clock::now() + std::chrono::seconds(timeout_seconds);
  {
    std::lock_guard lock(watch->registration_mu);
    watch->timer_ids.push_back(timers_->Schedule(deadline, [weak] {
      if (auto self = weak.lock()) self->stream->Close();
    }));
  }
  if (bookmarks) watch->ScheduleBookmark(cache_);
  // When the stream ends the watch object dies: the registration and timers go with it.
  watch->stream->OnClosed([watch, timers = timers_]() mutable {
    std::unique_ptr<WatchCache::Registration> registration;
    {
      std::lock_guard lock(watch->registration_mu);
      for (uint64_t id : watch->timer_ids) timers->Cancel(id);
      registration = std::move(watch->registration);
    }
    registration.reset();
    watch.reset();
  });
}

}  // namespace mk8s::apiserver
