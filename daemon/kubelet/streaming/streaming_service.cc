#include "kubelet/streaming/streaming_service.h"

#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <condition_variable>
#include <map>
#include <mutex>

#include <chrono>
#include <sstream>
#include <thread>

#include "common/url_encoding.h"
#include "kubelet/streaming/bridges.h"
#include "kubelet/streaming/spdy_client.h"
#include "kubelet/streaming/upstream.h"
#include "kubelet/streaming/websocket.h"

namespace mk8s::kubelet {
namespace {

namespace http = apiserver::http;

constexpr auto kUpstreamTimeout = std::chrono::seconds(10);
constexpr const char* kPortForwardProtocol = "portforward.k8s.io";
constexpr const char* kTunnelProtocol = "SPDY/3.1+portforward.k8s.io";

enum class Kind { kExec, kAttach, kPortForward };

std::string Lower(std::string_view in) {
  std::string out(in);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool Truthy(const std::string& v) { return v == "1" || v == "true" || v == "True"; }

// Every value of every header `name` (comma-separated lists split, trimmed).
std::vector<std::string> HeaderList(const http::Request& request, std::string_view name) {
  std::vector<std::string> out;
  for (const auto& header : request.headers) {
    if (header.name != name) continue;
    std::stringstream list(header.value);
    for (std::string item; std::getline(list, item, ',');) {
      const size_t a = item.find_first_not_of(" \t"), b = item.find_last_not_of(" \t");
      if (a != std::string::npos) out.push_back(item.substr(a, b - a + 1));
    }
  }
  return out;
}

// Parses the path and the query; false when the path is not a streaming endpoint.
bool ParseTarget(const http::Request& request, Kind* kind, StreamTarget* target,
                 std::string* error) {
  std::vector<std::string> parts;
  std::stringstream path(request.path);
  for (std::string part; std::getline(path, part, '/');) {
    if (!part.empty()) parts.push_back(part);
  }
  if (parts.empty()) return false;
  if (parts[0] == "exec")
    *kind = Kind::kExec;
  else if (parts[0] == "attach")
    *kind = Kind::kAttach;
  else if (parts[0] == "portforward")
    *kind = Kind::kPortForward;
  else
    return false;
  const size_t n = parts.size();
  if (*kind == Kind::kPortForward) {
    if (n != 3 && n != 4) {
      *error = "expected /portforward/{namespace}/{pod}[/{uid}]";
      return true;
    }
    target->namespace_ = parts[1];
    target->pod = parts[2];
    if (n == 4) target->uid = parts[3];
  } else {
    if (n != 4 && n != 5) {
      *error = "expected /" + parts[0] + "/{namespace}/{pod}[/{uid}]/{container}";
      return true;
    }
    target->namespace_ = parts[1];
    target->pod = parts[2];
    if (n == 5) target->uid = parts[3];
    target->container = parts[n - 1];
  }
  for (const auto& [key, value] : common::ParseQuery(request.query)) {
    if (key == "command")
      target->command.push_back(value);
    else if (key == "stdin" || key == "input")
      target->in = Truthy(value);
    else if (key == "stdout" || key == "output")
      target->out = Truthy(value);
    else if (key == "stderr" || key == "error")
      target->err = Truthy(value);
    else if (key == "tty")
      target->tty = Truthy(value);
  }
  if (*kind == Kind::kExec && target->command.empty()) {
    *error = "you must specify at least 1 command";
  } else if (*kind != Kind::kPortForward && !target->in && !target->out && !target->err) {
    *error = "you must specify at least 1 of stdin, stdout, stderr";
  }
  return true;
}

void SendText(http::Responder& responder, int status, const std::string& text,
              std::vector<http::Header> headers = {}) {
  responder.Send(
      http::Response{status, "text/plain; charset=utf-8", std::move(headers), text + "\n"});
}

int HttpCode(const Status& status) {
  switch (status.code()) {
    case Code::kNotFound:
      return 404;
    case Code::kInvalidArgument:
      return 400;
    case Code::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

// The negotiated client protocol.
struct Negotiated {
  bool websocket = false;
  std::string protocol;  // WebSocket subprotocol, or the SPDY X-Stream-Protocol-Version list
  std::string ws_key;
};

}  // namespace

struct StreamingService::State {
  explicit State(std::shared_ptr<StreamingRuntime> r) : runtime(std::move(r)) {}
  const std::shared_ptr<StreamingRuntime> runtime;
  std::mutex mu;
  std::condition_variable idle;
  bool stopping = false;           // GUARDED_BY(mu)
  uint64_t next_id = 0;            // GUARDED_BY(mu)
  std::map<uint64_t, int> cancel;  // GUARDED_BY(mu): live session -> dup'ed fd
  int threads = 0;                 // GUARDED_BY(mu)
};

namespace {

void RunSession(const std::shared_ptr<StreamingService::State>& state, http::Request request,
                std::shared_ptr<http::Responder> responder, uint64_t id);

}  // namespace

StreamingService::StreamingService(std::shared_ptr<StreamingRuntime> runtime)
    : state_(std::make_shared<State>(std::move(runtime))) {}

StreamingService::~StreamingService() { Stop(); }

bool StreamingService::Serve(http::Request& request, std::shared_ptr<http::Responder>& responder) {
  Kind kind;
  StreamTarget target;
  std::string error;
  if (!ParseTarget(request, &kind, &target, &error)) return false;
  if (!error.empty()) {
    SendText(*responder, 400, error);
    return true;
  }
  std::unique_lock lock(state_->mu);
  if (state_->stopping) {
    lock.unlock();
    SendText(*responder, 503, "the kubelet is shutting down");
    return true;
  }
  const uint64_t id = ++state_->next_id;
  ++state_->threads;
  lock.unlock();
  std::thread([state = state_, request = std::move(request), responder = std::move(responder),
               id]() mutable {
    RunSession(state, std::move(request), std::move(responder), id);
    std::lock_guard done(state->mu);
    --state->threads;
    state->idle.notify_all();
  }).detach();
  return true;
}

void StreamingService::Stop() {
  std::unique_lock lock(state_->mu);
  state_->stopping = true;
  for (auto& [id, fd] : state_->cancel) ::shutdown(fd, SHUT_RDWR);  // ends either bridge
  state_->idle.wait_for(lock, std::chrono::seconds(15), [this] { return state_->threads == 0; });
}

namespace {

void RunSession(const std::shared_ptr<StreamingService::State>& state, http::Request request,
                std::shared_ptr<http::Responder> responder, uint64_t id) {
  Kind kind;
  StreamTarget target;
  std::string error;
  ParseTarget(request, &kind, &target, &error);

  // 1. The client's protocol (checked before the runtime's one-shot token is spent).
  Negotiated client;
  const std::string upgrade = Lower(request.HeaderValue("upgrade"));
  if (upgrade == "websocket") {
    client.websocket = true;
    client.ws_key = std::string(request.HeaderValue("sec-websocket-key"));
    for (const std::string& offered : HeaderList(request, "sec-websocket-protocol")) {
      const bool ok = kind == Kind::kPortForward
                          ? offered == kTunnelProtocol
                          : (offered == "v5.channel.k8s.io" || offered == "v4.channel.k8s.io");
      if (ok) {
        client.protocol = offered;
        break;
      }
    }
    if (client.ws_key.empty()) return SendText(*responder, 400, "missing Sec-WebSocket-Key");
  } else if (upgrade == "spdy/3.1") {
    for (const std::string& offered : HeaderList(request, "x-stream-protocol-version")) {
      if (kind == Kind::kPortForward && offered != kPortForwardProtocol) continue;
      client.protocol += (client.protocol.empty() ? "" : ", ") + offered;
    }
  } else {
    return SendText(*responder, 400, "unable to upgrade: missing upgrade headers in request");
  }
  if (client.protocol.empty()) {
    return SendText(
        *responder, 403,
        std::string("unable to upgrade: unable to negotiate protocol: server accepts ") +
            (kind == Kind::kPortForward
                 ? (client.websocket ? "[SPDY/3.1+portforward.k8s.io]" : "[portforward.k8s.io]")
                 : "[v5.channel.k8s.io v4.channel.k8s.io] (WebSocket) or SPDY/3.1"));
  }

  // 2. A one-shot URL from the runtime.
  StreamingRuntime& runtime = *state->runtime;
  Result<std::string> url = kind == Kind::kExec     ? runtime.ExecUrl(target)
                            : kind == Kind::kAttach ? runtime.AttachUrl(target)
                                                    : runtime.PortForwardUrl(target);
  if (!url.ok()) return SendText(*responder, HttpCode(url.status()), url.status().message());

  // 3. Upgrade to the runtime: SPDY/3.1 with v4 for a WebSocket exec (bridged here), else the
  // client's own list (relayed).
  const bool bridge_exec = client.websocket && kind != Kind::kPortForward;
  const std::string upstream_protocol =
      bridge_exec ? "v4.channel.k8s.io"
                  : (kind == Kind::kPortForward ? kPortForwardProtocol : client.protocol);
  Result<std::unique_ptr<UpstreamSocket>> upstream =
      UpstreamSocket::Upgrade(*url, "POST",
                              {{"Connection", "Upgrade"},
                               {"Upgrade", "SPDY/3.1"},
                               {"X-Stream-Protocol-Version", upstream_protocol}},
                              kUpstreamTimeout);
  if (!upstream.ok())
    return SendText(*responder, 502, "runtime streaming server: " + upstream.status().message());
  const UpgradeResponse& answer = (*upstream)->response();
  if (answer.status != 101) {
    std::string body = answer.body;
    while (!body.empty() && (body.back() == '\n' || body.back() == '\r')) body.pop_back();
    return SendText(*responder, answer.status >= 400 ? answer.status : 502,
                    body.empty() ? "the runtime refused the upgrade" : body);
  }
  // Stop() shuts the session's socket down through a duplicate descriptor, which stays valid
  // (and is unregistered) until this function returns, whatever the bridge did with the socket.
  struct Registration {
    const std::shared_ptr<StreamingService::State>& state;
    uint64_t id;
    int fd;
    ~Registration() {
      {
        std::lock_guard lock(state->mu);
        state->cancel.erase(id);
      }
      if (fd >= 0) ::close(fd);
    }
  } registration{state, id, ::dup((*upstream)->fd())};
  {
    std::lock_guard lock(state->mu);
    if (state->stopping) return SendText(*responder, 503, "the kubelet is shutting down");
    if (registration.fd >= 0) state->cancel[id] = registration.fd;
  }

  const char* kind_name = kind == Kind::kExec     ? "exec"
                          : kind == Kind::kAttach ? "attach"
                                                  : "portforward";
  spdlog::info("{} {}/{}{}{}: {} {}", kind_name, target.namespace_, target.pod,
               target.container.empty() ? "" : "/", target.container,
               client.websocket ? "WebSocket" : "SPDY/3.1", client.protocol);
  const auto started = std::chrono::steady_clock::now();
  struct LogEnd {
    const char* kind;
    std::chrono::steady_clock::time_point start;
    ~LogEnd() {
      spdlog::info("{} session ended after {} ms", kind,
                   std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - start)
                       .count());
    }
  } log_end{kind_name, started};

  // 4. The client's 101, then the bridge until the session ends.
  std::vector<http::Header> reply;
  if (client.websocket) {
    reply = {{"upgrade", "websocket"},
             {"connection", "Upgrade"},
             {"sec-websocket-accept", ws::AcceptKey(client.ws_key)},
             {"sec-websocket-protocol", client.protocol}};
  } else {
    reply = {{"connection", "Upgrade"},
             {"upgrade", "SPDY/3.1"},
             {"x-stream-protocol-version", answer.HeaderValue("x-stream-protocol-version")}};
  }
  if (bridge_exec) {
    ExecStreams streams{target.in, target.out, target.err, target.tty};
    auto spdy = std::make_unique<SpdyClient>(std::move(*upstream));
    Status status =
        RunWebSocketExec(std::move(spdy), streams, client.protocol == "v5.channel.k8s.io",
                         [&] { return responder->Upgrade(reply); });
    if (!status.ok()) {
      spdlog::warn("exec {}/{}/{}: {}", target.namespace_, target.pod, target.container,
                   status.message());
      SendText(*responder, 500, status.message());  // ignored once upgraded
    }
    return;
  }
  std::shared_ptr<http::UpgradedConnection> connection = responder->Upgrade(reply);
  if (connection == nullptr) return;
  RunRelay(std::move(*upstream), std::move(connection), client.websocket);
}

}  // namespace

}  // namespace mk8s::kubelet
