// Kubernetes Events for what components do ("SuccessfulCreate", "ScalingReplicaSet",
// "Scheduled", ...), so `kubectl describe` tells the story (client-go's record package).
// Fire-and-forget: a failed event write is only logged.
#pragma once

#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <string>

#include "client/client.h"

namespace mk8s::client {

class EventRecorder {
 public:
  EventRecorder(std::shared_ptr<Client> client, std::string component)
      : client_(std::move(client)), component_(std::move(component)) {}
  // `type` is "Normal" or "Warning". Thread-safe; never blocks.
  void Record(const nlohmann::json& object, const std::string& type, const std::string& reason,
              const std::string& message);

 private:
  std::shared_ptr<Client> client_;
  std::string component_;
};

}  // namespace mk8s::client
