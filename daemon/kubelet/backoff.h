// Backoff: the per-container restart back-off of the kubelet (upstream flowcontrol.Backoff as
// the kubelet uses it): 10 s doubling to 5 min. An entry not advanced for 2 x max (10 min: the
// container ran that long) starts again from the initial delay.
//
// Pure bookkeeping over caller-supplied times, so tests are deterministic. Thread-safe (one mutex).
#pragma once

#include <chrono>
#include <map>
#include <mutex>
#include <string>

namespace mk8s::kubelet {

class Backoff {
 public:
  using Clock = std::chrono::steady_clock;
  using Duration = Clock::duration;

  explicit Backoff(Duration initial = std::chrono::seconds(10),
                   Duration max = std::chrono::minutes(5))
      : initial_(initial), max_(max) {}

  // True while `key` must wait: the last failure (`event_time`) is more recent than the current
  // back-off delay allows.
  bool IsInBackOffSince(const std::string& key, Clock::time_point event_time,
                        Clock::time_point now);
  // Records a restart at `now`: the delay starts at `initial` or doubles (capped at max).
  void Next(const std::string& key, Clock::time_point now);
  // The current delay for `key` (0 if none).
  Duration Get(const std::string& key);
  // Forgets entries untouched for 2 x max, and every key starting with `prefix` when given.
  void GC(Clock::time_point now);
  void ForgetPrefix(const std::string& prefix);

 private:
  struct Entry {
    Duration delay{};
    Clock::time_point last_update;
  };
  bool Expired(const Entry& entry, Clock::time_point now) const {
    return now - entry.last_update > 2 * max_;
  }

  const Duration initial_;
  const Duration max_;
  std::mutex mu_;
  std::map<std::string, Entry> entries_;  // GUARDED_BY(mu_)
};

// Go's time.Duration formatting for whole seconds: "10s", "1m20s", "5m0s" (the CrashLoopBackOff
// message uses it).
std::string FormatGoDuration(Backoff::Duration duration);

}  // namespace mk8s::kubelet
