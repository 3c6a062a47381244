// LogStreamer: answers container log requests from one worker thread, so the network threads
// never wait on disk and a following client never blocks anyone else.
//
// Threads: Submit() may be called from any thread; it queues the request and returns at once.
// The worker thread resolves the log file, answers errors, and then serves every open response
// in turn, reading at most one block per response per round (fair between clients), pacing
// itself on each client's unsent backlog, and polling followed files every `poll_interval`.
// Stop() (also run by the destructor) ends every response and joins the worker.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "apiserver/http/http_types.h"
#include "kubelet/server/log_options.h"

namespace mk8s::kubelet {

// The pod's uid by namespace and name, if known (the kubelet's informer lookup).
using PodUidLookup =
    std::function<std::optional<std::string>(const std::string& ns, const std::string& name)>;

struct LogRequest {
  std::string ns;
  std::string pod;
  std::string container;
  LogOptions options;
};

class LogStreamer {
 public:
  // `lookup` may be empty; it is called on the worker thread.
  LogStreamer(std::string log_root, PodUidLookup lookup,
              std::chrono::milliseconds poll_interval = std::chrono::milliseconds(100));
  ~LogStreamer();
  LogStreamer(const LogStreamer&) = delete;
  LogStreamer& operator=(const LogStreamer&) = delete;

  void Submit(LogRequest request, std::shared_ptr<apiserver::http::Responder> responder);
  void Stop();

  struct Session;  // one open log response (defined in the .cc)

 private:
  struct Job {
    LogRequest request;
    std::shared_ptr<apiserver::http::Responder> responder;
  };
  void Run();
  // Resolves the file and starts the response; null after answering an error.
  std::unique_ptr<Session> Open(Job job);

  const std::string log_root_;
  const PodUidLookup lookup_;
  const std::chrono::milliseconds poll_interval_;
  std::mutex mu_;
  std::condition_variable wake_;
  std::deque<Job> jobs_;                            // GUARDED_BY(mu_)
  bool stopping_ = false;                           // GUARDED_BY(mu_)
  std::vector<std::unique_ptr<Session>> sessions_;  // worker thread only
  std::vector<char> buffer_;                        // read scratch; worker thread only
  std::thread worker_;
};

}  // namespace mk8s::kubelet
