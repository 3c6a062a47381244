// The bytes a write stores, serialized once, with the spot where metadata.resourceVersion goes:
// the reply to a write is the stored object stamped with its new revision, and splicing the
// revision into these bytes replaces a second serialization (on the store's writer thread).
// Internal to the API server.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

namespace mk8s::apiserver {

struct StoredBytes {
  // Compact JSON, byte for byte what nlohmann's dump(-1) of the object gives.
  std::string bytes;
  // Where `"resourceVersion":"<rv>"` belongs (keys stay sorted as in a dump), and whether a comma
  // goes before or after it there. npos when the object has no metadata object.
  size_t rv_offset = std::string::npos;
  bool comma_before = false;
  bool comma_after = false;

  // `bytes` with metadata.resourceVersion = `revision`: the same text a dump of the object with
  // that resourceVersion gives. Empty when rv_offset is npos.
  std::string WithResourceVersion(int64_t revision) const;
};

// Serializes `object` (a JSON object without metadata.resourceVersion).
StoredBytes SerializeStored(const nlohmann::json& object);

}  // namespace mk8s::apiserver
