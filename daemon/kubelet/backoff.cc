#include "kubelet/backoff.h"

#include <algorithm>

namespace mk8s::kubelet {

bool Backoff::IsInBackOffSince(const std::string& key, Clock::time_point event_time,
                               Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || Expired(it->second, now)) return false;
  return now - event_time < it->second.delay;
}

void Backoff::Next(const std::string& key, Clock::time_point now) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  if (it == entries_.end() || Expired(it->second, now)) {
    entries_[key] = Entry{initial_, now};
    return;
  }
  it->second.delay = std::min<Duration>(it->second.delay * 2, max_);
  it->second.last_update = now;
}

Backoff::Duration Backoff::Get(const std::string& key) {
  std::lock_guard lock(mu_);
  auto it = entries_.find(key);
  return it == entries_.end() ? Duration{} : it->second.delay;
}

void Backoff::GC(Clock::time_point now) {
  std::lock_guard lock(mu_);
  for (auto it = entries_.begin(); it != entries_.end();) {
    it = Expired(it->second, now) ? entries_.erase(it) : std::next(it);
  }
}

void Backoff::ForgetPrefix(const std::string& prefix) {
  std::lock_guard lock(mu_);
  for (auto it = entries_.lower_bound(prefix);
       it != entries_.end() && it->first.compare(0, prefix.size(), prefix) == 0;) {
    it = entries_.erase(it);
  }
}

std::string FormatGoDuration(Backoff::Duration duration) {
  const long long total = std::chrono::duration_cast<std::chrono::seconds>(duration).count();
  const long long hours = total / 3600, minutes = (total % 3600) / 60, seconds = total % 60;
  if (hours > 0) {
    return std::to_string(hours) + "h" + std::to_string(minutes) + "m" + std::to_string(seconds) +
           "s";
  }
  if (minutes > 0) return std::to_string(minutes) + "m" + std::to_string(seconds) + "s";
  return std::to_string(seconds) + "s";
}

}  // namespace mk8s::kubelet
