#include "client/in_process_transport.h"

#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace mk8s::client {

namespace http = apiserver::http;

// A FIFO task runner with one thread. Post() is cheap and never runs the task inline, except
// after Shutdown() (teardown: nothing else would run it).
class InProcessTransport::Executor {
 public:
  Executor() : thread_([this] { Run(); }) {}
  ~Executor() {
    Shutdown();
    if (thread_.joinable()) {
      if (thread_.get_id() == std::this_thread::get_id()) thread_.detach();
      else thread_.join();
    }
  }

  void Post(std::function<void()> task) {
    {
      std::lock_guard lock(mu_);
      if (!stop_) {
        tasks_.push_back(std::move(task));
        cv_.notify_one();
        return;
      }
    }
    task();
  }

  // Runs the queued tasks, then stops the thread. Idempotent; not from the executor thread.
  void Shutdown() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
      cv_.notify_one();
    }
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
  }

 private:
  void Run() {
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait(lock, [&] { return stop_ || !tasks_.empty(); });
      if (tasks_.empty()) return;  // stop_ and drained
      std::function<void()> task = std::move(tasks_.front());
      tasks_.pop_front();
      lock.unlock();
      task();
      task = nullptr;  // destroy captures outside the lock
      lock.lock();
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> tasks_;  // GUARDED_BY(mu_)
  bool stop_ = false;                        // GUARDED_BY(mu_)
  std::thread thread_;
};

