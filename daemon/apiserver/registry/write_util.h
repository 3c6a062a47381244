// Small helpers shared by the write verbs (rest_write.cc, rest_delete.cc). Internal.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace mk8s::apiserver {

// Compact JSON; invalid UTF-8 is replaced rather than thrown on.
inline std::string Dump(const nlohmann::json& object) {
  return object.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Something still has to run before this object may leave the store: metadata finalizers, or a
// Namespace's spec.finalizers (the namespace controller empties it once the contents are gone).
inline bool FinalizersPending(const nlohmann::json& object) {
  using nlohmann::json;
  auto has = [](const json& node, const json::json_pointer& pointer) {
    return node.contains(pointer) && node.at(pointer).is_array() && !node.at(pointer).empty();
  };
  return has(object, json::json_pointer("/metadata/finalizers")) ||
         (object.value("kind", "") == "Namespace" &&
          has(object, json::json_pointer("/spec/finalizers")));
}

}  // namespace mk8s::apiserver
