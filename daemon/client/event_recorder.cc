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

void EventRecorder::Record(const nlohmann::json& object, const std::string& type,
                           const std::string& reason, const std::string& message) {
  const nlohmann::json& metadata = object["metadata"];
  const std::string ns = metadata.value("namespace", "default");
  const std::string now = NowRfc3339();
  nlohmann::json event = {
      {"apiVersion", "v1"},
      {"kind", "Event"},
      {"metadata", {{"name", metadata.value("name", "") + "." + Suffix()}, {"namespace", ns}}},
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
  client_->CreateAsync(kEvents, ns, event, [reason](ApiResult<nlohmann::json> r) {
    if (!r.ok()) spdlog::debug("event {} not recorded: {}", reason, r.error().ToString());
  });
}

}  // namespace mk8s::client
