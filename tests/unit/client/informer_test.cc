// Informer protocol on a scripted transport: initial list, watch events, bookmarks, resume after
// a watch ends, and the re-list diff after 410 Gone.
#include "client/informer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <nlohmann/json.hpp>

#include "client/shared_informer_factory.h"

namespace mk8s::client {
namespace {

using json = nlohmann::json;
using std::chrono::seconds;

json Pod(const std::string& name, const std::string& rv, const std::string& node = "") {
  json pod = {{"apiVersion", "v1"},
              {"kind", "Pod"},
              {"metadata", {{"name", name}, {"namespace", "default"}, {"resourceVersion", rv}}}};
  if (!node.empty()) pod["spec"]["nodeName"] = node;
  return pod;
}

json List(std::vector<json> items, const std::string& rv) {
  return {{"kind", "PodList"}, {"metadata", {{"resourceVersion", rv}}}, {"items", items}};
}

std::string Event(const std::string& type, const json& object) {
  return json{{"type", type}, {"object", object}}.dump();
}

// Lists answer from a script; watches are recorded so the test can drive them. Callbacks run on
// the test thread (like a transport thread: the informer only queues).
class FakeTransport : public Transport {
 public:
  struct Watch : StreamHandle {
    Request request;
    StreamCallbacks callbacks;
    std::atomic<bool> cancelled{false};
    void Cancel() override { cancelled = true; }
  };

  void Send(Request request, ResponseCallback done) override {
    Response response;
    {
      std::lock_guard lock(mu_);
      requests_.push_back(request.Target());
      if (lists_.empty()) {
        response = Response{503, "application/json", R"({"kind":"Status","code":503})"};
      } else {
        response = Response{200, "application/json", lists_.front().dump()};
        lists_.pop_front();
      }
    }
    done(std::move(response));
  }
  std::shared_ptr<StreamHandle> Stream(Request request, StreamCallbacks callbacks) override {
    auto watch = std::make_shared<Watch>();
    watch->request = std::move(request);
    watch->callbacks = std::move(callbacks);
    std::lock_guard lock(mu_);
    watches_.push_back(watch);
    cv_.notify_all();
    return watch;
  }
  std::string Describe() const override { return "fake"; }

  void AddList(json list) {
    std::lock_guard lock(mu_);
    lists_.push_back(std::move(list));
  }
  // Waits for the n-th watch (1-based).
  std::shared_ptr<Watch> WaitWatch(size_t n) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, seconds(10), [&] { return watches_.size() >= n; });
    return watches_.size() >= n ? watches_[n - 1] : nullptr;
  }
  std::vector<std::string> requests() {
    std::lock_guard lock(mu_);
    return requests_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<json> lists_;
  std::vector<std::string> requests_;
  std::vector<std::shared_ptr<Watch>> watches_;
};

// Records handler calls as "add a", "update a", "delete a" (dispatch thread).
class Recorder {
 public:
  EventHandlers Handlers() {
    return EventHandlers{
        [this](const ObjectPtr& o) { Record("add " + Name(*o) + "@" + Rv(*o)); },
        [this](const ObjectPtr&, const ObjectPtr& n) { Record("update " + Name(*n) + "@" + Rv(*n)); },
        [this](const ObjectPtr& o) { Record("delete " + Name(*o)); }};
  }
  // Waits until `n` events were recorded; returns them all.
  std::vector<std::string> WaitFor(size_t n) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, seconds(10), [&] { return events_.size() >= n; });
    return events_;
  }

 private:
  static std::string Name(const json& o) { return o["metadata"]["name"]; }
  static std::string Rv(const json& o) { return o["metadata"]["resourceVersion"]; }
  void Record(std::string event) {
    std::lock_guard lock(mu_);
    events_.push_back(std::move(event));
    cv_.notify_all();
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::string> events_;
};

InformerOptions FastOptions() {
  InformerOptions options;
  options.min_backoff = std::chrono::milliseconds(1);
  options.max_backoff = std::chrono::milliseconds(10);
  return options;
}

