// Kubernetes API benchmark (run by `make bench`, never by ctest). Starts its own mk8sd in a temp
// state folder and loads it over HTTPS keep-alive as the admin user (client certificate from the
// kubeconfig). The object is a ConfigMap with 1 KiB of data. Prints one JSON object per line:
//
//  api        create/get/list/update/delete at 1/16/64 clients (one TLS connection each, a fixed
//             duration per phase): ops/s, latency p50/p90/p99, errors, 409 conflicts (update)
//  api_watch  1,000 watchers on the namespace's configmaps, then single writes: delivery latency
//             from the write's send to each watcher receiving its event
//  api_list   10,000 ConfigMaps: a full list without limit, and limit=500 paging (latency, bytes)
//  api_rss    mk8sd VmRSS idle, peak under the 64-client phases, with the watchers, after 10k
//
// Usage: api_bench [SECONDS_PER_PHASE=5] [WATCHERS=1000] [LIST_OBJECTS=10000]
// Env API_BENCH_PHASES=create@16,watch,list runs only those phases. Each phase also reports the
// daemon's CPU (utime+stime) per operation or per watch delivery.
// Threads: the main thread drives the phases; each client is one thread with its own connection;
// the watch fan-out runs on its own io_context threads (api_client.cc); one thread samples RSS.
#include <signal.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "api_client.h"
#include "daemon_process.h"

namespace {

using Clock = std::chrono::steady_clock;
using mk8s::bench::ApiConnection;
using mk8s::bench::Response;
using mk8s::bench::TlsConfig;
using mk8s::bench::WatchFanout;
using mk8s::testing::DaemonProcess;
using mk8s::testing::TempDir;

constexpr auto kRequestTimeout = std::chrono::seconds(30);
constexpr int64_t kMaxOpsPerClient = 5'000'000;  // a bound on every client loop besides time
constexpr int kMaxReconnects = 5;                // per client and phase
const std::string kData(1024, 'x');

volatile sig_atomic_t g_daemon_pid = 0;  // for the signal handler: never leave mk8sd behind

void OnSignal(int signal) {
  if (g_daemon_pid > 0) kill(g_daemon_pid, SIGKILL);
  _exit(128 + signal);
}

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// CPU time (user + system) the process has used so far, in microseconds; 0 if unknown. Used to
// report the daemon's CPU per operation, which stays meaningful on a shared machine.
double CpuMicros(pid_t pid) {
  FILE* file = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
  if (file == nullptr) return 0;
  char buffer[1024];
  const size_t n = std::fread(buffer, 1, sizeof(buffer) - 1, file);
  std::fclose(file);
  buffer[n] = '\0';
  // Fields after the command (which may hold spaces) start behind the last ')'.
  const char* p = std::strrchr(buffer, ')');
  if (p == nullptr) return 0;
  unsigned long long utime = 0, stime = 0;
  // state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime
  if (std::sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
                  &stime) != 2) {
    return 0;
  }
  return (utime + stime) * 1e6 / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// CPU time the scheduler has charged to the process's live threads, in microseconds (the sum of
// /proc/<pid>/task/*/schedstat): nanosecond accounting, unlike the tick-sampled utime+stime, so
// a short phase on a busy machine still gives a stable figure. Threads that exit in between are
// not counted; 0 if unknown.
double SchedMicros(pid_t pid) {
  const std::string tasks = "/proc/" + std::to_string(pid) + "/task";
  std::error_code ec;
  double total_ns = 0;
  for (const auto& entry : std::filesystem::directory_iterator(tasks, ec)) {
    FILE* file = std::fopen((entry.path() / "schedstat").c_str(), "r");
    if (file == nullptr) continue;
    unsigned long long on_cpu_ns = 0;
    if (std::fscanf(file, "%llu", &on_cpu_ns) == 1) total_ns += static_cast<double>(on_cpu_ns);
    std::fclose(file);
  }
  return total_ns / 1e3;
}

// Which phases run: env API_BENCH_PHASES, comma-separated tokens "<op>@<clients>" (create@16),
// "watch", "list"; unset or empty = all.
bool PhaseEnabled(const std::string& token) {
  const char* env = std::getenv("API_BENCH_PHASES");
  if (env == nullptr || *env == '\0') return true;
  const std::string list = std::string(",") + env + ",";
  return list.find("," + token + ",") != std::string::npos;
}
double Mb(long bytes) { return bytes / 1048576.0; }

double Percentile(std::vector<double>& samples, double p) {
  if (samples.empty()) return 0;
  size_t index = std::min(samples.size() - 1, static_cast<size_t>(p * samples.size()));
  std::nth_element(samples.begin(), samples.begin() + index, samples.end());
  return samples[index];
}

std::string Path(const std::string& ns, const std::string& name = "") {
  return "/api/v1/namespaces/" + ns + "/configmaps" + (name.empty() ? "" : "/" + name);
}

std::string ConfigMap(const std::string& name, const std::string& resource_version = "") {
  std::string metadata = "{\"name\":\"" + name + "\"";
  if (!resource_version.empty()) metadata += ",\"resourceVersion\":\"" + resource_version + "\"";
  return "{\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":" + metadata +
         "},\"data\":{\"v\":\"" + kData + "\"}}";
}

// metadata.resourceVersion of a single object (the only resourceVersion in a ConfigMap's JSON).
std::string ResourceVersion(const std::string& body) {
  static const std::string kKey = "\"resourceVersion\":\"";
  const size_t at = body.find(kKey);
  if (at == std::string::npos) return "";
  const size_t end = body.find('"', at + kKey.size());
  return end == std::string::npos ? "" : body.substr(at + kKey.size(), end - at - kKey.size());
}

std::string UrlEncode(const std::string& s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out += {'%', kHex[c >> 4], kHex[c & 15]};
    }
  }
  return out;
}

