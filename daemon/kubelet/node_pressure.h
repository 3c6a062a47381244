// Node pressure, as the kubelet's eviction manager sees it: hard eviction thresholds
// (`--eviction-hard`, "memory.available<100Mi,nodefs.available<1Gi,imagefs.available<1Gi" by
// default, MicroK8s's kubelet arguments) and soft ones (`--eviction-soft`, each with its
// `--eviction-soft-grace-period`), the signals they compare against (observed from the
// machine: /proc/meminfo, statvfs of the kubelet's and the runtime's folders, sysinfo), and the
// MemoryPressure / DiskPressure / PIDPressure conditions they yield. A soft threshold sets its
// condition as soon as it is observed met, as a hard one does (upstream); only the eviction
// manager waits for its grace period. A condition that turned True
// stays True until its signals have been fine for the transition period (5 min, upstream's
// evictionPressureTransitionPeriod), so a node near a threshold does not flap.
//
// The kubelet reports the conditions in its node status; the node lifecycle controller turns
// them into NoSchedule taints, so the scheduler keeps new pods away; the eviction manager
// (eviction_manager.h) evicts running pods while a threshold is met.
//
// Threads: pure functions and a value type; PressureTracker is used by the node status loop only.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace mk8s::kubelet {

// One "signal<value" item: a quantity in bytes (or a count), or a percentage of the capacity.
struct EvictionThreshold {
  std::string signal;  // memory.available, nodefs.available, nodefs.inodesFree, imagefs.available,
                       // imagefs.inodesFree, pid.available
  int64_t quantity = 0;  // when percent is unset
  std::optional<double> percent;
  // A soft threshold (--eviction-soft) is acted on only once met continuously for
  // `grace_period`; a hard one at once.
  bool soft = false;
  std::chrono::milliseconds grace_period{0};
};

constexpr std::string_view kDefaultEvictionHard =
    "memory.available<100Mi,nodefs.available<1Gi,imagefs.available<1Gi";

// Parses "memory.available<100Mi,nodefs.available<10%". Empty text: no thresholds. An unknown
// signal, an operator other than '<', a bad quantity or a percentage outside 0-100 is an error
// naming the item.
Result<std::vector<EvictionThreshold>> ParseEvictionHard(std::string_view text);

// A Go-style duration as upstream's flags take it: "1m30s", "90s", "500ms", "1h", "0s" (units
// h, m, s, ms, us, ns; fractions allowed, "1.5m"). Negative, empty or unit-less text is an error.
Result<std::chrono::milliseconds> ParseGoDuration(std::string_view text);

// `--eviction-soft` (same syntax as --eviction-hard) with `--eviction-soft-grace-period`
// ("memory.available=1m30s,nodefs.available=2m"): the soft thresholds, each with its grace
// period. Upstream's rules: every soft threshold needs a grace period; a signal given twice, an
// unknown signal, or a bad duration is an error naming the item. A grace period for a signal
// without a soft threshold is ignored (as upstream).
Result<std::vector<EvictionThreshold>> ParseEvictionSoft(std::string_view thresholds,
                                                         std::string_view grace_periods);

// What is available and what the capacity is, per signal. -1: could not be observed (a
// threshold on it never fires).
struct NodeSignals {
  int64_t memory_available = -1, memory_capacity = -1;
  int64_t nodefs_available = -1, nodefs_capacity = -1, nodefs_inodes_free = -1, nodefs_inodes = -1;
  int64_t imagefs_available = -1, imagefs_capacity = -1, imagefs_inodes_free = -1, imagefs_inodes = -1;
  int64_t pid_available = -1, pid_max = -1;
};

// Reads the machine: memory from /proc/meminfo (MemAvailable of MemTotal), the node filesystem
// from statvfs(`nodefs_dir`), the image filesystem from statvfs(`imagefs_dir`), PIDs from
// /proc/sys/kernel/pid_max and sysinfo's process count.
NodeSignals ObserveNodeSignals(const std::string& nodefs_dir, const std::string& imagefs_dir);

// Which pressures the thresholds see in `signals` right now, with a message per met threshold
// ("memory.available 80Mi < 100Mi").
struct NodePressure {
  bool memory = false, disk = false, pid = false;
  std::vector<std::string> reasons;
};
NodePressure EvaluatePressure(const std::vector<EvictionThreshold>& thresholds,
                              const NodeSignals& signals);

// One threshold met right now: its signal, what is available and the limit it fell under, in
// the signal's unit (bytes, or a count for inodes and PIDs).
struct MetThreshold {
  std::string signal;
  int64_t available = 0;
  int64_t limit = 0;
  bool soft = false;  // and its grace period, copied from the EvictionThreshold
  std::chrono::milliseconds grace_period{0};
};
// The thresholds `signals` meet, in the order of `thresholds`.
std::vector<MetThreshold> MetThresholds(const std::vector<EvictionThreshold>& thresholds,
                                        const NodeSignals& signals);
// A signal's value as people read it: "80Mi" for bytes, "1200" for inodes and PIDs.
std::string SignalValueText(std::string_view signal, int64_t value);

// The bytes a threshold on `signal` withholds from allocatable (upstream's node allocatable
// subtracts the hard eviction thresholds of memory and nodefs; pass only hard ones); a
// percentage is resolved against `capacity`.
int64_t ReservedByThreshold(const std::vector<EvictionThreshold>& thresholds,
                            std::string_view signal, int64_t capacity);

// Applies the transition period: a pressure stays reported until it has been absent that long.
class PressureTracker {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;
  explicit PressureTracker(std::chrono::seconds transition_period) : period_(transition_period) {}
  // The pressure to report at `now`, given what was observed at `now`.
  NodePressure Update(const NodePressure& observed, TimePoint now);

 private:
  std::chrono::seconds period_;
  std::optional<TimePoint> memory_seen_, disk_seen_, pid_seen_;
};

}  // namespace mk8s::kubelet
