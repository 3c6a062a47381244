// scheduler_bench: the control loops at scale with hollow nodes (the kubemark idea), two setups:
//
//  scheduling  mk8sd (API server, controllers, scheduler) + a hollow-node mk8sd with N nodes
//              (default 5,000) whose fake kubelets never start pods, so only scheduling is
//              measured. P pods (default 10,000) are created through the API by 64 concurrent
//              requests while a watch notes when each pod shows up bound (spec.nodeName set).
//              Prints pods/s from the first create to the last bind seen, and create->bound
//              latency percentiles.
//  footprint   mk8sd + a hollow-node mk8sd with 100 nodes; 20 Deployments of 500 replicas
//              (10,000 pods). Prints the time until every replica is Ready and mk8sd's RSS then
//              and 90 s later, once settled (the hollow-node process is measured apart).
//
// Usage: scheduler_bench [scheduling|footprint|all] [nodes] [pods]. Prints one JSON line per
// result. Traffic stays on 127.0.0.1; both daemons live in a temp folder removed at exit.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <iterator>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "client/client.h"
#include "client/https_transport.h"
#include "daemon_process.h"

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;
using mk8s::client::ApiResult;
using mk8s::client::Client;
using mk8s::testing::DaemonProcess;
using mk8s::testing::TempDir;

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

double Percentile(std::vector<double> samples, double p) {
  if (samples.empty()) return 0;
  std::sort(samples.begin(), samples.end());
  return samples[std::min(samples.size() - 1, static_cast<size_t>(p * samples.size()))];
}

bool WaitUntil(const std::function<bool()>& condition, std::chrono::seconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));  // poll interval
  }
  return false;
}