namespace {

using Executor = InProcessTransport::Executor;

// Most bytes a stream may have queued for the client; beyond that the stream is cut off (the
// informer resumes its watch), like a slow HTTPS client.
constexpr size_t kMaxPendingBytes = 64u << 20;
// What one queued shared object counts against that cap: the object itself is shared with the
// watch cache, so only the queue entry is really ours; this keeps the cap meaningful as a
// bound on how far behind the client may fall.
constexpr size_t kObjectEventCost = 1024;

// MK8S_INPROCESS_OBJECTS=0 turns the object path off (bytes as over HTTPS): an A/B switch for
// measuring what the shared objects save. Read once.
bool ObjectPathEnabled() {
  static const bool enabled = [] {
    const char* value = std::getenv("MK8S_INPROCESS_OBJECTS");
    return value == nullptr || std::string_view(value) != "0";
  }();
  return enabled;
}

// One queued piece of a stream: bytes, or a watch event carrying a shared object.
struct Chunk {
  std::string bytes;  // the bytes, or the event type when `object` is set
  ObjectPtr object;
};

// One response on the client side: a plain answer (Send), a streamed answer collected into one
// body (Send of a streaming endpoint), or a line stream (Stream). Server threads call Write/Close/
// Send; all client callbacks run on the executor, serialized by `draining`.
// Object path: a line stream whose callbacks have on_object accepts watch events as shared
// objects (WriteObject); a Send whose request has accept_objects accepts a list answered with
// shared objects (AnswerObjects). Both keep their order with the byte chunks.
class ClientStream : public http::ResponseStream,
                     public StreamHandle,
                     public std::enable_shared_from_this<ClientStream> {
 public:
  ClientStream(std::shared_ptr<Executor> executor, StreamCallbacks callbacks, bool collect,
               bool accept_list_objects = false)
      : executor_(std::move(executor)),
        callbacks_(std::move(callbacks)),
        collect_(collect),
        stream_objects_(!collect && callbacks_.on_object != nullptr && ObjectPathEnabled()),
        list_objects_(collect && accept_list_objects && ObjectPathEnabled()) {}

  bool accepts_list_objects() const { return list_objects_; }

  // http::ResponseStream
  bool Write(std::string chunk) override {
    std::unique_lock lock(mu_);
    if (closed_) return false;
    if (pending_bytes_ + chunk.size() > kMaxPendingBytes) {
      closed_ = true;
      status_ = 0;
      error_ = "the client fell too far behind the stream";
      ScheduleAndUnlock(lock);
      return false;
    }
    pending_bytes_ += chunk.size();
    pending_.push_back(Chunk{std::move(chunk), nullptr});
    ScheduleAndUnlock(lock);
    return true;
  }
  bool AcceptsObjects() const override { return stream_objects_; }
  bool WriteObject(std::string_view type, http::SharedObject object) override {
    if (!stream_objects_ || !object) return false;
    std::unique_lock lock(mu_);
    if (closed_) return false;
    if (pending_bytes_ + kObjectEventCost > kMaxPendingBytes) {
      closed_ = true;
      status_ = 0;
      error_ = "the client fell too far behind the stream";
      ScheduleAndUnlock(lock);
      return false;
    }
    pending_bytes_ += kObjectEventCost;
    pending_.push_back(Chunk{std::string(type), std::move(object)});
    ScheduleAndUnlock(lock);
    return true;
  }
  void Close() override {
    std::unique_lock lock(mu_);
    if (closed_) return;
    closed_ = true;
    ScheduleAndUnlock(lock);
  }
  void OnClosed(std::function<void()> callback) override {
    {
      std::lock_guard lock(mu_);
      if (!closed_) {
        on_closed_.push_back(std::move(callback));
        return;
      }
    }
    callback();
  }

  // StreamHandle
  void Cancel() override {
    std::unique_lock lock(mu_);
    cancelled_ = true;
    if (closed_) return;
    closed_ = true;
    status_ = 0;
    error_ = "cancelled";
    ScheduleAndUnlock(lock);
  }

  // Called by the responder.
  void Started(int status, std::string content_type) {
    std::lock_guard lock(mu_);
    if (!answered_) {
      answered_ = true;
      if (status_ != 0 || !closed_) status_ = status;
      content_type_ = std::move(content_type);
    }
  }
  void Answer(http::Response response) {
    std::unique_lock lock(mu_);
    if (answered_ || closed_) {
      answered_ = true;
      return;
    }
    answered_ = true;
    closed_ = true;
    status_ = response.status;
    content_type_ = std::move(response.content_type);
    whole_body_ = std::move(response.body);
    ScheduleAndUnlock(lock);
  }
  void AnswerObjects(http::Response envelope, std::vector<http::SharedObject> items) {
    if (!list_objects_) {
      // Not asked for: a programming error on the server side. Never lose the items silently.
      return Answer(http::Response{500, "application/json", {}, "objects sent to a byte stream"});
    }
    std::unique_lock lock(mu_);
    if (answered_ || closed_) {
      answered_ = true;
      return;
    }
    whole_items_ = std::move(items);
    lock.unlock();
    Answer(std::move(envelope));
  }
  void Abandon() {
    std::unique_lock lock(mu_);
    if (answered_ || closed_) return;
    closed_ = true;
    status_ = 0;
    error_ = "the API server dropped the request without an answer";
    ScheduleAndUnlock(lock);
  }

 private:
  // Queues a Drain() unless one is pending. Releases `lock` (held on mu_) before posting: after
  // the transport's Shutdown() the executor runs the task inline, and Drain() takes mu_ (posting
  // under the lock deadlocked a server thread answering after the transport was destroyed).
  void ScheduleAndUnlock(std::unique_lock<std::mutex>& lock) {
    const bool post = !scheduled_;
    scheduled_ = true;
    lock.unlock();
    if (post) executor_->Post([self = shared_from_this()] { self->Drain(); });
  }

  // Executor thread only.
  void Drain() {
    std::deque<Chunk> chunks;
    std::vector<std::function<void()>> on_closed;
    bool closed = false;
    bool cancelled = false;
    {
      std::lock_guard lock(mu_);
      scheduled_ = false;
      chunks.swap(pending_);
      pending_bytes_ = 0;
      closed = closed_;
      cancelled = cancelled_;
      if (closed) on_closed.swap(on_closed_);
    }
    for (Chunk& chunk : chunks) {
      if (chunk.object) {
        if (!cancelled && !ended_ && callbacks_.on_object) {
          callbacks_.on_object(chunk.bytes, std::move(chunk.object));
        }
      } else if (collect_) {
        body_ += chunk.bytes;
      } else if (!cancelled && !ended_) {
        splitter_.Feed(chunk.bytes, [&](std::string line) {
          if (callbacks_.on_line) callbacks_.on_line(std::move(line));
        });
      }
    }
    if (!closed) return;
    for (auto& callback : on_closed) callback();
    if (ended_) return;
    ended_ = true;
    Response response;
    {
      std::lock_guard lock(mu_);
      response.status = status_;
      response.content_type = content_type_;
      if (status_ == 0) response.body = error_;
      else if (!whole_body_.empty()) response.body = std::move(whole_body_);
      else if (collect_) response.body = std::move(body_);
      if (status_ != 0 && whole_items_) response.items = std::move(whole_items_);
    }
    if (callbacks_.on_end) callbacks_.on_end(std::move(response));
    callbacks_ = StreamCallbacks{};  // release captures
  }

  std::shared_ptr<Executor> executor_;
  std::mutex mu_;
  std::deque<Chunk> pending_;                        // GUARDED_BY(mu_)
  size_t pending_bytes_ = 0;                         // GUARDED_BY(mu_)
  std::vector<std::function<void()>> on_closed_;     // GUARDED_BY(mu_)
  bool closed_ = false;                              // GUARDED_BY(mu_)
  bool cancelled_ = false;                           // GUARDED_BY(mu_)
  bool answered_ = false;                            // GUARDED_BY(mu_)
  bool scheduled_ = false;                           // GUARDED_BY(mu_)
  int status_ = 200;                                 // GUARDED_BY(mu_)
  std::string content_type_;                         // GUARDED_BY(mu_)
  std::string whole_body_;                           // GUARDED_BY(mu_)
  std::string error_;                                // GUARDED_BY(mu_)
  std::optional<std::vector<ObjectPtr>> whole_items_;  // AnswerObjects' items. GUARDED_BY(mu_)
  // Executor thread only:
  StreamCallbacks callbacks_;
  const bool collect_;
  const bool stream_objects_;  // a line stream that takes watch events as objects
  const bool list_objects_;    // a collected answer that takes a list as objects
  std::string body_;
  LineSplitter splitter_;
  bool ended_ = false;
};

class ClientResponder : public http::Responder {
 public:
  explicit ClientResponder(std::shared_ptr<ClientStream> stream) : stream_(std::move(stream)) {}
  ~ClientResponder() override { stream_->Abandon(); }