TEST(InformerTest, ListsWatchesAndIndexes) {
  auto transport = std::make_shared<FakeTransport>();
  transport->AddList(List({Pod("a", "1", "n1"), Pod("b", "2", "n2")}, "5"));
  Informer informer(std::make_shared<Client>(transport), kPods, FastOptions());
  informer.SetIndex("node", [](const json& pod) {
    std::vector<std::string> values;
    if (pod.contains("spec")) values.push_back(pod["spec"].value("nodeName", ""));
    return values;
  });
  Recorder recorder;
  informer.AddEventHandler(recorder.Handlers());
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(seconds(10)));
  EXPECT_EQ(recorder.WaitFor(2), (std::vector<std::string>{"add a@1", "add b@2"}));
  EXPECT_EQ(informer.Size(), 2u);
  ASSERT_NE(informer.Get("default/a"), nullptr);
  EXPECT_EQ(informer.ListByNamespace("default").size(), 2u);
  EXPECT_EQ(informer.ListByNamespace("other").size(), 0u);
  ASSERT_EQ(informer.ByIndex("n1").size(), 1u);

  auto watch = transport->WaitWatch(1);
  ASSERT_NE(watch, nullptr);
  EXPECT_NE(watch->request.query.find("resourceVersion=5"), std::string::npos);
  EXPECT_NE(watch->request.query.find("allowWatchBookmarks=true"), std::string::npos);
  watch->callbacks.on_line(Event("MODIFIED", Pod("a", "6", "n2")));
  watch->callbacks.on_line(Event("ADDED", Pod("c", "7")));
  watch->callbacks.on_line(Event("DELETED", Pod("b", "8")));
  watch->callbacks.on_line(
      Event("BOOKMARK", {{"kind", "Pod"}, {"metadata", {{"resourceVersion", "9"}}}}));
  EXPECT_EQ(recorder.WaitFor(5), (std::vector<std::string>{"add a@1", "add b@2", "update a@6",
                                                           "add c@7", "delete b"}));
  EXPECT_EQ(informer.ByIndex("n2").size(), 1u);  // a moved from n1 to n2
  EXPECT_EQ(informer.ByIndex("n1").size(), 0u);
  EXPECT_EQ(informer.Get("default", "b"), nullptr);

  // The watch ends normally: the informer resumes from the bookmark, without a re-list.
  watch->callbacks.on_end(Response{200, "application/json", ""});
  auto resumed = transport->WaitWatch(2);
  ASSERT_NE(resumed, nullptr);
  EXPECT_NE(resumed->request.query.find("resourceVersion=9"), std::string::npos);
  EXPECT_EQ(informer.list_count(), 1u);

  // A handler added late sees the cache as adds first.
  Recorder late;
  informer.AddEventHandler(late.Handlers());
  auto replay = late.WaitFor(2);
  std::sort(replay.begin(), replay.end());
  EXPECT_EQ(replay, (std::vector<std::string>{"add a@6", "add c@7"}));
  informer.Stop();
  EXPECT_TRUE(resumed->cancelled);
}

