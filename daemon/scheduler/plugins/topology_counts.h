// TopologyCounts: counters keyed by (topology key, topology value), laid out as a short list of
// keys (a pod rarely uses more than two) each with a hash map of values, so a lookup from a node's
// label value needs no string building. Per-cycle scratch owned by one plugin; not thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "scheduler/labels.h"

namespace mk8s::scheduler {

class TopologyCounts {
 public:
  using Values = std::unordered_map<std::string, int64_t>;

  // Empties the counters, keeping the key slots' allocations.
  void Clear() {
    for (auto& kv : keys_) kv.second.clear();
    size_ = 0;
  }
  // Whether any (key, value) pair has been added since Clear().
  bool empty() const {
    for (size_t i = 0; i < size_; ++i) {
      if (!keys_[i].second.empty()) return false;
    }
    return true;
  }
  Values& ForKey(const std::string& key) {
    for (size_t i = 0; i < size_; ++i) {
      if (keys_[i].first == key) return keys_[i].second;
    }
    if (size_ == keys_.size()) keys_.emplace_back();
    keys_[size_].first = key;
    keys_[size_].second.clear();
    return keys_[size_++].second;
  }
  const Values* FindKey(const std::string& key) const {
    for (size_t i = 0; i < size_; ++i) {
      if (keys_[i].first == key) return &keys_[i].second;
    }
    return nullptr;
  }
  void Add(const std::string& key, const std::string& value, int64_t delta) {
    ForKey(key)[value] += delta;
  }
  int64_t Get(const std::string& key, const std::string& value) const {
    const Values* v = FindKey(key);
    if (v == nullptr) return 0;
    auto it = v->find(value);
    return it == v->end() ? 0 : it->second;
  }
  // Sum over keys of the count at the node's value for that key.
  int64_t SumForLabels(const Labels& labels) const {
    int64_t sum = 0;
    for (size_t i = 0; i < size_; ++i) {
      const std::string* v = labels.Find(keys_[i].first);
      if (v == nullptr) continue;
      auto it = keys_[i].second.find(*v);
      if (it != keys_[i].second.end()) sum += it->second;
    }
    return sum;
  }
  // Whether the node has a (key, value) with a positive count.
  bool AnyPositiveForLabels(const Labels& labels) const {
    for (size_t i = 0; i < size_; ++i) {
      const std::string* v = labels.Find(keys_[i].first);
      if (v == nullptr) continue;
      auto it = keys_[i].second.find(*v);
      if (it != keys_[i].second.end() && it->second > 0) return true;
    }
    return false;
  }

 private:
  std::vector<std::pair<std::string, Values>> keys_;
  size_t size_ = 0;
};

}  // namespace mk8s::scheduler