// Samples the daemon's VmRSS every 20 ms while alive and keeps the peak.
class RssSampler {
 public:
  explicit RssSampler(const DaemonProcess& daemon)
      : thread_([this, &daemon] {
          while (!stop_.load()) {
            peak_ = std::max(peak_.load(), daemon.ResidentBytes());
            std::this_thread::sleep_for(std::chrono::milliseconds(20));  // sampling period
          }
        }) {}
  ~RssSampler() {
    stop_ = true;
    thread_.join();
  }
  long peak() const { return peak_.load(); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<long> peak_{0};
  std::thread thread_;
};

enum class Op { kCreate, kGet, kList, kUpdate, kDelete };
const char* Name(Op op) {
  switch (op) {
    case Op::kCreate: return "create";
    case Op::kGet: return "get";
    case Op::kList: return "list";
    case Op::kUpdate: return "update";
    case Op::kDelete: return "delete";
  }
  return "?";
}

// One load client: its connection and the objects it created (with their last resourceVersion).
// Used by one thread at a time.
struct Client {
  int id = 0;
  std::unique_ptr<ApiConnection> connection;
  std::vector<std::string> names;
  std::vector<std::string> versions;
  size_t cursor = 0;
  int64_t sequence = 0;
  // Results of the current phase.
  std::vector<double> latencies;
  int64_t ok = 0, errors = 0, conflicts = 0;
  std::string first_error;
};

// Performs one operation; returns false when the client has nothing left to do in this phase.
bool Step(const TlsConfig& config, const std::string& ns, Op op, Client& c, int* reconnects) {
  if (!c.connection) {
    if (++*reconnects > kMaxReconnects) return false;
    std::string error;
    c.connection = ApiConnection::Connect(config, kRequestTimeout, &error);
    if (!c.connection) {
      ++c.errors;
      if (c.first_error.empty()) c.first_error = error;
      return true;
    }
  }
  const char* method = "GET";
  std::string target, body, name;
  size_t index = 0;
  int expect = 200;
  switch (op) {
    case Op::kCreate:
      name = "cm-" + std::to_string(c.id) + "-" + std::to_string(c.sequence++);
      method = "POST", target = Path(ns), body = ConfigMap(name), expect = 201;
      break;
    case Op::kGet:
    case Op::kUpdate:
      if (c.names.empty()) return false;
      index = c.cursor++ % c.names.size();
      target = Path(ns, c.names[index]);
      if (op == Op::kUpdate) method = "PUT", body = ConfigMap(c.names[index], c.versions[index]);
      break;
    case Op::kList:
      target = Path(ns) + "?limit=500";
      break;
    case Op::kDelete:
      if (c.names.empty()) return false;
      method = "DELETE", target = Path(ns, c.names.back());
      break;
  }
  Response response;
  std::string error;
  const auto t0 = Clock::now();
  const bool sent = c.connection->Request(method, target, body, &response, &error);
  const double ms = Ms(Clock::now() - t0);
  if (!sent) {
    c.connection.reset();
    ++c.errors;
    if (c.first_error.empty()) c.first_error = error;
    return true;
  }
  if (response.status == expect) {
    ++c.ok;
    c.latencies.push_back(ms);
    if (op == Op::kCreate) c.names.push_back(name), c.versions.push_back(ResourceVersion(response.body));
    if (op == Op::kUpdate) c.versions[index] = ResourceVersion(response.body);
    if (op == Op::kDelete) c.names.pop_back(), c.versions.pop_back();
    return true;
  }
  if (op == Op::kUpdate && response.status == 409) {
    ++c.conflicts;  // refresh the resourceVersion (untimed) and go on
    if (c.connection->Request("GET", target, "", &response, &error) && response.status == 200) {
      c.versions[index] = ResourceVersion(response.body);
    }
    return true;
  }
  ++c.errors;
  if (c.first_error.empty()) {
    c.first_error = std::string(method) + " " + target + ": HTTP " +
                    std::to_string(response.status) + " " + response.body.substr(0, 300);
  }
  if (op == Op::kDelete && response.status == 404) c.names.pop_back(), c.versions.pop_back();
  return true;
}

struct PhaseSummary {
  double ops_per_sec = 0;
  long rss_peak = 0;
};

PhaseSummary RunPhase(const TlsConfig& config, const DaemonProcess& daemon, const std::string& ns,
                      Op op, std::vector<Client>& clients, std::chrono::seconds duration) {
  for (Client& c : clients) {
    c.latencies.clear();
    c.ok = c.errors = c.conflicts = 0;
    c.first_error.clear();
    c.cursor = 0;
  }
  RssSampler rss(daemon);
  std::vector<std::thread> threads;
  const double cpu_start = CpuMicros(daemon.pid());
  const double tool_cpu_start = CpuMicros(getpid());
  const auto start = Clock::now();
  const auto until = start + duration;
  for (Client& client : clients) {
    threads.emplace_back([&, &c = client] {
      int reconnects = 0;
      for (int64_t n = 0; n < kMaxOpsPerClient && Clock::now() < until; ++n) {
        if (!Step(config, ns, op, c, &reconnects)) break;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const double cpu_us = CpuMicros(daemon.pid()) - cpu_start;
  const double tool_cpu_us = CpuMicros(getpid()) - tool_cpu_start;
  std::vector<double> all;
  int64_t ok = 0, errors = 0, conflicts = 0;
  std::string first_error;
  for (Client& c : clients) {
    all.insert(all.end(), c.latencies.begin(), c.latencies.end());
    ok += c.ok, errors += c.errors, conflicts += c.conflicts;
    if (first_error.empty()) first_error = c.first_error;
  }
  PhaseSummary summary{ok / seconds, rss.peak()};
  std::string extra;
  if (ok > 0) {
    extra += ",\"daemon_cpu_us_per_op\":" + std::to_string(cpu_us / ok) +
             ",\"loadtool_cpu_us_per_op\":" + std::to_string(tool_cpu_us / ok);
  }
  if (op == Op::kUpdate) extra += ",\"conflicts\":" + std::to_string(conflicts);
  if (op == Op::kCreate && clients.size() == 16) extra += ",\"goal_ops_per_sec\":6000";
  if (!first_error.empty()) extra += ",\"first_error\":" + nlohmann::json(first_error).dump();
  std::printf(
      "{\"bench\":\"api\",\"op\":\"%s\",\"clients\":%zu,\"seconds\":%.2f,\"ops\":%lld,"
      "\"ops_per_sec\":%.0f,\"p50_ms\":%.3f,\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"errors\":%lld,"
      "\"rss_peak_mb\":%.1f%s}\n",
      Name(op), clients.size(), seconds, static_cast<long long>(ok), summary.ops_per_sec,
      Percentile(all, 0.5), Percentile(all, 0.9), Percentile(all, 0.99),
      static_cast<long long>(errors), Mb(summary.rss_peak), extra.c_str());
  std::fflush(stdout);
  return summary;
}

// Retries `method target` until it answers one of `accept` or the deadline passes.
bool Retry(const TlsConfig& config, const char* method, const std::string& target,
           const std::string& body, std::initializer_list<int> accept, Response* response) {
  const auto until = Clock::now() + std::chrono::seconds(30);
  std::string error;
  while (Clock::now() < until) {
    auto connection = ApiConnection::Connect(config, kRequestTimeout, &error);
    if (connection && connection->Request(method, target, body, response, &error)) {
      if (std::find(accept.begin(), accept.end(), response->status) != accept.end()) return true;
      error = "HTTP " + std::to_string(response->status) + " " + response->body.substr(0, 300);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // poll interval
  }
  std::fprintf(stderr, "%s %s failed: %s\n", method, target.c_str(), error.c_str());
  return false;
}

bool CreateNamespace(const TlsConfig& config, const std::string& ns) {
  Response response;
  return Retry(config, "POST", "/api/v1/namespaces",
               "{\"apiVersion\":\"v1\",\"kind\":\"Namespace\",\"metadata\":{\"name\":\"" + ns + "\"}}",
               {201, 409}, &response);
}

// Watch fan-out: `watchers` streams from a list's resourceVersion, then `writes` single creates.
bool BenchWatch(const TlsConfig& config, const DaemonProcess& daemon, int watchers, int writes,
                long* rss_with_watchers) {
  Response response;
  if (!Retry(config, "GET", Path("bench") + "?limit=1", "", {200}, &response)) return false;
  const std::string rv = nlohmann::json::parse(response.body)["metadata"].value("resourceVersion", "");
  int established = 0;
  std::string first_error;
  const auto connect_start = Clock::now();
  auto fanout = WatchFanout::Start(config, Path("bench") + "?watch=true&resourceVersion=" + rv,
                                   "\"wev-", watchers, /*io_threads=*/2, /*parallel=*/64,
                                   std::chrono::seconds(120), &established, &first_error);
  if (!fanout) {
    std::fprintf(stderr, "watch fan-out: %s\n", first_error.c_str());
    return false;
  }
  const double connect_s = std::chrono::duration<double>(Clock::now() - connect_start).count();
  std::this_thread::sleep_for(std::chrono::milliseconds(500));  // let the last watches register
  std::string error;
  auto writer = ApiConnection::Connect(config, kRequestTimeout, &error);
  writes = std::min(writes, WatchFanout::kMaxMarks);
  std::vector<Clock::time_point> sent(writes);
  std::vector<double> write_ms;
  int write_errors = 0;
  const double cpu_start = CpuMicros(daemon.pid());
  const double tool_cpu_start = CpuMicros(getpid());
  const double sched_start = SchedMicros(daemon.pid());
  const double tool_sched_start = SchedMicros(getpid());
  for (int k = 0; k < writes && writer; ++k) {
    sent[k] = Clock::now();
    if (!writer->Request("POST", Path("bench"), ConfigMap("wev-" + std::to_string(k)), &response,
                         &error) ||
        response.status != 201) {
      ++write_errors;
      continue;
    }
    write_ms.push_back(Ms(Clock::now() - sent[k]));
    const auto until = Clock::now() + std::chrono::seconds(10);
    while (fanout->Received(k) < established && Clock::now() < until) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // poll for delivery
    }
    *rss_with_watchers = std::max(*rss_with_watchers, daemon.ResidentBytes());
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // quiet gap between writes
  }
  const double cpu_us = CpuMicros(daemon.pid()) - cpu_start;
  const double tool_cpu_us = CpuMicros(getpid()) - tool_cpu_start;
  const double sched_us = SchedMicros(daemon.pid()) - sched_start;
  const double tool_sched_us = SchedMicros(getpid()) - tool_sched_start;
  fanout->Stop();
  std::vector<double> latencies;
  std::vector<double> write_last;  // per write: until its last watcher had it
  for (int k = 0; k < writes; ++k) {
    double last = 0;
    for (const auto& stamp : fanout->Stamps(k)) {
      latencies.push_back(Ms(stamp - sent[k]));
      last = std::max(last, latencies.back());
    }
    if (last > 0) write_last.push_back(last);
  }
  const double max = latencies.empty() ? 0 : *std::max_element(latencies.begin(), latencies.end());
  // The daemon's CPU over the writes (the creates themselves and idle work included) per delivery.
  std::string extra = ",\"daemon_cpu_us_per_delivery\":" +
                      std::to_string(latencies.empty() ? 0 : cpu_us / latencies.size());
  // The same for this process (the 1,000 receiving TLS connections on 2 io threads, plus the
  // writer): it shares the 2 cores with mk8sd, so it bounds the p99 as much as mk8sd does.
  extra += ",\"loadtool_cpu_us_per_delivery\":" +
           std::to_string(latencies.empty() ? 0 : tool_cpu_us / latencies.size());
  // The same two from the scheduler's nanosecond accounting (SchedMicros).
  extra += ",\"daemon_sched_us_per_delivery\":" +
           std::to_string(latencies.empty() ? 0 : sched_us / latencies.size());
  extra += ",\"loadtool_sched_us_per_delivery\":" +
           std::to_string(latencies.empty() ? 0 : tool_sched_us / latencies.size());
  // The median over the writes of the time until a write's last watcher had it: one stalled
  // write on a busy machine moves the p99 of all deliveries, not this.
  extra += ",\"write_last_p50_ms\":" + std::to_string(Percentile(write_last, 0.5));
  if (!first_error.empty()) extra += ",\"first_error\":" + nlohmann::json(first_error).dump();
  std::printf(
      "{\"bench\":\"api_watch\",\"watchers\":%d,\"established\":%d,\"connect_s\":%.2f,"
      "\"writes\":%d,\"write_errors\":%d,\"deliveries\":%zu,\"expected\":%d,\"p50_ms\":%.3f,"
      "\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"max_ms\":%.3f,\"write_p50_ms\":%.3f,\"goal_p99_ms\":20,"
      "\"rss_mb\":%.1f%s}\n",
      watchers, established, connect_s, writes, write_errors, latencies.size(),
      established * writes, Percentile(latencies, 0.5), Percentile(latencies, 0.9),
      Percentile(latencies, 0.99), max, Percentile(write_ms, 0.5), Mb(*rss_with_watchers),
      extra.c_str());
  std::fflush(stdout);
  return true;
}

// Creates `objects` ConfigMaps in namespace bench-list (16 clients), then times lists of them.
bool BenchList(const TlsConfig& config, const DaemonProcess& daemon, int objects) {
  const std::string ns = "bench-list";
  if (!CreateNamespace(config, ns)) return false;
  constexpr int kWriters = 16;
  std::atomic<int> next{0}, created{0};
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&] {
      std::string error;
      Response response;
      auto connection = ApiConnection::Connect(config, kRequestTimeout, &error);
      for (int i = next++; connection && i < objects; i = next++) {
        if (!connection->Request("POST", Path(ns), ConfigMap("cm-" + std::to_string(i)), &response,
                                 &error)) {
          connection = ApiConnection::Connect(config, kRequestTimeout, &error);  // one retry
          continue;
        }
        if (response.status == 201) ++created;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  const double create_s = std::chrono::duration<double>(Clock::now() - start).count();

  std::string error;
  auto connection = ApiConnection::Connect(config, kRequestTimeout, &error);
  if (!connection) {
    std::fprintf(stderr, "list: %s\n", error.c_str());
    return false;
  }
  Response response;
  std::vector<double> full_ms;
  size_t full_bytes = 0, full_items = 0;
  for (int i = 0; i < 3; ++i) {
    const auto t0 = Clock::now();
    if (!connection->Request("GET", Path(ns), "", &response, &error) || response.status != 200) {
      std::fprintf(stderr, "list: %s HTTP %d\n", error.c_str(), response.status);
      return false;
    }
    full_ms.push_back(Ms(Clock::now() - t0));
    full_bytes = response.body.size();
    full_items = nlohmann::json::parse(response.body)["items"].size();
  }
  std::vector<double> paged_ms, page_ms;
  size_t paged_bytes = 0, paged_items = 0, pages = 0;
  for (int i = 0; i < 3; ++i) {
    paged_bytes = paged_items = pages = 0;
    std::string token;
    Clock::duration total{};
    do {
      std::string target = Path(ns) + "?limit=500";
      if (!token.empty()) target += "&continue=" + UrlEncode(token);
      const auto t0 = Clock::now();
      if (!connection->Request("GET", target, "", &response, &error) || response.status != 200) {
        std::fprintf(stderr, "paged list: %s HTTP %d\n", error.c_str(), response.status);
        return false;
      }
      const auto took = Clock::now() - t0;
      total += took;
      page_ms.push_back(Ms(took));
      paged_bytes += response.body.size();
      const auto list = nlohmann::json::parse(response.body);
      paged_items += list["items"].size();
      token = list["metadata"].value("continue", "");
    } while (!token.empty() && ++pages < 10'000);
    ++pages;
    paged_ms.push_back(Ms(total));
  }
  std::printf(
      "{\"bench\":\"api_list\",\"objects\":%d,\"created\":%d,\"create_per_sec\":%.0f,"
      "\"full_items\":%zu,\"full_bytes\":%zu,\"full_p50_ms\":%.1f,\"full_min_ms\":%.1f,"
      "\"paged_items\":%zu,\"pages\":%zu,\"paged_bytes\":%zu,\"paged_total_p50_ms\":%.1f,"
      "\"page_p50_ms\":%.2f,\"page_p99_ms\":%.2f,\"rss_mb\":%.1f}\n",
      objects, created.load(), created.load() / create_s, full_items, full_bytes,
      Percentile(full_ms, 0.5), *std::min_element(full_ms.begin(), full_ms.end()), paged_items,
      pages, paged_bytes, Percentile(paged_ms, 0.5), Percentile(page_ms, 0.5),
      Percentile(page_ms, 0.99), Mb(daemon.ResidentBytes()));
  std::fflush(stdout);
  return true;
}

// Single writes in the watch phase: env API_BENCH_WATCH_WRITES (1..64), default 5.
int WatchWrites() {
  const char* env = std::getenv("API_BENCH_WATCH_WRITES");
  const int writes = env != nullptr ? std::atoi(env) : 5;
  return std::clamp(writes, 1, WatchFanout::kMaxMarks);
}

bool Run(DaemonProcess& daemon, const std::string& kubeconfig, int seconds, int watchers,
         int list_objects) {
  // Idle footprint first: let the daemon settle, then read its RSS.
  std::this_thread::sleep_for(std::chrono::seconds(2));  // settling time before the reading
  const long idle = daemon.ResidentBytes();
  TlsConfig config;
  std::string error;
  const auto until = Clock::now() + std::chrono::seconds(30);
  while (!mk8s::bench::LoadKubeconfig(kubeconfig, &config, &error) && Clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // poll for the kubeconfig
  }
  if (config.port <= 0) {
    std::fprintf(stderr, "kubeconfig: %s\n", error.c_str());
    return false;
  }
  if (!CreateNamespace(config, "bench")) return false;

  long load_peak = 0;
  for (int count : {1, 16, 64}) {
    std::vector<Client> clients(count);
    for (int c = 0; c < count; ++c) clients[c].id = count * 1000 + c;  // unique names per run
    for (Op op : {Op::kCreate, Op::kGet, Op::kList, Op::kUpdate, Op::kDelete}) {
      if (!PhaseEnabled(std::string(Name(op)) + "@" + std::to_string(count))) continue;
      const PhaseSummary summary =
          RunPhase(config, daemon, "bench", op, clients, std::chrono::seconds(seconds));
      if (count == 64) load_peak = std::max(load_peak, summary.rss_peak);
    }
  }
  long with_watchers = 0;
  const bool watch_ok = !PhaseEnabled("watch") ||
                       BenchWatch(config, daemon, watchers, WatchWrites(), &with_watchers);
  const bool list_ok = !PhaseEnabled("list") || BenchList(config, daemon, list_objects);
  std::printf(
      "{\"bench\":\"api_rss\",\"idle_mb\":%.1f,\"goal_idle_mb\":40,\"load_peak_mb\":%.1f,"
      "\"watchers_mb\":%.1f,\"after_list_objects_mb\":%.1f}\n",
      Mb(idle), Mb(load_peak), Mb(with_watchers), Mb(daemon.ResidentBytes()));
  std::fflush(stdout);
  return watch_ok && list_ok;
}

}  // namespace

int main(int argc, char** argv) {
  const int seconds = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
  const int watchers = argc > 2 ? std::max(1, std::atoi(argv[2])) : 1000;
  const int list_objects = argc > 3 ? std::max(1, std::atoi(argv[3])) : 10'000;
  signal(SIGPIPE, SIG_IGN);
  signal(SIGINT, OnSignal);
  signal(SIGTERM, OnSignal);
  // 1,000 watch streams need more descriptors than the usual 1,024 (mk8sd inherits the limit).
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  TempDir dir("mk8s-api-bench");
  DaemonProcess daemon(dir.path() + "/state");
  if (!daemon.Start()) {
    std::fprintf(stderr, "mk8sd did not start:\n%s\n", daemon.OutputTail().c_str());
    return 1;
  }
  g_daemon_pid = daemon.pid();
  bool ok = false;
  try {
    ok = Run(daemon, dir.path() + "/state/credentials/client.config", seconds, watchers,
             list_objects);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "api_bench: %s\n", e.what());
  }
  if (!ok) std::fprintf(stderr, "mk8sd output tail:\n%s\n", daemon.OutputTail().c_str());
  g_daemon_pid = 0;
  daemon.Terminate();
  return ok ? 0 : 1;
}
