#include "client/informer.h"

#include <algorithm>
#include <random>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

namespace mk8s::client {

using json = nlohmann::json;

namespace {

std::string ResourceVersionOf(const json& object) {
  auto meta = object.find("metadata");
  if (meta == object.end() || !meta->is_object()) return "";
  return meta->value("resourceVersion", "");
}

// Runs one handler call. An exception (a handler's bug, or an object it cannot read) costs that
// delivery only: it is logged, and the watch thread, the other handlers and the daemon go on.
template <typename Call>
void Guarded(const ResourceRef& resource, const char* what, Call&& call) {
  try {
    call();
  } catch (const std::exception& error) {
    spdlog::error("informer {}: an {} handler failed: {}", resource.Name(), what, error.what());
  }
}

}  // namespace

Informer::Informer(std::shared_ptr<Client> client, ResourceRef resource, InformerOptions options)
    : client_(std::move(client)), resource_(std::move(resource)), options_(std::move(options)) {}

Informer::~Informer() { Stop(); }

void Informer::SetIndex(std::string name, IndexFunc index) {
  index_name_ = std::move(name);
  index_ = std::move(index);
}

namespace {
thread_local Informer::HandlerScope* current_scope = nullptr;
}  // namespace

Informer::HandlerScope::HandlerScope() { current_scope = this; }
Informer::HandlerScope::~HandlerScope() { current_scope = nullptr; }
std::vector<std::pair<Informer*, uint64_t>> Informer::HandlerScope::Take() {
  return std::move(registrations_);
}

uint64_t Informer::AddEventHandler(EventHandlers handlers) {
  uint64_t id = 0;
  {
    std::lock_guard hl(handlers_mu_);
    id = next_handler_id_++;
  }
  if (current_scope != nullptr) current_scope->registrations_.emplace_back(this, id);
  {
    std::lock_guard lock(inbox_->mu);
    if (inbox_->started && !inbox_->stopping) {
      // Replay the cache to this handler on the dispatch thread, then let it see new events.
      Item item{Item::kTask, 0, {}, nullptr, {}, [this, id, handlers = std::move(handlers)] {
                  {
                    std::lock_guard hl(handlers_mu_);
                    if (removed_early_.erase(id) != 0) return;  // removed before it started
                    auto next = std::make_shared<HandlerList>(*handlers_);
                    next->emplace_back(id, handlers);
                    handlers_ = std::move(next);
                  }
                  if (handlers.on_add) {
                    std::lock_guard dispatch(dispatch_mu_);
                    for (const ObjectPtr& object : List()) {
                      Guarded(resource_, "add", [&] { handlers.on_add(object); });
                    }
                  }
                }};
      inbox_->items.push_back(std::move(item));
      inbox_->cv.notify_all();
      return id;
    }
  }
  std::lock_guard hl(handlers_mu_);
  auto next = std::make_shared<HandlerList>(*handlers_);
  next->emplace_back(id, std::move(handlers));
  handlers_ = std::move(next);
  return id;
}

void Informer::RemoveEventHandler(uint64_t id) {
  {
    std::lock_guard hl(handlers_mu_);
    auto next = std::make_shared<HandlerList>();
    for (const auto& entry : *handlers_) {
      if (entry.first != id) next->push_back(entry);
    }
    if (next->size() == handlers_->size()) {
      removed_early_.insert(id);  // its replay task has not run yet
    }
    handlers_ = std::move(next);
  }
  // A dispatch in progress may still hold the old list: wait for it to finish.
  std::lock_guard dispatch(dispatch_mu_);
}

std::shared_ptr<const Informer::HandlerList> Informer::Handlers() {
  std::lock_guard lock(handlers_mu_);
  return handlers_;
}

void Informer::Start() {
  std::lock_guard lock(inbox_->mu);
  if (inbox_->started || inbox_->stopping) return;
  inbox_->started = true;
  thread_ = std::thread([this] { Run(); });
}

void Informer::Stop() {
  std::shared_ptr<StreamHandle> watch;
  {
    std::lock_guard lock(inbox_->mu);
    inbox_->stopping = true;
    watch = std::move(inbox_->watch);
    inbox_->cv.notify_all();
  }
  if (watch) watch->Cancel();
  if (thread_.joinable()) thread_.join();
}

bool Informer::WaitForSync(std::chrono::milliseconds timeout) const {
  std::unique_lock lock(sync_mu_);
  return sync_cv_.wait_for(lock, timeout, [&] { return synced_.load(); });
}

// --- lister

ObjectPtr Informer::Get(const std::string& key) const {
  std::shared_lock lock(cache_mu_);
  auto it = cache_.find(key);
  return it == cache_.end() ? nullptr : it->second;
}

ObjectPtr Informer::Get(const std::string& ns, const std::string& name) const {
  return Get(ns.empty() ? name : ns + "/" + name);
}

std::vector<ObjectPtr> Informer::List() const {
  std::shared_lock lock(cache_mu_);
  std::vector<ObjectPtr> out;
  out.reserve(cache_.size());
  for (const auto& [key, object] : cache_) out.push_back(object);
  return out;
}

std::vector<ObjectPtr> Informer::ListByNamespace(const std::string& ns) const {
  const std::string prefix = ns + "/";
  std::shared_lock lock(cache_mu_);
  std::vector<ObjectPtr> out;
  for (const auto& [key, object] : cache_) {
    if (key.compare(0, prefix.size(), prefix) == 0) out.push_back(object);
  }
  return out;
}

std::vector<ObjectPtr> Informer::ByIndex(const std::string& value) const {
  std::shared_lock lock(cache_mu_);
  std::vector<ObjectPtr> out;
  auto it = index_values_.find(value);
  if (it == index_values_.end()) return out;
  for (const std::string& key : it->second) {
    auto object = cache_.find(key);
    if (object != cache_.end()) out.push_back(object->second);
  }
  return out;
}

size_t Informer::Size() const {
  std::shared_lock lock(cache_mu_);
  return cache_.size();
}

std::string Informer::LastResourceVersion() const {
  std::shared_lock lock(cache_mu_);
  return resource_version_;
}

// --- dispatch thread

void Informer::IndexLocked(const std::string& key, const ObjectPtr& old_object,
                           const ObjectPtr& object) {
  if (!index_) return;
  if (old_object) {
    for (const std::string& value : index_(*old_object)) {
      auto it = index_values_.find(value);
      if (it == index_values_.end()) continue;
      it->second.erase(key);
      if (it->second.empty()) index_values_.erase(it);
    }
  }
  if (object) {
    for (const std::string& value : index_(*object)) index_values_[value].insert(key);
  }
}

void Informer::Upsert(const ObjectPtr& object) {
  const std::string key = ObjectKey(*object);
  ObjectPtr old_object;
  {
    std::unique_lock lock(cache_mu_);
    ObjectPtr& slot = cache_[key];
    old_object = std::move(slot);
    slot = object;
    IndexLocked(key, old_object, object);
    if (std::string rv = ResourceVersionOf(*object); !rv.empty()) resource_version_ = std::move(rv);
  }
  std::lock_guard dispatch(dispatch_mu_);
  for (const auto& [id, h] : *Handlers()) {
    if (old_object) {
      if (h.on_update) Guarded(resource_, "update", [&] { h.on_update(old_object, object); });
    } else if (h.on_add) {
      Guarded(resource_, "add", [&] { h.on_add(object); });
    }
  }
}

void Informer::Remove(const std::string& key, const ObjectPtr& last) {
  ObjectPtr old_object;
  {
    std::unique_lock lock(cache_mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) {
      old_object = std::move(it->second);
      cache_.erase(it);
      IndexLocked(key, old_object, nullptr);
    }
    if (last) {
      if (std::string rv = ResourceVersionOf(*last); !rv.empty()) resource_version_ = std::move(rv);
    }
  }
  const ObjectPtr& gone = last ? last : old_object;
  if (!gone) return;
  std::lock_guard dispatch(dispatch_mu_);
  for (const auto& [id, h] : *Handlers()) {
    if (h.on_delete) Guarded(resource_, "delete", [&] { h.on_delete(gone); });
  }
}

bool Informer::ListAndReplace() {
  ListOptions list_options;
  list_options.label_selector = options_.label_selector;
  list_options.field_selector = options_.field_selector;
  list_options.limit = options_.page_size;
  ApiResult<ListResult> result = client_->ListAll(resource_, options_.namespace_, list_options);
  if (!result.ok()) return false;
  list_count_++;
  // The diff against the cache, as the handlers would have seen it from the watch.
  std::unordered_map<std::string, ObjectPtr> fresh;
  std::vector<std::pair<ObjectPtr, ObjectPtr>> changed;  // (old or null, new)
  std::vector<ObjectPtr> removed;
  {
    std::unique_lock lock(cache_mu_);
    for (ObjectPtr& object : result->items) {
      std::string key = ObjectKey(*object);
      auto old = cache_.find(key);
      if (old == cache_.end()) {
        changed.emplace_back(nullptr, object);
      } else if (ResourceVersionOf(*old->second) != ResourceVersionOf(*object)) {
        changed.emplace_back(old->second, object);
      }
      fresh.emplace(std::move(key), std::move(object));
    }
    for (const auto& [key, object] : cache_) {
      if (!fresh.count(key)) removed.push_back(object);
    }
    cache_.swap(fresh);
    index_values_.clear();
    for (const auto& [key, object] : cache_) IndexLocked(key, nullptr, object);
    resource_version_ = result->resource_version;
  }
  std::lock_guard dispatch(dispatch_mu_);
  const std::shared_ptr<const HandlerList> handlers = Handlers();
  for (const auto& [old_object, object] : changed) {
    for (const auto& [id, h] : *handlers) {
      if (old_object) {
        if (h.on_update) Guarded(resource_, "update", [&] { h.on_update(old_object, object); });
      } else if (h.on_add) {
        Guarded(resource_, "add", [&] { h.on_add(object); });
      }
    }
  }
  for (const ObjectPtr& object : removed) {
    for (const auto& [id, h] : *handlers) {
      if (h.on_delete) Guarded(resource_, "delete", [&] { h.on_delete(object); });
    }
  }
  if (!synced_.exchange(true)) {
    std::lock_guard lock(sync_mu_);
    sync_cv_.notify_all();
  }
  return true;
}

bool Informer::ApplyLine(const std::string& line, WatchOutcome* outcome, uint64_t* events) {
  json event = json::parse(line, nullptr, /*allow_exceptions=*/false);
  if (!event.is_object() || !event.contains("object") || !event["object"].is_object()) {
    *outcome = WatchOutcome::kFailed;  // garbled stream: resume
    return false;
  }
  const std::string type = event.value("type", "");
  json& object = event["object"];
  if (type == "ADDED" || type == "MODIFIED") {
    ++*events;
    Upsert(std::make_shared<const json>(std::move(object)));
  } else if (type == "DELETED") {
    ++*events;
    const std::string key = ObjectKey(object);
    Remove(key, std::make_shared<const json>(std::move(object)));
  } else if (type == "BOOKMARK") {
    if (std::string rv = ResourceVersionOf(object); !rv.empty()) {
      std::unique_lock lock(cache_mu_);
      resource_version_ = std::move(rv);
    }
  } else if (type == "ERROR") {
    const int code = object.value("code", 0);
    *outcome = code == 410 ? WatchOutcome::kGone : WatchOutcome::kFailed;
    return false;
  }
  return true;
}

void Informer::ApplyObject(const std::string& type, const ObjectPtr& object, uint64_t* events) {
  if (!object || !object->is_object()) return;
  ++*events;
  if (type == "DELETED") {
    Remove(ObjectKey(*object), object);
  } else {  // ADDED or MODIFIED
    Upsert(object);
  }
}

void Informer::RunTasks(std::deque<Item>* items) {
  for (auto it = items->begin(); it != items->end();) {
    if (it->kind == Item::kTask) {
      it->task();
      it = items->erase(it);
    } else {
      ++it;
    }
  }
}

Informer::WatchOutcome Informer::WatchOnce() {
  ListOptions watch_options;
  watch_options.label_selector = options_.label_selector;
  watch_options.field_selector = options_.field_selector;
  watch_options.resource_version = LastResourceVersion();
  watch_options.allow_watch_bookmarks = true;
  {
    thread_local std::mt19937 random{std::random_device{}()};
    const int64_t min = std::max<int64_t>(1, options_.min_watch_timeout_seconds);
    watch_options.timeout_seconds = min + std::uniform_int_distribution<int64_t>(0, min - 1)(random);
  }
  uint64_t generation = 0;
  {
    std::lock_guard lock(inbox_->mu);
    if (inbox_->stopping) return WatchOutcome::kStopped;
    generation = ++inbox_->generation;
  }
  std::weak_ptr<Inbox> weak = inbox_;
  StreamCallbacks callbacks;
  callbacks.on_line = [weak, generation](std::string line) {
    if (auto inbox = weak.lock()) {
      std::lock_guard lock(inbox->mu);
      inbox->items.push_back(Item{Item::kLine, generation, std::move(line), nullptr, {}, nullptr});
      inbox->cv.notify_all();
    }
  };
  callbacks.on_object = [weak, generation](std::string_view type, ObjectPtr object) {
    if (auto inbox = weak.lock()) {
      std::lock_guard lock(inbox->mu);
      inbox->items.push_back(
          Item{Item::kObject, generation, std::string(type), std::move(object), {}, nullptr});
      inbox->cv.notify_all();
    }
  };
  callbacks.on_end = [weak, generation](Response response) {
    if (auto inbox = weak.lock()) {
      std::lock_guard lock(inbox->mu);
      inbox->items.push_back(Item{Item::kEnd, generation, {}, nullptr, std::move(response), nullptr});
      inbox->cv.notify_all();
    }
  };
  std::shared_ptr<StreamHandle> handle =
      client_->Watch(resource_, options_.namespace_, watch_options, std::move(callbacks));
  {
    std::lock_guard lock(inbox_->mu);
    if (inbox_->stopping) {
      handle->Cancel();
      return WatchOutcome::kStopped;
    }
    inbox_->watch = handle;
  }
  const auto started = std::chrono::steady_clock::now();
  uint64_t events = 0;
  WatchOutcome outcome = WatchOutcome::kEnded;
  for (bool running = true; running;) {
    std::deque<Item> items;
    {
      std::unique_lock lock(inbox_->mu);
      inbox_->cv.wait(lock, [&] { return inbox_->stopping || !inbox_->items.empty(); });
      if (inbox_->stopping) {
        outcome = WatchOutcome::kStopped;
        break;
      }
      items.swap(inbox_->items);
    }
    size_t i = 0;
    for (; i < items.size() && running; ++i) {
      Item& item = items[i];
      if (item.kind == Item::kTask) {
        item.task();
      } else if (item.generation != generation) {
        continue;  // left over from an earlier watch
      } else if (item.kind == Item::kLine) {
        running = ApplyLine(item.line, &outcome, &events);
      } else if (item.kind == Item::kObject) {
        ApplyObject(item.line, item.object, &events);
      } else {  // kEnd
        const int status = item.end.status;
        outcome = status == 410 ? WatchOutcome::kGone
                  : (status >= 200 && status < 300) ? WatchOutcome::kEnded
                                                    : WatchOutcome::kFailed;
        running = false;
      }
    }
    if (!running) {
      // Keep the tasks queued behind the end (in order); drop the rest of this watch's lines.
      std::lock_guard lock(inbox_->mu);
      auto at = inbox_->items.begin();
      for (; i < items.size(); ++i) {
        if (items[i].kind == Item::kTask) at = std::next(inbox_->items.insert(at, std::move(items[i])));
      }
    }
  }
  {
    std::lock_guard lock(inbox_->mu);
    if (inbox_->watch == handle) inbox_->watch.reset();
  }
  handle->Cancel();
  // A watch that ends at once without events (e.g. the server is going away) backs off too.
  if (outcome == WatchOutcome::kEnded && events == 0 &&
      std::chrono::steady_clock::now() - started < std::chrono::seconds(1)) {
    outcome = WatchOutcome::kFailed;
  }
  return outcome;
}

bool Informer::SleepFor(std::chrono::milliseconds delay) {
  std::unique_lock lock(inbox_->mu);
  const auto deadline = std::chrono::steady_clock::now() + delay;
  while (!inbox_->stopping) {
    if (inbox_->cv.wait_until(lock, deadline) == std::cv_status::timeout) break;
    std::deque<Item> items;
    items.swap(inbox_->items);
    lock.unlock();
    RunTasks(&items);
    lock.lock();
  }
  return !inbox_->stopping;
}

void Informer::Run() {
  bool need_list = true;
  std::chrono::milliseconds backoff = options_.min_backoff;
  auto fail = [&] {
    bool alive = SleepFor(backoff);
    backoff = std::min(backoff * 2, options_.max_backoff);
    return alive;
  };
  for (;;) {
    {
      std::deque<Item> items;
      {
        std::lock_guard lock(inbox_->mu);
        if (inbox_->stopping) return;
        items.swap(inbox_->items);
      }
      RunTasks(&items);  // lines of old watches are dropped here
    }
    if (need_list) {
      if (!ListAndReplace()) {
        if (!fail()) return;
        continue;
      }
      need_list = false;
    }
    switch (WatchOnce()) {
      case WatchOutcome::kStopped:
        return;
      case WatchOutcome::kGone:
        need_list = true;
        break;
      case WatchOutcome::kEnded:
        backoff = options_.min_backoff;
        break;
      case WatchOutcome::kFailed:
        if (!fail()) return;
        break;
    }
  }
}

}  // namespace mk8s::client
