// Parsed objects handed from the write path to the watch cache: a write has the object it stores
// in hand, already parsed and serialized, so the watch cache's dispatcher takes it instead of
// parsing the same bytes again when the store's event for that write arrives.
//
// Contract: the write path Offer()s (key, the exact bytes it stores, the object those bytes are a
// dump of) BEFORE it starts the store write, so the entry exists when the event comes. The
// dispatcher Take()s by key and takes the entry only when the event's value equals the offered
// bytes byte for byte; otherwise (no entry, evicted, other bytes) it parses as before. A write
// that fails Withdraw()s its entry. Entries nobody takes (a missed event after a reload) are
// evicted oldest first beyond `capacity`, so memory stays bounded and a miss only costs a parse.
//
// Threads: every method is thread-safe (one small mutex, never held while calling out).
// Internal to the API server (includes nlohmann/json).
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "apiserver/registry/stored_bytes.h"

namespace mk8s::apiserver {

class ObjectHandoff {
 public:
  explicit ObjectHandoff(size_t capacity = 4096) : capacity_(capacity) {}

  // Registers `object` as the parse of `bytes` (a compact dump of it, metadata.resourceVersion
  // absent from both) for a write of `key`. Returns the ticket to Withdraw with.
  uint64_t Offer(const std::string& key, std::shared_ptr<const std::string> bytes,
                 nlohmann::json object);
  // The same for a write path's StoredBytes: Take() then also hands over `stored`, so the cache
  // can splice the served text from it instead of dumping the object again.
  uint64_t Offer(const std::string& key, std::shared_ptr<const StoredBytes> stored,
                 nlohmann::json object);
  // Removes the entry of a write that did not happen; returns its object if it was still there.
  std::optional<nlohmann::json> Withdraw(const std::string& key, uint64_t ticket);
  // The object offered for `key` whose bytes equal `value`, with metadata.resourceVersion set to
  // `revision`; null JSON when there is none (the caller parses `value` then).
  nlohmann::json Take(const std::string& key, const std::string& value, int64_t revision);
  // Take() with the StoredBytes of an Offer that gave them (null otherwise).
  struct Taken {
    nlohmann::json object;
    std::shared_ptr<const StoredBytes> stored;
  };
  Taken TakeEntry(const std::string& key, const std::string& value, int64_t revision);

  size_t size() const;

 private:
  struct Entry {
    uint64_t ticket;
    std::shared_ptr<const std::string> bytes;
    nlohmann::json object;
    std::shared_ptr<const StoredBytes> stored;  // null when offered as plain bytes
  };
  uint64_t Add(const std::string& key, std::shared_ptr<const std::string> bytes,
               nlohmann::json object, std::shared_ptr<const StoredBytes> stored);
  // Removes `ticket` from the entries of `key`; returns its object if found. Needs mu_.
  std::optional<nlohmann::json> RemoveLocked(const std::string& key, uint64_t ticket);

  const size_t capacity_;
  mutable std::mutex mu_;
  uint64_t next_ticket_ = 1;                                    // GUARDED_BY(mu_)
  size_t entries_ = 0;                                          // GUARDED_BY(mu_)
  std::unordered_map<std::string, std::vector<Entry>> by_key_;  // GUARDED_BY(mu_)
  // Offers in order (ticket, key), for eviction; may name entries already taken.
  std::deque<std::pair<uint64_t, std::string>> order_;          // GUARDED_BY(mu_)
};

}  // namespace mk8s::apiserver
