#include "kubelet/server/log_streamer.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include "kubelet/server/cri_log.h"
#include "kubelet/server/log_files.h"

namespace mk8s::kubelet {
namespace http = apiserver::http;

namespace {

constexpr size_t kReadBlock = 64 * 1024;
// A response whose client has this much unsent waits before more is read for it.
constexpr size_t kMaxBuffered = 1 << 20;
// A single log line longer than this is passed on in pieces rather than held.
constexpr size_t kMaxCarry = 1 << 20;

void SendText(http::Responder& responder, int status, std::string message) {
  responder.Send(
      http::Response{status, "text/plain; charset=utf-8", {}, std::move(message) + "\n"});
}

int HttpCode(const Status& status) {
  switch (status.code()) {
    case Code::kNotFound:
      return 404;
    case Code::kInvalidArgument:
      return 400;
    default:
      return 500;
  }
}

bool ValidSegment(const std::string& name) {
  return !name.empty() && name != "." && name != ".." &&
         name.find_first_of(std::string("/\0", 2)) == std::string::npos;
}

// kMore: read a full block, call again at once; kBlocked: the client is behind, retry soon;
// kIdle: nothing new, wait for the poll interval; kDone: end the response.
enum class Progress { kMore, kBlocked, kIdle, kDone };
constexpr auto kBlockedRetry = std::chrono::milliseconds(10);

}  // namespace

struct LogStreamer::Session {
  Session(const LogOptions& options) : formatter(options), follow(options.follow) {}
  ~Session() {
    if (fd >= 0) ::close(fd);
    if (stream) stream->Close();
  }

  // Reads (into `buffer`, kReadBlock bytes of scratch) and forwards what is new.
  Progress Step(char* buffer) {
    if (gone->load()) return Progress::kDone;
    if (stream->buffered_bytes() > kMaxBuffered) return Progress::kBlocked;
    ssize_t got = ::pread(fd, buffer, kReadBlock, offset);
    if (got == 0 && follow) {
      struct stat info {};
      if (::fstat(fd, &info) == 0 && info.st_size < offset) {
        offset = 0;  // truncated in place: start over
        carry.clear();
        return Progress::kMore;
      }
      // A newer restart's file means this container instance is finished: drain, then end.
      if (::access(
              (log.container_dir + "/" + std::to_string(log.restart_count + 1) + ".log").c_str(),
              F_OK) != 0) {
        return Progress::kIdle;
      }
      got = ::pread(fd, buffer, kReadBlock, offset);
      if (got == 0) return Finish();
    }
    if (got < 0) {
      spdlog::warn("reading {}: {}", log.path, std::strerror(errno));
      return Progress::kDone;
    }
    if (got == 0) return Finish();
    offset += got;
    carry.append(buffer, static_cast<size_t>(got));
    std::string out;
    size_t start = 0;
    for (size_t newline; (newline = carry.find('\n', start)) != std::string::npos;
         start = newline + 1) {
      formatter.AddLine(std::string_view(carry).substr(start, newline - start), &out);
    }
    carry.erase(0, start);
    if (carry.size() > kMaxCarry) {
      formatter.AddLine(carry, &out);
      carry.clear();
    }
    if (!out.empty() && !stream->Write(std::move(out))) return Progress::kDone;
    if (formatter.limit_reached()) return Progress::kDone;
    return static_cast<size_t>(got) == kReadBlock || !follow ? Progress::kMore : Progress::kIdle;
  }

  // End of a file that is not followed (or whose container instance is over): a last line
  // without '\n' is still shown.
  Progress Finish() {
    if (!carry.empty()) {
      std::string out;
      formatter.AddLine(carry, &out);
      carry.clear();
      if (!out.empty()) stream->Write(std::move(out));
    }
    return Progress::kDone;
  }

