// Kubernetes Events for what components do ("SuccessfulCreate", "ScalingReplicaSet",
// "Scheduled", ...), so `kubectl describe` tells the story (client-go's record package).
// Fire-and-forget: a failed event write is only logged.
//
// Similar events are aggregated as client-go's EventCorrelator does, so a ReplicaSet creating
// 10,000 pods writes a handful of Events, not 10,000: per (object, type, reason) within 10
// minutes, the first 10 are written as they come; after that one Event with the message
// "(combined from similar events): <latest>" carries a growing count, patched at most once a
// second (the count shown may trail the true one by the events of the last second).
#pragma once

#include <chrono>
#include <memory>
#include <mutex>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <unordered_map>

#include "client/client.h"

namespace mk8s::client {

class EventRecorder {
 public:
  EventRecorder(std::shared_ptr<Client> client, std::string component)
      : client_(std::move(client)), component_(std::move(component)) {}
  // `type` is "Normal" or "Warning". Thread-safe; never blocks.
  void Record(const nlohmann::json& object, const std::string& type, const std::string& reason,
              const std::string& message);

  static constexpr int kMaxSimilar = 10;
  static constexpr std::chrono::minutes kSimilarWindow{10};

 private:
  struct Similar {
    std::chrono::steady_clock::time_point first;
    int seen = 0;
    std::string aggregate_name;  // the combined Event, once created
    int64_t aggregate_count = 0;
    std::chrono::steady_clock::time_point last_patch;
  };
  nlohmann::json NewEvent(const nlohmann::json& object, const std::string& name,
                          const std::string& type, const std::string& reason,
                          const std::string& message) const;

  std::shared_ptr<Client> client_;
  std::string component_;
  std::mutex mu_;
  std::unordered_map<std::string, Similar> similar_;  // GUARDED_BY(mu_)
};

}  // namespace mk8s::client
