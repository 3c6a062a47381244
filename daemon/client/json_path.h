// Non-throwing lookups in parsed objects along a path of object keys, for hot paths (informer
// handlers, indexes, reconciles that run for every object). nlohmann's
// `value("/a/b"_json_pointer, default)` parses the pointer on every call and throws (and
// catches) out_of_range whenever a step is missing, which costs microseconds per miss; these
// return nullptr / a default instead.
//
// Thread-safety: pure functions over a const object. The returned references and pointers point
// into `root` and live as long as it does (for informer objects: as long as the ObjectPtr).
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include <nlohmann/json_fwd.hpp>

namespace mk8s::client {

// The value at root[path[0]][path[1]]..., or nullptr if a step is missing or not an object.
const nlohmann::json* FindPath(const nlohmann::json& root,
                               std::initializer_list<std::string_view> path);
// The string there, or a shared empty string when it is missing or not a string.
const std::string& StringAtPath(const nlohmann::json& root,
                                std::initializer_list<std::string_view> path);
// The integer there, or `fallback` when it is missing or not an integer.
int64_t IntAtPath(const nlohmann::json& root, std::initializer_list<std::string_view> path,
                  int64_t fallback);
// The boolean there, or `fallback` when it is missing or not a boolean.
bool BoolAtPath(const nlohmann::json& root, std::initializer_list<std::string_view> path,
                bool fallback);

}  // namespace mk8s::client
