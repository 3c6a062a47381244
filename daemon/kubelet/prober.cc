#include "kubelet/prober.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <set>
#include <vector>

#include "client/event_recorder.h"
#include "runtime/cri_client.h"

namespace mk8s::kubelet {
namespace {

using nlohmann::json;

int Seconds(const json& probe, const char* field, int fallback) {
  auto it = probe.find(field);
  return it != probe.end() && it->is_number_integer() && it->get<int>() > 0 ? it->get<int>()
                                                                            : fallback;
}

// A named or numbered port of the container.
int ResolvePort(const json& port, const json& container) {
  if (port.is_number_integer()) return port.get<int>();
  if (port.is_string()) {
    const std::string name = port.get<std::string>();
    for (const json& p : container.value("ports", json::array())) {
      if (p.value("name", "") == name) return p.value("containerPort", 0);
    }
    try {
      return std::stoi(name);
    } catch (...) {
    }
  }
  return 0;
}

// A non-blocking connect with a deadline; returns the socket or -1.
int Connect(const std::string& ip, int port, int timeout_ms, std::string* output) {
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  if (inet_pton(AF_INET, ip.c_str(), &address.sin_addr) != 1) {
    *output = "invalid address " + ip;
    return -1;
  }
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 &&
      errno != EINPROGRESS) {
    *output = "dial tcp " + ip + ":" + std::to_string(port) + ": " + std::strerror(errno);
    close(fd);
    return -1;
  }
  pollfd p{fd, POLLOUT, 0};
  int error = 0;
  socklen_t length = sizeof(error);
  if (poll(&p, 1, timeout_ms) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0 ||
      error != 0) {
    *output = "dial tcp " + ip + ":" + std::to_string(port) + ": " +
              (error != 0 ? std::strerror(error) : "i/o timeout");
    close(fd);
    return -1;
  }
  return fd;
}

bool HttpGet(const json& http, const json& container, const std::string& pod_ip, int timeout_ms,
             std::string* output) {
  const std::string host = http.value("host", pod_ip);
  const int port = ResolvePort(http.value("port", json(0)), container);
  std::string path = http.value("path", "/");
  if (path.empty() || path[0] != '/') path = "/" + path;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  const int fd = Connect(host, port, timeout_ms, output);
  if (fd < 0) return false;
  std::string request = "GET " + path + " HTTP/1.1\r\nHost: " + host + ":" + std::to_string(port) +
                        "\r\nUser-Agent: kube-probe/1.32\r\nAccept: */*\r\nConnection: close\r\n";
  for (const json& h : http.value("httpHeaders", json::array())) {
    request += h.value("name", "") + ": " + h.value("value", "") + "\r\n";
  }
  request += "\r\n";
  std::string response;
  size_t sent = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    const int left = static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                          deadline - std::chrono::steady_clock::now())
                                          .count());
    pollfd p{fd, static_cast<short>(sent < request.size() ? POLLOUT : POLLIN), 0};
    if (poll(&p, 1, std::max(left, 1)) != 1) break;
    if (sent < request.size()) {
      const ssize_t n = send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
      continue;
    }
    char buffer[1024];
    const ssize_t n = recv(fd, buffer, sizeof(buffer), 0);
    if (n <= 0) break;
    response.append(buffer, static_cast<size_t>(n));
    if (response.find("\r\n") != std::string::npos) break;  // the status line is enough
  }
  close(fd);
  // "HTTP/1.1 200 OK": 200 <= code < 400 succeeds.
  const size_t space = response.find(' ');
  if (space == std::string::npos) {
    *output = "Get \"http://" + host + ":" + std::to_string(port) + path + "\": no response";
    return false;
  }
  const int code = std::atoi(response.c_str() + space + 1);
  if (code >= 200 && code < 400) return true;
  *output = "HTTP probe failed with statuscode: " + std::to_string(code);
  return false;
}

}  // namespace

bool RunProbe(runtime::CriClient& cri, const json& probe, const std::string& container_id,
              const std::string& pod_ip, std::string* output) {
  const int timeout = Seconds(probe, "timeoutSeconds", 1);
  if (probe.contains("exec")) {
    std::vector<std::string> command;
    for (const json& word : probe["exec"].value("command", json::array())) {
      if (word.is_string()) command.push_back(word.get<std::string>());
    }
    auto result = cri.ExecSync(container_id, command, timeout);
    if (!result.ok()) {
      *output = result.status().message();
      return false;
    }
    if (result->exit_code == 0) return true;
    *output = result->stdout_data + result->stderr_data;
    if (output->empty()) *output = "command exited with " + std::to_string(result->exit_code);
    return false;
  }
  if (probe.contains("httpGet")) {
    return HttpGet(probe["httpGet"], probe.value("container", json::object()), pod_ip,
                   timeout * 1000, output);
  }
  if (probe.contains("tcpSocket")) {
    const json& tcp = probe["tcpSocket"];
    const int fd =
        Connect(tcp.value("host", pod_ip),
                ResolvePort(tcp.value("port", json(0)), probe.value("container", json::object())),
                timeout * 1000, output);
    if (fd < 0) return false;
    close(fd);
    return true;
  }
  *output = "probe has no handler";
  return false;
}

struct Prober::Worker {
  std::string key;  // "<container id>/<kind>"
  std::string pod_key, pod_uid, container_id, container_name, kind;
  json pod;
  json probe;  // with "container" added for named ports
  std::string pod_ip;
  bool stop = false;  // GUARDED_BY(Prober::mu_)
};

Prober::Prober(std::shared_ptr<runtime::CriClient> cri, client::EventRecorder* recorder,
               OnChange on_change)
    : cri_(std::move(cri)), recorder_(recorder), on_change_(std::move(on_change)) {}

