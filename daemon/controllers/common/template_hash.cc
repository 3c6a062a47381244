#include "controllers/common/template_hash.h"

#include <spdlog/spdlog.h>

#include <limits>

namespace mk8s::controllers {
namespace {

using nlohmann::json;

constexpr const char* kPodTemplateHashLabel = "pod-template-hash";

// Go clients write unset fields as null, zero, false or "" depending on the path the object
// took (protobuf or JSON, typed or not): for comparing and hashing, those all mean "unset".
void RemoveUnset(json& value) {
  if (value.is_object()) {
    for (auto it = value.begin(); it != value.end();) {
      RemoveUnset(*it);
      const bool unset = it->is_null() || (it->is_boolean() && !it->get<bool>()) ||
                         (it->is_number() && it->get<double>() == 0) ||
                         (it->is_string() && it->get<std::string>().empty()) ||
                         (it->is_object() && it->empty());
      it = unset ? value.erase(it) : std::next(it);
    }
  } else if (value.is_array()) {
    for (json& item : value) RemoveUnset(item);
  }
}

struct Fnv1a32 {
  uint32_t state = 2166136261u;
  void Add(unsigned char byte) {
    state ^= byte;
    state *= 16777619u;
  }
};

}  // namespace

json NormalizedPodTemplate(json pod_template) {
  RemoveUnset(pod_template);
  if (pod_template.contains("/metadata/labels"_json_pointer)) {
    // An emptied label map stays: the hash of such templates must not change.
    pod_template["metadata"]["labels"].erase(kPodTemplateHashLabel);
  }
  if (pod_template.contains("metadata") && pod_template["metadata"].empty()) {
    pod_template.erase("metadata");
  }
  return pod_template;
}

bool EquivalentPodTemplates(const json& a, const json& b) {
  return NormalizedPodTemplate(a) == NormalizedPodTemplate(b);
}

std::string PodTemplateHash(const json& pod_template, std::optional<int32_t> collision_count) {
  Fnv1a32 hash;
  for (unsigned char c : NormalizedPodTemplate(pod_template).dump()) hash.Add(c);
  if (collision_count.has_value()) {
    // The count's 32 bits, low byte first, padded to 8 bytes.
    const auto count = static_cast<uint32_t>(*collision_count);
    for (int i = 0; i < 8; ++i) hash.Add(i < 4 ? static_cast<unsigned char>(count >> (8 * i)) : 0);
  }
  static constexpr char kAlphabet[] = "bcdfghjklmnpqrstvwxz2456789";
  uint32_t value = hash.state;
  std::string out;
  do {
    out.push_back(kAlphabet[value % 27]);
    value /= 27;
  } while (value != 0);
  return out;
}

std::optional<int32_t> CollisionCount(const json& owner) {
  const json* status = owner.is_object() && owner.contains("status") ? &owner["status"] : nullptr;
  if (status == nullptr || !status->is_object()) return std::nullopt;
  auto found = status->find("collisionCount");
  if (found == status->end() || !found->is_number_integer()) return std::nullopt;
  const auto value = found->get<int64_t>();
  if (value < std::numeric_limits<int32_t>::min() || value > std::numeric_limits<int32_t>::max()) {
    return std::nullopt;
  }
  return static_cast<int32_t>(value);
}

Status RaiseCollisionCount(client::Client& api, const client::ResourceRef& resource,
                           const json& owner, const std::string& wanted_name) {
  const std::optional<int32_t> current = CollisionCount(owner);
  if (current.value_or(0) == std::numeric_limits<int32_t>::max()) {
    return Status(Code::kResourceExhausted,
                  "status.collisionCount of " + client::ObjectKey(owner) +
                      " is at its maximum; delete the objects named after it to free names");
  }
  const int32_t next = current.value_or(0) + 1;
  json updated = owner;
  updated["status"]["collisionCount"] = next;
  auto written = api.UpdateStatus(resource, updated);
  if (!written.ok()) return written.status();
  spdlog::info("{} {}: the name {} is taken by another object; status.collisionCount is now {}",
               owner.value("kind", ""), client::ObjectKey(owner), wanted_name, next);
  return Status::Ok();
}

}  // namespace mk8s::controllers