// Components sharing an informer remove exactly their own handlers; a removed handler never runs
// again, even one removed before its replay of the cache ran.
TEST(InformerTest, RemovedHandlersStopAndScopesRecordRegistrations) {
  auto transport = std::make_shared<FakeTransport>();
  transport->AddList(List({Pod("a", "1")}, "5"));
  Informer informer(std::make_shared<Client>(transport), kPods, FastOptions());
  Recorder kept, removed;
  informer.AddEventHandler(kept.Handlers());
  std::vector<std::pair<Informer*, uint64_t>> recorded;
  {
    Informer::HandlerScope scope;
    informer.AddEventHandler(removed.Handlers());
    recorded = scope.Take();
  }
  ASSERT_EQ(recorded.size(), 1u);
  EXPECT_EQ(recorded[0].first, &informer);
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(seconds(10)));
  EXPECT_EQ(removed.WaitFor(1), (std::vector<std::string>{"add a@1"}));
  informer.RemoveEventHandler(recorded[0].second);
  auto watch = transport->WaitWatch(1);
  ASSERT_NE(watch, nullptr);
  watch->callbacks.on_line(Event("ADDED", Pod("b", "6")));
  EXPECT_EQ(kept.WaitFor(2), (std::vector<std::string>{"add a@1", "add b@6"}));
  EXPECT_EQ(removed.WaitFor(1), (std::vector<std::string>{"add a@1"}));
  // Added after Start (its replay runs on the dispatch thread, maybe not yet) and removed at
  // once: whatever it saw before RemoveEventHandler returned, it sees nothing after.
  Recorder late;
  const uint64_t id = informer.AddEventHandler(late.Handlers());
  informer.RemoveEventHandler(id);
  const size_t seen_before_removal = late.WaitFor(0).size();
  watch->callbacks.on_line(Event("ADDED", Pod("c", "7")));
  EXPECT_EQ(kept.WaitFor(3).size(), 3u);
  informer.Stop();
  EXPECT_EQ(late.WaitFor(0).size(), seen_before_removal);
  EXPECT_EQ(removed.WaitFor(1).size(), 1u);
}

TEST(InformerTest, AThrowingHandlerCostsOnlyItsOwnDelivery) {
  auto transport = std::make_shared<FakeTransport>();
  transport->AddList(List({Pod("a", "1")}, "5"));
  Informer informer(std::make_shared<Client>(transport), kPods, FastOptions());
  // A handler that reads a field the object does not have, the way a bug would.
  EventHandlers throwing;
  throwing.on_add = [](const ObjectPtr& o) { (void)o->at("spec").at("nodeName"); };
  throwing.on_update = [](const ObjectPtr&, const ObjectPtr& o) {
    (void)o->at("spec").at("nodeName");
  };
  informer.AddEventHandler(std::move(throwing));
  Recorder after;
  informer.AddEventHandler(after.Handlers());
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(seconds(10)));
  auto watch = transport->WaitWatch(1);
  ASSERT_NE(watch, nullptr);
  watch->callbacks.on_line(Event("MODIFIED", Pod("a", "6")));
  watch->callbacks.on_line(Event("ADDED", Pod("b", "7")));
  // The next handler and the watch thread went on.
  EXPECT_EQ(after.WaitFor(3), (std::vector<std::string>{"add a@1", "update a@6", "add b@7"}));
  informer.Stop();
}

TEST(InformerTest, GoneReListsAndEmitsTheDiff) {
  auto transport = std::make_shared<FakeTransport>();
  transport->AddList(List({Pod("a", "1"), Pod("b", "2"), Pod("keep", "3")}, "10"));
  Informer informer(std::make_shared<Client>(transport), kPods, FastOptions());
  Recorder recorder;
  informer.AddEventHandler(recorder.Handlers());
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(seconds(10)));
  ASSERT_EQ(recorder.WaitFor(3).size(), 3u);
  auto watch = transport->WaitWatch(1);
  ASSERT_NE(watch, nullptr);

  // While disconnected: a changed, b deleted, c created, keep untouched.
  transport->AddList(List({Pod("a", "11"), Pod("keep", "3"), Pod("c", "12")}, "20"));
  watch->callbacks.on_line(Event("ERROR", {{"kind", "Status"}, {"code", 410}, {"reason", "Expired"}}));
  auto events = recorder.WaitFor(6);
  EXPECT_EQ(std::vector<std::string>(events.begin() + 3, events.end()),
            (std::vector<std::string>{"update a@11", "add c@12", "delete b"}));
  EXPECT_EQ(informer.list_count(), 2u);
  EXPECT_EQ(informer.Size(), 3u);
  auto rewatch = transport->WaitWatch(2);
  ASSERT_NE(rewatch, nullptr);
  EXPECT_NE(rewatch->request.query.find("resourceVersion=20"), std::string::npos);

  // An HTTP 410 answer to the watch request also re-lists.
  transport->AddList(List({Pod("keep", "3")}, "30"));
  rewatch->callbacks.on_end(Response{410, "application/json", R"({"kind":"Status","code":410})"});
  events = recorder.WaitFor(8);
  std::vector<std::string> tail(events.begin() + 6, events.end());
  std::sort(tail.begin(), tail.end());
  EXPECT_EQ(tail, (std::vector<std::string>{"delete a", "delete c"}));
  EXPECT_EQ(informer.LastResourceVersion(), "30");
}

