#include "client/json_path.h"

#include <nlohmann/json.hpp>

namespace mk8s::client {

using nlohmann::json;

const json* FindPath(const json& root, std::initializer_list<std::string_view> path) {
  const json* at = &root;
  for (std::string_view key : path) {
    if (!at->is_object()) return nullptr;
    auto it = at->find(key);
    if (it == at->end()) return nullptr;
    at = &*it;
  }
  return at;
}

const std::string& StringAtPath(const json& root, std::initializer_list<std::string_view> path) {
  static const std::string kEmpty;
  const json* at = FindPath(root, path);
  return at != nullptr && at->is_string() ? at->get_ref<const std::string&>() : kEmpty;
}

int64_t IntAtPath(const json& root, std::initializer_list<std::string_view> path,
                  int64_t fallback) {
  const json* at = FindPath(root, path);
  return at != nullptr && at->is_number_integer() ? at->get<int64_t>() : fallback;
}

bool BoolAtPath(const json& root, std::initializer_list<std::string_view> path, bool fallback) {
  const json* at = FindPath(root, path);
  return at != nullptr && at->is_boolean() ? at->get<bool>() : fallback;
}

}  // namespace mk8s::client
