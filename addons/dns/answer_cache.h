// Finished UDP replies to cluster names, keyed by the query's bytes after its id, so a repeated
// question skips parsing, the record lookup and encoding (a packet cache, as authoritative
// servers keep). The reply is a pure function of the query's bytes (flags, question as spelled,
// EDNS) and of the records, so an entry is valid exactly while the records' serial is the one
// it was built under: the caller reads the serial BEFORE its lookup and stores under that, so
// a change racing the lookup leaves an entry that is never served.
//
// Threads: every method is thread-safe; the map is split into shards, each under its own mutex.
// Memory is bounded: a shard that reaches its capacity is emptied before the next insert.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace mk8s::dns {

class AnswerCache {
 public:
  static constexpr size_t kMaxQuery = 512;  // longer queries are not cached

  explicit AnswerCache(size_t capacity = 16384);

  // The cached reply to `query` (its id patched in) if one was stored under `serial`.
  std::optional<std::vector<uint8_t>> Get(std::span<const uint8_t> query, uint32_t serial);
  // The same into `*reply` (its capacity reused: no allocation once it is large enough);
  // false (and `*reply` untouched) on a miss.
  bool GetInto(std::span<const uint8_t> query, uint32_t serial, std::vector<uint8_t>* reply);
  void Put(std::span<const uint8_t> query, uint32_t serial, std::span<const uint8_t> reply);
  size_t size() const;

 private:
  // Keys carry their hash, computed once per call: it picks the shard and the bucket.
  struct KeyView {
    std::string_view bytes;
    size_t hash;
  };
  struct Key {
    std::string bytes;
    size_t hash;
  };
  struct Hash {
    using is_transparent = void;
    size_t operator()(const Key& key) const { return key.hash; }
    size_t operator()(const KeyView& key) const { return key.hash; }
  };
  struct Equal {
    using is_transparent = void;
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return a.hash == b.hash && std::string_view(a.bytes) == std::string_view(b.bytes);
    }
  };
  struct Entry {
    uint32_t serial = 0;
    std::vector<uint8_t> reply;
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<Key, Entry, Hash, Equal> entries;  // GUARDED_BY(mu)
  };
  static constexpr size_t kShards = 16;
  // The key: the query without its 2-byte id; empty bytes when the query is not cacheable.
  static KeyView KeyOf(std::span<const uint8_t> query);

  const size_t shard_capacity_;
  std::array<Shard, kShards> shards_;
};

}  // namespace mk8s::dns