TEST(InformerTest, ListFailureRetries) {
  auto transport = std::make_shared<FakeTransport>();  // first list: 503
  Informer informer(std::make_shared<Client>(transport), kPods, FastOptions());
  informer.Start();
  EXPECT_FALSE(informer.WaitForSync(std::chrono::milliseconds(20)));
  transport->AddList(List({Pod("a", "1")}, "2"));
  ASSERT_TRUE(informer.WaitForSync(seconds(10)));
  EXPECT_EQ(informer.Size(), 1u);
}

// The object path (in-process transport): events arrive as shared objects, interleaved in order
// with lines (bookmarks); the cache keeps the very object it was handed, no copy.
TEST(InformerTest, SharedObjectEventsAreCachedWithoutCopies) {
  auto transport = std::make_shared<FakeTransport>();
  transport->AddList(List({Pod("a", "1")}, "5"));
  Informer informer(std::make_shared<Client>(transport), kPods, FastOptions());
  Recorder recorder;
  informer.AddEventHandler(recorder.Handlers());
  informer.Start();
  ASSERT_TRUE(informer.WaitForSync(seconds(10)));
  auto watch = transport->WaitWatch(1);
  ASSERT_NE(watch, nullptr);
  ASSERT_TRUE(watch->callbacks.on_object) << "the informer must offer the object path";
  auto a6 = std::make_shared<const json>(Pod("a", "6"));
  auto b7 = std::make_shared<const json>(Pod("b", "7"));
  watch->callbacks.on_object("MODIFIED", a6);
  watch->callbacks.on_object("ADDED", b7);
  watch->callbacks.on_line(
      Event("BOOKMARK", {{"kind", "Pod"}, {"metadata", {{"resourceVersion", "8"}}}}));
  watch->callbacks.on_object("DELETED", std::make_shared<const json>(Pod("a", "9")));
  watch->callbacks.on_object("ADDED", nullptr);  // ignored, never a crash
  EXPECT_EQ(recorder.WaitFor(4),
            (std::vector<std::string>{"add a@1", "update a@6", "add b@7", "delete a"}));
  EXPECT_EQ(informer.Get("default/b").get(), b7.get());  // the same object, not a copy
  EXPECT_EQ(informer.Get("default/a"), nullptr);
  EXPECT_EQ(informer.LastResourceVersion(), "9");
  // A resumed watch starts from the last object's resourceVersion.
  watch->callbacks.on_end(Response{200, "application/json", ""});
  auto resumed = transport->WaitWatch(2);
  ASSERT_NE(resumed, nullptr);
  EXPECT_NE(resumed->request.query.find("resourceVersion=9"), std::string::npos);
  informer.Stop();
}

TEST(SharedInformerFactoryTest, SharesOneInformerPerResource) {
  auto transport = std::make_shared<FakeTransport>();
  transport->AddList(List({Pod("a", "1")}, "2"));
  transport->AddList(List({}, "2"));
  SharedInformerFactory factory(std::make_shared<Client>(transport), FastOptions());
  Informer* pods = factory.For(kPods);
  EXPECT_EQ(factory.For(kPods), pods);
  EXPECT_NE(factory.For(kNodes), pods);
  factory.Start();
  EXPECT_TRUE(factory.WaitForCacheSync(seconds(10)));
  factory.Shutdown();
}

}  // namespace
}  // namespace mk8s::client
