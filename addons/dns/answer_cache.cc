#include "answer_cache.h"

#include <algorithm>

namespace mk8s::dns {

AnswerCache::AnswerCache(size_t capacity)
    : shard_capacity_(std::max<size_t>(1, capacity / kShards)) {}

AnswerCache::KeyView AnswerCache::KeyOf(std::span<const uint8_t> query) {
  if (query.size() <= 12 || query.size() > kMaxQuery) return {{}, 0};
  const std::string_view bytes(reinterpret_cast<const char*>(query.data()) + 2, query.size() - 2);
  return {bytes, std::hash<std::string_view>{}(bytes)};
}

std::optional<std::vector<uint8_t>> AnswerCache::Get(std::span<const uint8_t> query,
                                                     uint32_t serial) {
  std::vector<uint8_t> reply;
  if (!GetInto(query, serial, &reply)) return std::nullopt;
  return reply;
}

bool AnswerCache::GetInto(std::span<const uint8_t> query, uint32_t serial,
                          std::vector<uint8_t>* reply) {
  const KeyView key = KeyOf(query);
  if (key.bytes.empty()) return false;
  Shard& shard = shards_[key.hash % kShards];
  {
    std::lock_guard lock(shard.mu);
    auto it = shard.entries.find(key);
    if (it == shard.entries.end() || it->second.serial != serial) return false;
    reply->assign(it->second.reply.begin(), it->second.reply.end());
  }
  (*reply)[0] = query[0];  // the id (Put keeps only replies of at least a header)
  (*reply)[1] = query[1];
  return true;
}

void AnswerCache::Put(std::span<const uint8_t> query, uint32_t serial,
                      std::span<const uint8_t> reply) {
  const KeyView key = KeyOf(query);
  if (key.bytes.empty() || reply.size() < 12) return;
  Shard& shard = shards_[key.hash % kShards];
  std::lock_guard lock(shard.mu);
  auto it = shard.entries.find(key);
  if (it == shard.entries.end()) {
    if (shard.entries.size() >= shard_capacity_) shard.entries.clear();
    it = shard.entries.emplace(Key{std::string(key.bytes), key.hash}, Entry{}).first;
  }
  it->second.serial = serial;
  it->second.reply.assign(reply.begin(), reply.end());
}

size_t AnswerCache::size() const {
  size_t total = 0;
  for (const Shard& shard : shards_) {
    std::lock_guard lock(shard.mu);
    total += shard.entries.size();
  }
  return total;
}

}  // namespace mk8s::dns
