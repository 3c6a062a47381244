// Datastore benchmark (run by `make bench`, never by ctest). Prints one JSON object per line.
//
//  store_write   durable compare-and-swap updates of a 1 KiB value at 1/16/64 writer threads,
//                in-process: writes/s, fsyncs/s, writes per fsync, latency percentiles
//  daemon_write  the same through a real mk8sd's KV gRPC service on its unix socket
//  watch_latency time from submitting a write to its event arriving at a watcher
//  daemon_idle   mk8sd resident memory after start, idle
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "daemon_process.h"
#include "mk8s/v1/control.grpc.pb.h"
#include "store/store.h"

namespace {

using Clock = std::chrono::steady_clock;
using mk8s::testing::DaemonProcess;
using mk8s::testing::TempDir;

const std::string kValue(1024, 'v');

double Percentile(std::vector<double>& samples, double p) {
  if (samples.empty()) return 0;
  size_t index = std::min(samples.size() - 1, static_cast<size_t>(p * samples.size()));
  std::nth_element(samples.begin(), samples.begin() + index, samples.end());
  return samples[index];
}

// Each writer owns one key and CAS-updates it in a loop for `duration`.
void BenchStoreWrites(int writers, std::chrono::seconds duration) {
  TempDir dir("mk8s-bench");
  mk8s::store::StoreOptions options;
  options.path = dir.path() + "/store.db";
  auto opened = mk8s::store::Store::Open(options);
  if (!opened.ok()) {
    std::fprintf(stderr, "open: %s\n", opened.status().ToString().c_str());
    std::exit(1);
  }
  mk8s::store::Store& store = **opened;
  std::vector<int64_t> revisions(writers);
  for (int w = 0; w < writers; ++w) {
    revisions[w] = store.Create("/bench/" + std::to_string(w), kValue).result.revision;
  }
  const auto before = store.GetStats();
  std::atomic<bool> stop{false};
  std::vector<std::vector<double>> latencies(writers);
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  for (int w = 0; w < writers; ++w) {
    threads.emplace_back([&, w] {
      const std::string key = "/bench/" + std::to_string(w);
      while (!stop.load(std::memory_order_relaxed)) {
        const auto t0 = Clock::now();
        auto outcome = store.Update(key, kValue, revisions[w]);
        if (!outcome.status.ok()) {
          std::fprintf(stderr, "update: %s\n", outcome.status.ToString().c_str());
          std::exit(1);
        }
        revisions[w] = outcome.result.revision;
        latencies[w].push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
      }
    });
  }
  std::this_thread::sleep_for(duration);  // the measurement window
  stop = true;
  for (auto& thread : threads) thread.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const auto after = store.GetStats();
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  const double writes = static_cast<double>(after.writes - before.writes);
  const double fsyncs = static_cast<double>(after.fsyncs - before.fsyncs);
  const double commits = static_cast<double>(after.commits - before.commits);
  std::printf(
      "{\"bench\":\"store_write\",\"writers\":%d,\"value_bytes\":1024,\"seconds\":%.2f,"
      "\"writes_per_sec\":%.0f,\"commits_per_sec\":%.0f,\"fsyncs_per_sec\":%.0f,"
      "\"writes_per_fsync\":%.1f,\"p50_ms\":%.3f,\"p99_ms\":%.3f}\n",
      writers, seconds, writes / seconds, commits / seconds, fsyncs / seconds,
      fsyncs > 0 ? writes / fsyncs : 0.0, Percentile(all, 0.5), Percentile(all, 0.99));
  std::fflush(stdout);
}

void BenchWatchLatency(int events) {
  TempDir dir("mk8s-bench");
  mk8s::store::StoreOptions options;
  options.path = dir.path() + "/store.db";
  auto store = std::move(mk8s::store::Store::Open(options).value());
  auto watch = std::move(store->StartWatch("/watch/", store->CurrentRevision()).value());
  std::vector<Clock::time_point> submitted(events);
  std::vector<double> latencies;
  std::thread watcher([&] {
    while (static_cast<int>(latencies.size()) < events) {
      auto batch = watch->Next(std::chrono::seconds(5));
      if (!batch.ok() || batch->empty()) break;
      const auto now = Clock::now();
      for (const auto& event : *batch) {
        const int index = std::atoi(event->kv.value.c_str());
        latencies.push_back(std::chrono::duration<double, std::milli>(now - submitted[index]).count());
      }
    }
  });
  for (int i = 0; i < events; ++i) {
    submitted[i] = Clock::now();
    (void)store->Create("/watch/" + std::to_string(i), std::to_string(i));
  }
  watcher.join();
  std::printf("{\"bench\":\"watch_latency\",\"events\":%zu,\"p50_ms\":%.3f,\"p99_ms\":%.3f}\n",
              latencies.size(), Percentile(latencies, 0.5), Percentile(latencies, 0.99));
  std::fflush(stdout);
}

void BenchDaemon(int clients, std::chrono::seconds duration) {
  TempDir dir("mk8s-bench");
  DaemonProcess daemon(dir.path() + "/state");
  if (!daemon.Start()) {
    std::fprintf(stderr, "mk8sd did not start:\n%s\n", daemon.OutputTail().c_str());
    std::exit(1);
  }
  // Idle footprint first: let the daemon settle, then read its RSS.
  std::this_thread::sleep_for(std::chrono::seconds(2));  // settling time before the reading
  std::printf("{\"bench\":\"daemon_idle\",\"rss_mb\":%.1f}\n", daemon.ResidentBytes() / 1048576.0);

  std::atomic<bool> stop{false};
  std::atomic<int64_t> writes{0};
  std::vector<std::thread> threads;
  const auto start = Clock::now();
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&, c] {
      // One channel per 8 clients, as a real client pool would do.
      auto channel = grpc::CreateCustomChannel("unix:" + daemon.socket(),
                                               grpc::InsecureChannelCredentials(), [c] {
                                                 grpc::ChannelArguments args;
                                                 args.SetInt("mk8s.pool", c / 8);
                                                 return args;
                                               }());
      auto kv = mk8s::v1::KV::NewStub(channel);
      const std::string key = "/bench/" + std::to_string(c);
      int64_t revision = 0;
      while (!stop.load(std::memory_order_relaxed)) {
        mk8s::v1::PutRequest request;
        request.set_key(key);
        request.set_value(kValue);
        request.set_expected_mod_revision(revision);
        mk8s::v1::PutResponse reply;
        grpc::ClientContext context;
        if (!kv->Put(&context, request, &reply).ok()) continue;
        revision = reply.revision();
        ++writes;
      }
    });
  }
  std::this_thread::sleep_for(duration);  // the measurement window
  stop = true;
  for (auto& thread : threads) thread.join();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf(
      "{\"bench\":\"daemon_write\",\"clients\":%d,\"value_bytes\":1024,\"writes_per_sec\":%.0f,"
      "\"rss_mb_after\":%.1f}\n",
      clients, writes.load() / seconds, daemon.ResidentBytes() / 1048576.0);
  daemon.Terminate();
}

}  // namespace

int main(int argc, char** argv) {
  const int seconds = argc > 1 ? std::atoi(argv[1]) : 5;
  for (int writers : {1, 16, 64}) BenchStoreWrites(writers, std::chrono::seconds(seconds));
  BenchWatchLatency(2000);
  BenchDaemon(64, std::chrono::seconds(seconds));
  return 0;
}