Prober::~Prober() { Stop(); }

void Prober::Stop() {
  std::map<std::string, std::thread> threads;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    for (auto& [key, worker] : workers_) worker->stop = true;
    threads.swap(threads_);
  }
  cv_.notify_all();
  for (auto& [key, thread] : threads) thread.join();
}

void Prober::Update(const json& pod, const PodRuntimeState& state, const std::string& pod_ip) {
  const std::string uid = pod["metadata"].value("uid", "");
  const std::string pod_key =
      pod["metadata"].value("namespace", "") + "/" + pod["metadata"].value("name", "");
  std::set<std::string> wanted;
  std::vector<std::shared_ptr<Worker>> start;
  std::vector<std::thread> finished;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    for (const json& container : pod["spec"].value("containers", json::array())) {
      const std::string name = container.value("name", "");
      auto instances = state.Instances(name);
      if (instances.empty() || instances[0]->state != ContainerState::kRunning) continue;
      const std::string id = instances[0]->id;
      for (const char* kind : {"readiness", "liveness", "startup"}) {
        const std::string field = std::string(kind) + "Probe";
        if (!container.contains(field) || !container[field].is_object()) continue;
        const std::string key = id + "/" + kind;
        wanted.insert(key);
        if (workers_.count(key)) continue;
        auto worker = std::make_shared<Worker>();
        worker->key = key;
        worker->pod_key = pod_key;
        worker->pod_uid = uid;
        worker->container_id = id;
        worker->container_name = name;
        worker->kind = kind;
        worker->pod = pod;
        worker->probe = container[field];
        worker->probe["container"] = container;
        worker->pod_ip = pod_ip;
        workers_[key] = worker;
        start.push_back(worker);
      }
    }
    for (auto it = workers_.begin(); it != workers_.end();) {
      if (it->second->pod_uid == uid && !wanted.count(it->first)) {
        it->second->stop = true;
        results_.erase(it->second->container_id);
        auto thread = threads_.find(it->first);
        if (thread != threads_.end()) {
          finished.push_back(std::move(thread->second));
          threads_.erase(thread);
        }
        it = workers_.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& worker : start) threads_[worker->key] = std::thread([this, worker] { Run(worker); });
  }
  cv_.notify_all();
  for (std::thread& thread : finished) thread.join();
}

void Prober::ForgetPod(const std::string& uid) {
  json empty_pod = {{"metadata", {{"uid", uid}}}, {"spec", json::object()}};
  Update(empty_pod, PodRuntimeState{}, "");
}

ProbeResults Prober::Results(const std::string& container_id) {
  std::lock_guard lock(mu_);
  auto it = results_.find(container_id);
  return it == results_.end() ? ProbeResults{} : it->second;
}

void Prober::SetResult(const Worker& worker, bool value) {
  bool changed = false;
  {
    std::lock_guard lock(mu_);
    if (worker.stop) return;
    ProbeResults& results = results_[worker.container_id];
    std::optional<bool>& slot = worker.kind == "readiness" ? results.ready : results.started;
    changed = !slot.has_value() || *slot != value;
    slot = value;
  }
  if (changed && on_change_) on_change_(worker.pod_key);
}

void Prober::Run(std::shared_ptr<Worker> worker) {
  const json& probe = worker->probe;
  const auto period = std::chrono::seconds(Seconds(probe, "periodSeconds", 10));
  const int success_threshold = Seconds(probe, "successThreshold", 1);
  const int failure_threshold = Seconds(probe, "failureThreshold", 3);
  // Results start unknown: readiness false, startup false (liveness has no result).
  if (worker->kind != "liveness") SetResult(*worker, false);
  auto wait = [&](std::chrono::steady_clock::duration d) {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, d, [&] { return worker->stop || stopping_; });
    return !(worker->stop || stopping_);
  };
  if (!wait(std::chrono::seconds(Seconds(probe, "initialDelaySeconds", 0)))) return;
  int successes = 0, failures = 0;
  bool started = worker->kind == "startup";
  while (true) {
    // Liveness and readiness wait for the startup probe's success.
    bool gated = false;
    if (worker->kind != "startup") {
      std::lock_guard lock(mu_);
      auto it = results_.find(worker->container_id);
      gated = workers_.count(worker->container_id + "/startup") && it != results_.end() &&
              !it->second.started.value_or(false);
    }
    if (!gated) {
      std::string output;
      const bool ok = RunProbe(*cri_, probe, worker->container_id, worker->pod_ip, &output);
      if (ok) {
        failures = 0;
        if (++successes >= success_threshold && worker->kind != "liveness")
          SetResult(*worker, true);
        if (worker->kind == "startup" && successes >= success_threshold) return;  // done for good
      } else {
        successes = 0;
        ++failures;
        std::string kind = worker->kind;
        kind[0] = static_cast<char>(std::toupper(kind[0]));
        if (recorder_) {
          recorder_->Record(worker->pod, "Warning", "Unhealthy", kind + " probe failed: " + output);
        }
        if (failures >= failure_threshold) {
          if (worker->kind == "readiness") {
            SetResult(*worker, false);
          } else {
            // Liveness (or startup) gave up: stop the container; the pod's sync restarts it.
            if (recorder_) {
              recorder_->Record(worker->pod, "Normal", "Killing",
                                "Container " + worker->container_name + " failed " + worker->kind +
                                    " probe, will be restarted");
            }
            const int64_t grace =
                worker->pod.value("/spec/terminationGracePeriodSeconds"_json_pointer, int64_t{30});
            (void)cri_->StopContainer(worker->container_id, grace);
            if (on_change_) on_change_(worker->pod_key);
            return;
          }
        }
      }
    }
    (void)started;
    if (!wait(period)) return;
  }
}

}  // namespace mk8s::kubelet
