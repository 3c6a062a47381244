#include "apiserver/registry/object_handoff.h"

namespace mk8s::apiserver {

uint64_t ObjectHandoff::Offer(const std::string& key, std::shared_ptr<const StoredBytes> stored,
                              nlohmann::json object) {
  std::shared_ptr<const std::string> bytes(stored, &stored->bytes);
  return Add(key, std::move(bytes), std::move(object), std::move(stored));
}

uint64_t ObjectHandoff::Offer(const std::string& key, std::shared_ptr<const std::string> bytes,
                              nlohmann::json object) {
  return Add(key, std::move(bytes), std::move(object), nullptr);
}

uint64_t ObjectHandoff::Add(const std::string& key, std::shared_ptr<const std::string> bytes,
                            nlohmann::json object, std::shared_ptr<const StoredBytes> stored) {
  std::lock_guard lock(mu_);
  while (!order_.empty() && order_.size() >= capacity_) {
    RemoveLocked(order_.front().second, order_.front().first);
    order_.pop_front();
  }
  const uint64_t ticket = next_ticket_++;
  by_key_[key].push_back(Entry{ticket, std::move(bytes), std::move(object), std::move(stored)});
  ++entries_;
  order_.emplace_back(ticket, key);
  return ticket;
}

std::optional<nlohmann::json> ObjectHandoff::RemoveLocked(const std::string& key,
                                                          uint64_t ticket) {
  auto found = by_key_.find(key);
  if (found == by_key_.end()) return std::nullopt;
  std::vector<Entry>& entries = found->second;
  for (auto it = entries.begin(); it != entries.end(); ++it) {
    if (it->ticket != ticket) continue;
    std::optional<nlohmann::json> object(std::move(it->object));
    entries.erase(it);
    --entries_;
    if (entries.empty()) by_key_.erase(found);
    return object;
  }
  return std::nullopt;
}

std::optional<nlohmann::json> ObjectHandoff::Withdraw(const std::string& key, uint64_t ticket) {
  std::lock_guard lock(mu_);
  return RemoveLocked(key, ticket);
}

nlohmann::json ObjectHandoff::Take(const std::string& key, const std::string& value,
                                   int64_t revision) {
  return TakeEntry(key, value, revision).object;
}

ObjectHandoff::Taken ObjectHandoff::TakeEntry(const std::string& key, const std::string& value,
                                              int64_t revision) {
  Taken taken;
  nlohmann::json& object = taken.object;
  {
    std::lock_guard lock(mu_);
    auto found = by_key_.find(key);
    if (found == by_key_.end()) return taken;
    std::vector<Entry>& entries = found->second;
    for (auto it = entries.begin(); it != entries.end(); ++it) {
      if (*it->bytes != value) continue;
      object = std::move(it->object);
      taken.stored = std::move(it->stored);
      entries.erase(it);
      --entries_;
      if (entries.empty()) by_key_.erase(found);
      break;
    }
  }
  // As ParseStoredObject stamps a parsed value (outside the lock: it allocates).
  if (!object.is_object()) return Taken{};
  object["metadata"]["resourceVersion"] = std::to_string(revision);
  return taken;
}

size_t ObjectHandoff::size() const {
  std::lock_guard lock(mu_);
  return entries_;
}

}  // namespace mk8s::apiserver