  LogFormatter formatter;
  const bool follow;
  ContainerLog log;
  int fd = -1;
  int64_t offset = 0;
  std::string carry;  // bytes of an unfinished line
  std::shared_ptr<http::ResponseStream> stream;
  std::shared_ptr<std::atomic<bool>> gone = std::make_shared<std::atomic<bool>>(false);
};

LogStreamer::LogStreamer(std::string log_root, PodUidLookup lookup,
                         std::chrono::milliseconds poll_interval)
    : log_root_(std::move(log_root)), lookup_(std::move(lookup)), poll_interval_(poll_interval) {
  buffer_.resize(kReadBlock);
  worker_ = std::thread([this] { Run(); });
}

LogStreamer::~LogStreamer() { Stop(); }

void LogStreamer::Submit(LogRequest request, std::shared_ptr<http::Responder> responder) {
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      jobs_.push_back(Job{std::move(request), std::move(responder)});
      wake_.notify_one();
      return;
    }
  }
  SendText(*responder, 503, "the kubelet is shutting down");
}

void LogStreamer::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    wake_.notify_one();
  }
  if (worker_.joinable()) worker_.join();
}

std::unique_ptr<LogStreamer::Session> LogStreamer::Open(Job job) {
  const LogRequest& request = job.request;
  http::Responder& responder = *job.responder;
  for (const std::string* name : {&request.ns, &request.pod, &request.container}) {
    if (!ValidSegment(*name)) {
      SendText(responder, 400, "invalid name \"" + *name + "\"");
      return nullptr;
    }
  }
  std::optional<std::string> uid;
  if (lookup_) uid = lookup_(request.ns, request.pod);
  Result<std::string> pod_dir = FindPodLogDir(log_root_, request.ns, request.pod, uid);
  if (!pod_dir.ok()) {
    SendText(responder, HttpCode(pod_dir.status()), pod_dir.status().message());
    return nullptr;
  }
  Result<ContainerLog> log =
      FindContainerLog(*pod_dir, request.pod, request.container, request.options.previous);
  if (!log.ok()) {
    SendText(responder, HttpCode(log.status()), log.status().message());
    return nullptr;
  }
  auto session = std::make_unique<Session>(request.options);
  session->log = std::move(*log);
  session->fd = ::open(session->log.path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat info {};
  if (session->fd < 0 || ::fstat(session->fd, &info) != 0) {
    SendText(
        responder, errno == ENOENT ? 404 : 500,
        "cannot open the log of container \"" + request.container + "\": " + std::strerror(errno));
    return nullptr;
  }
  if (request.options.tail_lines) {
    session->offset = TailOffset(session->fd, info.st_size, *request.options.tail_lines);
  }
  session->stream = responder.StartStream(200, "text/plain");
  session->stream->OnClosed([gone = session->gone] { gone->store(true); });
  return session;
}

void LogStreamer::Run() {
  for (;;) {
    std::deque<Job> jobs;
    {
      std::lock_guard lock(mu_);
      if (stopping_) break;
      jobs.swap(jobs_);
    }
    for (Job& job : jobs) {
      if (auto session = Open(std::move(job))) sessions_.push_back(std::move(session));
    }
    bool more = false;
    bool blocked = false;
    for (size_t i = 0; i < sessions_.size();) {
      const Progress progress = sessions_[i]->Step(buffer_.data());
      if (progress == Progress::kDone) {
        sessions_.erase(sessions_.begin() + static_cast<std::ptrdiff_t>(i));
        continue;
      }
      more = more || progress == Progress::kMore;
      blocked = blocked || progress == Progress::kBlocked;
      ++i;
    }
    if (more) continue;
    std::unique_lock lock(mu_);
    wake_.wait_for(lock,
                   blocked ? std::min<std::chrono::milliseconds>(kBlockedRetry, poll_interval_)
                           : poll_interval_,
                   [this] { return stopping_ || !jobs_.empty(); });
  }
  sessions_.clear();  // ends every response
  std::lock_guard lock(mu_);
  for (Job& job : jobs_) SendText(*job.responder, 503, "the kubelet is shutting down");
  jobs_.clear();
}

}  // namespace mk8s::kubelet