  void Send(http::Response response) override { stream_->Answer(std::move(response)); }
  std::shared_ptr<http::ResponseStream> StartStream(int status, std::string content_type,
                                                    std::vector<http::Header>) override {
    stream_->Started(status, std::move(content_type));
    return stream_;
  }
  bool AcceptsObjects() const override { return stream_->accepts_list_objects(); }
  void SendObjects(http::Response envelope, std::vector<http::SharedObject> items) override {
    stream_->AnswerObjects(std::move(envelope), std::move(items));
  }

 private:
  std::shared_ptr<ClientStream> stream_;
};

}  // namespace

std::shared_ptr<InProcessTransport> InProcessTransport::Create(http::Handler handler,
                                                               std::string identity) {
  return std::shared_ptr<InProcessTransport>(
      new InProcessTransport(std::move(handler), std::move(identity)));
}

InProcessTransport::InProcessTransport(http::Handler handler, std::string identity)
    : handler_(std::move(handler)),
      identity_(std::move(identity)),
      executor_(std::make_shared<Executor>()) {}

InProcessTransport::~InProcessTransport() { executor_->Shutdown(); }

http::Request InProcessTransport::ToHttp(Request request) const {
  http::Request out;
  out.method = std::move(request.method);
  out.target = request.Target();
  out.path = std::move(request.path);
  out.query = std::move(request.query);
  out.headers.push_back({"accept", "application/json"});
  if (!request.content_type.empty()) out.headers.push_back({"content-type", request.content_type});
  for (auto& [name, value] : request.headers) out.headers.push_back({name, value});
  out.body = std::move(request.body);
  return out;
}

void InProcessTransport::Send(Request request, ResponseCallback done) {
  StreamCallbacks callbacks;
  callbacks.on_end = std::move(done);
  const bool accept_objects = request.accept_objects;
  auto stream = std::make_shared<ClientStream>(executor_, std::move(callbacks), /*collect=*/true,
                                               accept_objects);
  handler_(ToHttp(std::move(request)), std::make_shared<ClientResponder>(stream));
}

std::shared_ptr<StreamHandle> InProcessTransport::Stream(Request request,
                                                         StreamCallbacks callbacks) {
  auto stream = std::make_shared<ClientStream>(executor_, std::move(callbacks), /*collect=*/false);
  handler_(ToHttp(std::move(request)), std::make_shared<ClientResponder>(stream));
  return stream;
}

std::string InProcessTransport::Describe() const {
  return identity_.empty() ? "in-process" : "in-process as " + identity_;
}

}  // namespace mk8s::client