// CPU seconds (user + system) a process has used, from /proc/<pid>/stat; -1 if unknown. The
// figure to judge cost by on a shared machine, where wall-clock throughput is noise.
double CpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t close = text.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {  // fields 14 and 15: utime, stime
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

// The API-server daemon and a hollow-node daemon that is its client.
struct Cluster {
  TempDir dir{"mk8s-scheduler-bench"};
  std::unique_ptr<DaemonProcess> api;
  std::unique_ptr<DaemonProcess> hollow;
  std::shared_ptr<Client> client;
  // A second transport (its own I/O thread) for watches, so measuring never queues behind the
  // load's TLS work.
  std::shared_ptr<Client> watch_client;

  bool Start(int nodes, int pod_start_delay_ms) {
    api = std::make_unique<DaemonProcess>(
        dir.path() + "/api", std::vector<std::string>{"--apiserver-port", "0",
                                                      "--apiserver-bind-address", "127.0.0.1",
                                                      "--no-log-stderr"});
    if (!api->Start()) return Fail("mk8sd did not start: " + api->OutputTail());
    const std::string kubeconfig = dir.path() + "/api/credentials/client.config";
    hollow = std::make_unique<DaemonProcess>(
        dir.path() + "/hollow",
        std::vector<std::string>{"--components=none", "--kubeconfig", kubeconfig,
                                 "--hollow-nodes", std::to_string(nodes),
                                 "--hollow-pod-start-delay-ms", std::to_string(pod_start_delay_ms),
                                 "--no-log-stderr"});
    if (!hollow->Start(std::chrono::seconds(300))) {
      return Fail("hollow-node mk8sd did not start: " + hollow->OutputTail());
    }
    auto config = mk8s::client::LoadKubeconfig(kubeconfig);
    if (!config.ok()) return Fail(config.status().message());
    config->max_idle_connections = 64;
    auto transport = mk8s::client::HttpsTransport::Create(*config);
    if (!transport.ok()) return Fail(transport.status().message());
    client = std::make_shared<Client>(*transport);
    auto watch_transport = mk8s::client::HttpsTransport::Create(*config);
    if (!watch_transport.ok()) return Fail(watch_transport.status().message());
    watch_client = std::make_shared<Client>(*watch_transport);
    const bool registered = WaitUntil(
        [&] {
          auto list = client->List(mk8s::client::kNodes, "", {});
          return list.ok() && static_cast<int>(list->items.size()) >= nodes;
        },
        std::chrono::seconds(300));
    return registered || Fail("the hollow nodes did not register");
  }

  static bool Fail(const std::string& message) {
    std::fprintf(stderr, "scheduler_bench: %s\n", message.c_str());
    return false;
  }
};

// Runs `count` async requests with at most `parallel` in flight; returns the failures. Each
// completion starts the next request itself (on the transport's callback thread, where `start`
// must only queue work), so the load needs no hand-over to another thread per request.
int Pipelined(int count, int parallel,
              const std::function<void(int i, std::function<void(bool)> done)>& start) {
  std::mutex mu;
  std::condition_variable cv;
  std::atomic<int> next{0};
  int finished = 0, failures = 0;
  std::function<void()> launch = [&] {
    const int i = next.fetch_add(1);
    if (i >= count) return;
    start(i, [&](bool ok) {
      launch();  // before counting this one: once all are counted, the caller may return
      std::lock_guard lock(mu);
      ++finished;
      if (!ok) ++failures;
      if (finished == count) cv.notify_all();
    });
  };
  for (int k = 0; k < parallel; ++k) launch();
  std::unique_lock lock(mu);
  cv.wait(lock, [&] { return finished == count; });
  return failures;
}

json Pod(const std::string& name) {
  return {{"apiVersion", "v1"},
          {"kind", "Pod"},
          {"metadata", {{"name", name}, {"namespace", "default"}, {"labels", {{"bench", "sched"}}}}},
          {"spec",
           {{"containers",
             json::array({{{"name", "c"},
                           {"image", "registry.k8s.io/pause:3.10"},
                           {"resources", {{"requests", {{"cpu", "10m"}, {"memory", "10Mi"}}}}}}})}}}};
}

bool BenchScheduling(int nodes, int pods) {
  Cluster cluster;
  if (!cluster.Start(nodes, /*pod_start_delay_ms=*/3600 * 1000)) return false;
  Client& client = *cluster.client;

  std::mutex mu;
  std::condition_variable cv;
  std::unordered_map<std::string, Clock::time_point> created_at, bound_at;
  // Watch pods from now on; note the first event of each pod that carries a node.
  auto start_list = client.List(mk8s::client::kPods, "default", {});
  if (!start_list.ok()) return Cluster::Fail(start_list.error().ToString());
  mk8s::client::ListOptions watch_options;
  watch_options.resource_version = start_list->resource_version;
  watch_options.timeout_seconds = 3600;
  mk8s::client::StreamCallbacks callbacks;
  // Runs on the transport's I/O thread: a string scan, not a JSON parse, keeps it cheap. The
  // server writes object keys in order, so the first "name" is metadata.name.
  callbacks.on_line = [&](std::string line) {
    const auto now = Clock::now();
    if (line.find("\"nodeName\":\"") == std::string::npos) return;
    const size_t at = line.find("\"name\":\"");
    if (at == std::string::npos) return;
    const size_t begin = at + 8;
    const size_t end = line.find('"', begin);
    std::lock_guard lock(mu);
    bound_at.emplace(line.substr(begin, end - begin), now);
    cv.notify_all();
  };
  callbacks.on_end = [](mk8s::client::Response) {};
  auto watch = cluster.watch_client->Watch(mk8s::client::kPods, "default", watch_options,
                                          std::move(callbacks));

  // The background (lease renewals of every node, node monitoring) costs CPU per second, not per
  // pod: measured alone over one heartbeat interval (10 s) before the load, so the per-pod figure
  // can also be given net of it (`*_net_*`), which does not move with throughput.
  // The hollow kubelets create their Leases right after registering: wait for all of them.
  const bool leases_ready = WaitUntil(
      [&] {
        auto leases = client.List(mk8s::client::kLeases, "kube-node-lease", {});
        return leases.ok() && static_cast<int>(leases->items.size()) >= nodes;
      },
      std::chrono::seconds(120));
  if (!leases_ready) return Cluster::Fail("the hollow nodes' Leases did not appear");
  const auto idle_start = Clock::now();
  const double idle_api_before = CpuSeconds(cluster.api->pid());
  const double idle_hollow_before = CpuSeconds(cluster.hollow->pid());
  std::this_thread::sleep_for(std::chrono::seconds(10));  // the idle window being measured
  const double idle_seconds = Ms(Clock::now() - idle_start) / 1000;
  const double api_idle_rate = (CpuSeconds(cluster.api->pid()) - idle_api_before) / idle_seconds;
  const double hollow_idle_rate =
      (CpuSeconds(cluster.hollow->pid()) - idle_hollow_before) / idle_seconds;

  std::string first_error;
  const double cpu_before = CpuSeconds(cluster.api->pid());
  const double hollow_cpu_before = CpuSeconds(cluster.hollow->pid());
  const double tool_cpu_before = CpuSeconds(getpid());
  const auto first_create = Clock::now();
  const int failures = Pipelined(pods, 64, [&](int i, std::function<void(bool)> done) {
    const std::string name = "bench-" + std::to_string(i);
    {
      std::lock_guard lock(mu);
      created_at[name] = Clock::now();
    }
    // The created pod is not needed back: a load generator, like any fire-and-forget writer,
    // takes the status-only form (a 2xx answer is not parsed).
    client.CreateStatusOnlyAsync(
        mk8s::client::kPods, "default", Pod(name),
        [done, &mu, &first_error](std::optional<mk8s::client::ApiError> error) {
          if (error) {
            std::lock_guard lock(mu);
            if (first_error.empty()) first_error = error->ToString();
          }
          done(!error);
        });
  });
  const auto last_create_acked = Clock::now();
  {
    std::unique_lock lock(mu);
    cv.wait_for(lock, std::chrono::seconds(300),
                [&] { return static_cast<int>(bound_at.size()) >= pods - failures; });
  }
  const double cpu_used = CpuSeconds(cluster.api->pid()) - cpu_before;
  const auto measured_until = Clock::now();
  // The other two processes on the same cores: the hollow kubelets and this load tool.
  const double hollow_cpu_used = CpuSeconds(cluster.hollow->pid()) - hollow_cpu_before;
  const double tool_cpu_used = CpuSeconds(getpid()) - tool_cpu_before;
  watch->Cancel();
  if (failures > 0) std::fprintf(stderr, "scheduler_bench: %d creates failed, first: %s\n", failures, first_error.c_str());
  std::vector<double> latencies;
  Clock::time_point last_bound = first_create;
  {
    std::lock_guard lock(mu);
    for (const auto& [name, at] : bound_at) {
      auto created = created_at.find(name);
      if (created == created_at.end()) continue;
      latencies.push_back(Ms(at - created->second));
      last_bound = std::max(last_bound, at);
    }
  }
  const double seconds = Ms(last_bound - first_create) / 1000;
  const double measured_seconds = Ms(measured_until - first_create) / 1000;
  const double bound = static_cast<double>(std::max<size_t>(latencies.size(), 1));
  const double create_seconds = Ms(last_create_acked - first_create) / 1000;
  std::printf(
      "{\"bench\":\"scheduling\",\"nodes\":%d,\"pods\":%d,\"bound\":%zu,\"create_failures\":%d,"
      "\"pods_per_sec\":%.0f,\"creates_per_sec\":%.0f,\"create_to_bound_p50_ms\":%.1f,"
      "\"p90_ms\":%.1f,\"p99_ms\":%.1f,\"max_ms\":%.1f,\"mk8sd_rss_mb\":%.1f,"
      "\"mk8sd_cpu_s\":%.2f,\"mk8sd_cpu_us_per_pod\":%.0f,\"hollow_cpu_us_per_pod\":%.0f,"
      "\"loadtool_cpu_us_per_pod\":%.0f,\"mk8sd_idle_cpu_ms_per_s\":%.0f,"
      "\"hollow_idle_cpu_ms_per_s\":%.0f,\"mk8sd_net_cpu_us_per_pod\":%.0f,"
      "\"hollow_net_cpu_us_per_pod\":%.0f}\n",
      nodes, pods, latencies.size(), failures, latencies.size() / std::max(seconds, 1e-9),
      (pods - failures) / std::max(create_seconds, 1e-9), Percentile(latencies, 0.5),
      Percentile(latencies, 0.9), Percentile(latencies, 0.99), Percentile(latencies, 1.0),
      cluster.api->ResidentBytes() / 1048576.0, cpu_used,
      cpu_used * 1e6 / std::max<size_t>(latencies.size(), 1),
      hollow_cpu_used * 1e6 / std::max<size_t>(latencies.size(), 1),
      tool_cpu_used * 1e6 / std::max<size_t>(latencies.size(), 1), api_idle_rate * 1e3,
      hollow_idle_rate * 1e3, (cpu_used - api_idle_rate * measured_seconds) * 1e6 / bound,
      (hollow_cpu_used - hollow_idle_rate * measured_seconds) * 1e6 / bound);
  std::fflush(stdout);
  // The scheduler's own progress lines (server-side throughput) for the record, on stderr.
  std::ifstream log(cluster.dir.path() + "/api/logs/mk8sd.log");
  for (std::string line; std::getline(log, line);) {
    if (line.find("pods bound in") != std::string::npos) std::fprintf(stderr, "%s\n", line.c_str());
  }
  return static_cast<int>(latencies.size()) == pods;
}

bool BenchFootprint(int nodes, int replicas) {
  Cluster cluster;
  if (!cluster.Start(nodes, /*pod_start_delay_ms=*/200)) return false;
  Client& client = *cluster.client;
  const int deployments = 20;
  const int per_deployment = replicas / deployments;
  const auto start = Clock::now();
  for (int d = 0; d < deployments; ++d) {
    const std::string name = "load-" + std::to_string(d);
    json deployment = {
        {"apiVersion", "apps/v1"},
        {"kind", "Deployment"},
        {"metadata", {{"name", name}, {"namespace", "default"}}},
        {"spec",
         {{"replicas", per_deployment},
          {"selector", {{"matchLabels", {{"app", name}}}}},
          {"template",
           {{"metadata", {{"labels", {{"app", name}}}}},
            {"spec", {{"containers", json::array({{{"name", "c"},
                                                   {"image", "registry.k8s.io/pause:3.10"}}})}}}}}}}};
    auto created = client.Create(mk8s::client::kDeployments, "default", deployment);
    if (!created.ok()) return Cluster::Fail(created.error().ToString());
  }
  int ready = 0;
  const bool all_ready = WaitUntil(
      [&] {
        auto list = client.List(mk8s::client::kDeployments, "default", {});
        if (!list.ok()) return false;
        ready = 0;
        for (const auto& item : list->items) {
          ready += item->value("/status/readyReplicas"_json_pointer, 0);
        }
        return ready >= per_deployment * deployments;
      },
      std::chrono::seconds(900));
  const double seconds = Ms(Clock::now() - start) / 1000;
  // RSS right after the rollout, and once settled: past the API server's 75 s watch-history
  // window, so the memory the burst of writes needed has been given back.
  const long rss_at_ready = cluster.api->ResidentBytes();
  std::this_thread::sleep_for(std::chrono::seconds(90));  // the settle period being measured
  const long rss = cluster.api->ResidentBytes();
  std::printf(
      "{\"bench\":\"footprint\",\"nodes\":%d,\"replicas\":%d,\"ready\":%d,\"all_ready\":%s,"
      "\"seconds_to_ready\":%.1f,\"mk8sd_rss_at_ready_mb\":%.1f,\"mk8sd_rss_settled_mb\":%.1f,"
      "\"hollow_process_rss_mb\":%.1f}\n",
      nodes, per_deployment * deployments, ready, all_ready ? "true" : "false", seconds,
      rss_at_ready / 1048576.0, rss / 1048576.0, cluster.hollow->ResidentBytes() / 1048576.0);
  std::fflush(stdout);
  return all_ready;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string which = argc > 1 ? argv[1] : "all";
  bool ok = true;
  if (which == "scheduling" || which == "all") {
    const int nodes = argc > 2 ? std::atoi(argv[2]) : 5000;
    const int pods = argc > 3 ? std::atoi(argv[3]) : 10000;
    ok = BenchScheduling(nodes, pods) && ok;
  }
  if (which == "footprint" || which == "all") {
    const int nodes = argc > 2 && which == "footprint" ? std::atoi(argv[2]) : 100;
    const int replicas = argc > 3 && which == "footprint" ? std::atoi(argv[3]) : 10000;
    ok = BenchFootprint(nodes, replicas) && ok;
  }
  return ok ? 0 : 1;
}
