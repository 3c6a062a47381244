#include "client/event_recorder.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>
#include <random>

#include "common/time_format.h"

namespace mk8s::client {
namespace {

std::string Suffix() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  char buffer[20];
  std::snprintf(buffer, sizeof(buffer), "%016llx", static_cast<unsigned long long>(engine()));
  return buffer;
}

}  // namespace

nlohmann::json EventRecorder::NewEvent(const nlohmann::json& object, const std::string& name,
                                       const std::string& type, const std::string& reason,
                                       const std::string& message) const {
  const nlohmann::json& metadata = object.at("metadata");
  const std::string ns = metadata.value("namespace", "default");
  const std::string now = NowRfc3339();
  return {{"apiVersion", "v1"},
          {"kind", "Event"},
          {"metadata", {{"name", name}, {"namespace", ns}}},
          {"involvedObject",
           {{"apiVersion", object.value("apiVersion", "")},
            {"kind", object.value("kind", "")},
            {"name", metadata.value("name", "")},
            {"namespace", ns},
            {"uid", metadata.value("uid", "")},
            {"resourceVersion", metadata.value("resourceVersion", "")}}},
          {"reason", reason},
          {"message", message},
          {"type", type},
          {"source", {{"component", component_}}},
          {"firstTimestamp", now},
          {"lastTimestamp", now},
          {"count", 1},
          {"reportingComponent", component_},
          {"reportingInstance", component_}};
}

void EventRecorder::Record(const nlohmann::json& object, const std::string& type,
                           const std::string& reason, const std::string& message) {
  if (!object.contains("metadata")) return;
  const nlohmann::json& metadata = object["metadata"];
  const std::string ns = metadata.value("namespace", "default");
  const std::string object_name = metadata.value("name", "");
  const auto now = std::chrono::steady_clock::now();
  const std::string key = ns + "/" + object.value("kind", "") + "/" + object_name + "/" +
                          metadata.value("uid", "") + "/" + type + "/" + reason;
  std::string aggregate_name;
  int64_t aggregate_count = 0;
  bool create_aggregate = false;
  {
    std::lock_guard lock(mu_);
    if (similar_.size() > 4096) {  // bound the memory: forget windows that have ended
      std::erase_if(similar_, [&](const auto& entry) {
        return now - entry.second.first > kSimilarWindow;
      });
      if (similar_.size() > 4096) similar_.clear();
    }
    Similar& entry = similar_[key];
    if (entry.seen == 0 || now - entry.first > kSimilarWindow) {
      entry = Similar();
      entry.first = now;
    }
    ++entry.seen;
    if (entry.seen > kMaxSimilar) {
      ++entry.aggregate_count;
      if (entry.aggregate_name.empty()) {
        entry.aggregate_name = object_name + "." + Suffix();
        entry.last_patch = now;
        create_aggregate = true;
      } else if (now - entry.last_patch < std::chrono::seconds(1)) {
        return;  // counted; the next patch carries it
      }
      entry.last_patch = now;
      aggregate_name = entry.aggregate_name;
      aggregate_count = entry.aggregate_count;
    }
  }
  // Fire and forget: the stored Event is not needed back, so its answer is not parsed.
  auto log_failure = [reason](std::optional<ApiError> error) {
    if (error) spdlog::debug("event {} not recorded: {}", reason, error->ToString());
  };
  if (aggregate_name.empty()) {
    client_->CreateStatusOnlyAsync(
        kEvents, ns, NewEvent(object, object_name + "." + Suffix(), type, reason, message),
        log_failure);
    return;
  }
  const std::string combined = "(combined from similar events): " + message;
  if (create_aggregate) {
    client_->CreateStatusOnlyAsync(
        kEvents, ns, NewEvent(object, aggregate_name, type, reason, combined), log_failure);
    return;
  }
  nlohmann::json patch = {{"count", aggregate_count},
                          {"message", combined},
                          {"lastTimestamp", NowRfc3339()}};
  client_->PatchStatusOnlyAsync(kEvents, ns, aggregate_name, PatchType::kMerge, patch,
                               log_failure);
}

}  // namespace mk8s::client
