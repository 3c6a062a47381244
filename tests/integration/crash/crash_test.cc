// Crash test: SIGKILL mk8sd in the middle of a write storm, 20 times, and check after every
// restart that each write the daemon acknowledged is still there with its value, and that the
// revision never went backwards.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "daemon_process.h"
#include "mk8s/v1/control.grpc.pb.h"

namespace mk8s::testing {
namespace {

struct AckedWrite {
  std::string value;
  int64_t revision = 0;
};

constexpr int kRounds = 20;
constexpr int kWriters = 16;

// Runs writers that create and then CAS-update their own keys until the daemon dies. Records every
// acknowledged write (the latest per key) in `acked`.
void WriteStorm(const std::shared_ptr<grpc::Channel>& channel, int round,
                std::map<std::string, AckedWrite>& acked, std::mutex& acked_mu,
                std::atomic<int64_t>& ack_count) {
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      auto kv = mk8s::v1::KV::NewStub(channel);
      std::map<std::string, int64_t> my_revisions;
      for (int seq = 0;; ++seq) {
        // Alternate between new keys and CAS updates of this writer's earlier keys.
        const int slot = seq % 8;
        const std::string key = "/crash/r" + std::to_string(round) + "/w" + std::to_string(w) +
                                "/k" + std::to_string(slot);
        const std::string value = key + "#" + std::to_string(seq) + std::string(512, 'x');
        mk8s::v1::PutRequest request;
        request.set_key(key);
        request.set_value(value);
        auto known = my_revisions.find(key);
        if (known == my_revisions.end()) {
          request.set_create_only(true);
        } else {
          request.set_expected_mod_revision(known->second);
        }
        mk8s::v1::PutResponse reply;
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
        if (!kv->Put(&context, request, &reply).ok()) return;  // the daemon is gone
        my_revisions[key] = reply.revision();
        std::lock_guard lock(acked_mu);
        acked[key] = AckedWrite{value, reply.revision()};
        ++ack_count;
      }
    });
  }
  for (std::thread& writer : writers) writer.join();
}

TEST(CrashTest, AcknowledgedWritesSurviveKill9DuringWriteStorm) {
  TempDir state("mk8s-crash");
  DaemonProcess daemon(state.path());
  std::map<std::string, AckedWrite> acked;  // key -> last acknowledged write
  std::mutex acked_mu;
  std::mt19937 random(std::random_device{}());
  int64_t highest_acked_revision = 0;

  for (int round = 0; round < kRounds; ++round) {
    ASSERT_TRUE(daemon.Start()) << "round " << round << ": mk8sd did not start\n"
                                << daemon.OutputTail();
    auto channel = daemon.Channel();

    // Everything acknowledged in earlier rounds must be there, with its value.
    auto kv = mk8s::v1::KV::NewStub(channel);
    for (const auto& [key, write] : acked) {
      mk8s::v1::GetRequest request;
      request.set_key(key);
      mk8s::v1::GetResponse reply;
      grpc::ClientContext context;
      grpc::Status status = kv->Get(&context, request, &reply);
      ASSERT_TRUE(status.ok()) << "round " << round << ": acknowledged key " << key
                               << " is missing: " << status.error_message();
      // A write that was durable but not yet acknowledged when the daemon died may have
      // replaced the acknowledged one; anything older would be a lost write.
      ASSERT_GE(reply.kv().mod_revision(), write.revision) << "lost the acknowledged write to "
                                                           << key;
      if (reply.kv().mod_revision() == write.revision) {
        EXPECT_EQ(reply.kv().value(), write.value) << key;
      }
    }
    {
      grpc::ClientContext context;
      mk8s::v1::StatusResponse status;
      ASSERT_TRUE(mk8s::v1::Control::NewStub(channel)
                      ->Status(&context, mk8s::v1::StatusRequest(), &status)
                      .ok());
      EXPECT_GE(status.datastore().revision(), highest_acked_revision)
          << "the revision went backwards after a crash";
    }

    // Storm, then SIGKILL at a random moment once some writes were acknowledged.
    std::atomic<int64_t> ack_count{0};
    std::thread storm(
        [&] { WriteStorm(channel, round, acked, acked_mu, ack_count); });
    const int64_t kill_after = std::uniform_int_distribution<int64_t>(50, 2000)(random);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (ack_count.load() < kill_after && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));  // poll interval
    }
    daemon.Kill9();
    storm.join();
    ASSERT_GE(ack_count.load(), kill_after) << "the write storm stalled";
    std::lock_guard lock(acked_mu);
    for (const auto& [key, write] : acked) {
      highest_acked_revision = std::max(highest_acked_revision, write.revision);
    }
  }
  ASSERT_TRUE(daemon.Start());
  EXPECT_EQ(daemon.Terminate(), 0) << daemon.OutputTail();
  std::printf("crash test: %zu keys acknowledged across %d kill -9 rounds, all present\n",
              acked.size(), kRounds);
}

}  // namespace
}  // namespace mk8s::testing
