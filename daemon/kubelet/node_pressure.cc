#include "kubelet/node_pressure.h"

#include <sys/statvfs.h>
#include <sys/sysinfo.h>

#include <charconv>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "common/quantity.h"

namespace mk8s::kubelet {
namespace {

enum class Kind { kMemory, kDisk, kPid };

struct SignalInfo {
  std::string_view name;
  Kind kind;
  int64_t NodeSignals::*available;
  int64_t NodeSignals::*capacity;
};

constexpr SignalInfo kSignals[] = {
    {"memory.available", Kind::kMemory, &NodeSignals::memory_available, &NodeSignals::memory_capacity},
    {"nodefs.available", Kind::kDisk, &NodeSignals::nodefs_available, &NodeSignals::nodefs_capacity},
    {"nodefs.inodesFree", Kind::kDisk, &NodeSignals::nodefs_inodes_free, &NodeSignals::nodefs_inodes},
    {"imagefs.available", Kind::kDisk, &NodeSignals::imagefs_available, &NodeSignals::imagefs_capacity},
    {"imagefs.inodesFree", Kind::kDisk, &NodeSignals::imagefs_inodes_free, &NodeSignals::imagefs_inodes},
    {"pid.available", Kind::kPid, &NodeSignals::pid_available, &NodeSignals::pid_max},
};

const SignalInfo* FindSignal(std::string_view name) {
  for (const SignalInfo& info : kSignals) {
    if (info.name == name) return &info;
  }
  return nullptr;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// The threshold's value in the signal's unit: the quantity, or the percentage of `capacity`
// (-1 when the capacity is unknown).
int64_t Limit(const EvictionThreshold& threshold, int64_t capacity) {
  if (!threshold.percent) return threshold.quantity;
  if (capacity < 0) return -1;
  return static_cast<int64_t>(static_cast<double>(capacity) * *threshold.percent / 100.0);
}

std::string Human(std::string_view signal, int64_t value) {
  if (signal.find("inodes") != std::string_view::npos || signal == "pid.available") {
    return std::to_string(value);
  }
  return std::to_string(value / (1024 * 1024)) + "Mi";
}

void ObserveFilesystem(const std::string& dir, int64_t* available, int64_t* capacity,
                       int64_t* inodes_free, int64_t* inodes) {
  struct statvfs fs {};
  if (dir.empty() || statvfs(dir.c_str(), &fs) != 0) return;
  const auto block = static_cast<int64_t>(fs.f_frsize);
  *available = static_cast<int64_t>(fs.f_bavail) * block;
  *capacity = static_cast<int64_t>(fs.f_blocks) * block;
  // Filesystems without inode accounting (btrfs, some overlays) report 0 inodes: not observed.
  if (fs.f_files > 0) {
    *inodes_free = static_cast<int64_t>(fs.f_favail);
    *inodes = static_cast<int64_t>(fs.f_files);
  }
}

}  // namespace

Result<std::vector<EvictionThreshold>> ParseEvictionHard(std::string_view text) {
  std::vector<EvictionThreshold> thresholds;
  while (!Trim(text).empty()) {
    const size_t comma = text.find(',');
    const std::string_view item = Trim(text.substr(0, comma));
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (item.empty()) continue;
    const size_t op = item.find_first_of("<>=");
    if (op == std::string_view::npos || item[op] != '<') {
      return Status(Code::kInvalidArgument, "eviction threshold \"" + std::string(item) +
                                                "\": expected SIGNAL<VALUE, e.g. memory.available<100Mi");
    }
    const std::string_view signal = Trim(item.substr(0, op));
    const std::string_view value = Trim(item.substr(op + 1));
    if (FindSignal(signal) == nullptr) {
      return Status(Code::kInvalidArgument,
                    "eviction threshold \"" + std::string(item) + "\": unknown signal \"" +
                        std::string(signal) +
                        "\" (memory.available, nodefs.available, nodefs.inodesFree, "
                        "imagefs.available, imagefs.inodesFree, pid.available)");
    }
    EvictionThreshold threshold;
    threshold.signal = std::string(signal);
    if (!value.empty() && value.back() == '%') {
      double percent = -1;
      const std::string_view number = value.substr(0, value.size() - 1);
      auto [end, error] = std::from_chars(number.data(), number.data() + number.size(), percent);
      if (error != std::errc() || end != number.data() + number.size() || percent < 0 ||
          percent > 100) {
        return Status(Code::kInvalidArgument, "eviction threshold \"" + std::string(item) +
                                                  "\": the percentage must be within 0-100%");
      }
      threshold.percent = percent;
    } else {
      const std::optional<int64_t> quantity = ParseQuantityValue(value);
      if (!quantity || *quantity < 0) {
        return Status(Code::kInvalidArgument, "eviction threshold \"" + std::string(item) +
                                                  "\": \"" + std::string(value) +
                                                  "\" is not a quantity (e.g. 100Mi, 1Gi, 5%)");
      }
      threshold.quantity = *quantity;
    }
    thresholds.push_back(std::move(threshold));
  }
  return thresholds;
}

Result<std::chrono::milliseconds> ParseGoDuration(std::string_view text) {
  const std::string original(text);
  auto bad = [&](const std::string& why) {
    return Status(Code::kInvalidArgument,
                  "\"" + original + "\" is not a duration (" + why + "; e.g. 1m30s, 90s, 500ms)");
  };
  text = Trim(text);
  if (text.empty()) return bad("empty");
  if (text.front() == '-') return bad("negative");
  if (text.front() == '+') text.remove_prefix(1);
  if (text == "0") return std::chrono::milliseconds(0);
  double nanoseconds = 0;
  while (!text.empty()) {
    size_t digits = 0;
    while (digits < text.size() &&
           ((text[digits] >= '0' && text[digits] <= '9') || text[digits] == '.')) {
      ++digits;
    }
    double number = 0;
    auto [end, error] = std::from_chars(text.data(), text.data() + digits, number);
    if (digits == 0 || error != std::errc() || end != text.data() + digits) {
      return bad("expected a number at \"" + std::string(text) + "\"");
    }
    text.remove_prefix(digits);
    size_t letters = 0;
    while (letters < text.size() && !(text[letters] >= '0' && text[letters] <= '9') &&
           text[letters] != '.') {
      ++letters;
    }
    const std::string_view unit = text.substr(0, letters);
    text.remove_prefix(letters);
    if (unit.empty()) return bad("a unit is missing");
    static constexpr std::pair<std::string_view, double> kUnits[] = {
        {"h", 3600e9}, {"m", 60e9},      {"s", 1e9}, {"ms", 1e6},
        {"us", 1e3},   {"\u00b5s", 1e3}, {"ns", 1}};
    double scale = 0;
    for (const auto& [name, nanos] : kUnits) {
      if (unit == name) scale = nanos;
    }
    if (scale == 0) return bad("unknown unit \"" + std::string(unit) + "\"");
    nanoseconds += number * scale;
  }
  if (nanoseconds / 1e6 > 1e15) return bad("too long");
  return std::chrono::milliseconds(static_cast<int64_t>(nanoseconds / 1e6));
}

Result<std::vector<EvictionThreshold>> ParseEvictionSoft(std::string_view thresholds_text,
                                                         std::string_view grace_text) {
  auto thresholds = ParseEvictionHard(thresholds_text);
  if (!thresholds.ok()) return thresholds.status();
  std::map<std::string, std::chrono::milliseconds> grace_periods;
  while (!Trim(grace_text).empty()) {
    const size_t comma = grace_text.find(',');
    const std::string_view item = Trim(grace_text.substr(0, comma));
    grace_text =
        comma == std::string_view::npos ? std::string_view() : grace_text.substr(comma + 1);
    if (item.empty()) continue;
    const size_t equals = item.find('=');
    if (equals == std::string_view::npos) {
      return Status(Code::kInvalidArgument,
                    "eviction grace period \"" + std::string(item) +
                        "\": expected SIGNAL=DURATION, e.g. memory.available=1m30s");
    }
    const std::string signal(Trim(item.substr(0, equals)));
    if (FindSignal(signal) == nullptr) {
      return Status(Code::kInvalidArgument,
                    "eviction grace period \"" + std::string(item) + "\": unknown signal \"" +
                        signal +
                        "\" (memory.available, nodefs.available, nodefs.inodesFree, "
                        "imagefs.available, imagefs.inodesFree, pid.available)");
    }
    auto duration = ParseGoDuration(item.substr(equals + 1));
    if (!duration.ok()) {
      return Status(Code::kInvalidArgument, "eviction grace period \"" + std::string(item) +
                                                "\": " + duration.status().message());
    }
    if (!grace_periods.emplace(signal, *duration).second) {
      return Status(Code::kInvalidArgument,
                    "eviction grace period for " + signal + " is given twice");
    }
  }
  std::set<std::string> seen;
  for (EvictionThreshold& threshold : *thresholds) {
    if (!seen.insert(threshold.signal).second) {
      return Status(Code::kInvalidArgument,
                    "soft eviction threshold for " + threshold.signal + " is given twice");
    }
    auto grace = grace_periods.find(threshold.signal);
    if (grace == grace_periods.end()) {
      return Status(Code::kInvalidArgument, "soft eviction threshold " + threshold.signal +
                                                " has no grace period (add " + threshold.signal +
                                                "=DURATION to --eviction-soft-grace-period, e.g. " +
                                                threshold.signal + "=1m30s)");
    }
    threshold.soft = true;
    threshold.grace_period = grace->second;
  }
  return thresholds;
}

NodeSignals ObserveNodeSignals(const std::string& nodefs_dir, const std::string& imagefs_dir) {
  NodeSignals signals;
  {
    std::ifstream in("/proc/meminfo");
    for (std::string line; std::getline(in, line);) {
      int64_t* target = line.rfind("MemTotal:", 0) == 0       ? &signals.memory_capacity
                        : line.rfind("MemAvailable:", 0) == 0 ? &signals.memory_available
                                                              : nullptr;
      if (target == nullptr) continue;
      std::istringstream words(line.substr(line.find(':') + 1));
      int64_t kb = -1;
      if (words >> kb) *target = kb * 1024;
    }
  }
  ObserveFilesystem(nodefs_dir, &signals.nodefs_available, &signals.nodefs_capacity,
                    &signals.nodefs_inodes_free, &signals.nodefs_inodes);
  ObserveFilesystem(imagefs_dir, &signals.imagefs_available, &signals.imagefs_capacity,
                    &signals.imagefs_inodes_free, &signals.imagefs_inodes);
  {
    std::ifstream in("/proc/sys/kernel/pid_max");
    int64_t pid_max = -1;
    struct sysinfo info {};
    if ((in >> pid_max) && pid_max > 0 && sysinfo(&info) == 0) {
      signals.pid_max = pid_max;
      signals.pid_available = pid_max - static_cast<int64_t>(info.procs);
    }
  }
  return signals;
}

std::vector<MetThreshold> MetThresholds(const std::vector<EvictionThreshold>& thresholds,
                                        const NodeSignals& signals) {
  std::vector<MetThreshold> met;
  for (const EvictionThreshold& threshold : thresholds) {
    const SignalInfo* info = FindSignal(threshold.signal);
    if (info == nullptr) continue;
    const int64_t available = signals.*(info->available);
    const int64_t limit = Limit(threshold, signals.*(info->capacity));
    if (available < 0 || limit < 0 || available >= limit) continue;
    met.push_back({threshold.signal, available, limit, threshold.soft, threshold.grace_period});
  }
  return met;
}

std::string SignalValueText(std::string_view signal, int64_t value) { return Human(signal, value); }

NodePressure EvaluatePressure(const std::vector<EvictionThreshold>& thresholds,
                              const NodeSignals& signals) {
  NodePressure pressure;
  for (const MetThreshold& met : MetThresholds(thresholds, signals)) {
    switch (FindSignal(met.signal)->kind) {
      case Kind::kMemory: pressure.memory = true; break;
      case Kind::kDisk: pressure.disk = true; break;
      case Kind::kPid: pressure.pid = true; break;
    }
    pressure.reasons.push_back(met.signal + " " + Human(met.signal, met.available) + " < " +
                               Human(met.signal, met.limit));
  }
  return pressure;
}

int64_t ReservedByThreshold(const std::vector<EvictionThreshold>& thresholds,
                            std::string_view signal, int64_t capacity) {
  for (const EvictionThreshold& threshold : thresholds) {
    if (threshold.signal == signal) return std::max<int64_t>(0, Limit(threshold, capacity));
  }
  return 0;
}

NodePressure PressureTracker::Update(const NodePressure& observed, TimePoint now) {
  NodePressure reported = observed;
  auto track = [&](bool seen_now, std::optional<TimePoint>* last_seen, bool* report) {
    if (seen_now) *last_seen = now;
    *report = seen_now || (last_seen->has_value() && now - **last_seen < period_);
  };
  track(observed.memory, &memory_seen_, &reported.memory);
  track(observed.disk, &disk_seen_, &reported.disk);
  track(observed.pid, &pid_seen_, &reported.pid);
  return reported;
}

}  // namespace mk8s::kubelet
