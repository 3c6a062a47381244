#include "kubelet/eviction_manager.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "kubelet/container_config.h"
#include "kubelet/qos.h"
#include "runtime/cri_client.h"

namespace mk8s::kubelet {
namespace {

using nlohmann::json;
using PodPtr = std::shared_ptr<const json>;

bool IsActive(const json& pod) {
  const std::string phase = pod.value("/status/phase"_json_pointer, std::string());
  return phase != "Succeeded" && phase != "Failed" &&
         !pod.value("metadata", json::object()).contains("deletionTimestamp");
}

std::string Uid(const json& pod) { return pod.value("/metadata/uid"_json_pointer, std::string()); }

std::string Key(const json& pod) {
  return pod.value("/metadata/namespace"_json_pointer, std::string()) + "/" +
         pod.value("/metadata/name"_json_pointer, std::string());
}

bool IsDiskSignal(const std::string& signal) {
  return signal.rfind("nodefs.", 0) == 0 || signal.rfind("imagefs.", 0) == 0;
}

int64_t FolderBytes(const std::filesystem::path& dir) {
  std::error_code error;
  int64_t total = 0;
  std::filesystem::recursive_directory_iterator it(
      dir, std::filesystem::directory_options::skip_permission_denied, error);
  for (; !error && it != std::filesystem::recursive_directory_iterator(); it.increment(error)) {
    std::error_code size_error;
    if (it->is_regular_file(size_error)) {
      const auto size = it->file_size(size_error);
      if (!size_error) total += static_cast<int64_t>(size);
    }
  }
  return total;
}

}  // namespace

EvictionManager::EvictionManager(EvictionManagerOptions options, EvictionHooks hooks)
    : options_(std::move(options)), hooks_(std::move(hooks)) {}

EvictionManager::~EvictionManager() { Stop(); }

void EvictionManager::Start() {
  if (options_.thresholds.empty()) return;
  loop_.Start(options_.period, PeriodicLoop::FirstPass::kNow, [this] { (void)RunOnce(); });
}

void EvictionManager::Stop() { loop_.Stop(); }

EvictionManager::Pass EvictionManager::RunOnce() {
  Pass pass;
  const std::vector<PodPtr> pods = hooks_.list_pods();
  // Forget the pods the API shows finished or gone: their eviction is done.
  std::set<std::string> still_asked;
  for (const PodPtr& pod : pods) {
    if (asked_.count(Uid(*pod)) != 0 && IsActive(*pod)) still_asked.insert(Uid(*pod));
  }
  asked_ = std::move(still_asked);

  const auto now = hooks_.now ? hooks_.now() : std::chrono::steady_clock::now();
  const std::vector<MetThreshold> met = MetThresholds(options_.thresholds, hooks_.observe());
  const std::vector<MetThreshold> actionable = soft_timer_.Update(met, now);
  for (const MetThreshold& m : met) {
    if (!m.soft) continue;
    const bool counts =
        std::any_of(actionable.begin(), actionable.end(),
                    [&](const MetThreshold& a) { return a.soft && a.signal == m.signal; });
    if (counts) continue;
    pass.soft_waiting.push_back(m.signal);
    if (soft_timer_.FirstMet(m.signal) == now) {  // the start of a run: say so once
      spdlog::info(
          "kubelet: soft eviction threshold met: {} {} < {}; pods are evicted if it "
          "holds for {:g} s",
          m.signal, SignalValueText(m.signal, m.available), SignalValueText(m.signal, m.limit),
          m.grace_period.count() / 1000.0);
    }
  }
  pass.threshold = ThresholdToReclaim(actionable);
  if (!pass.threshold) return pass;
  if (IsDiskSignal(pass.threshold->signal) && hooks_.reclaim_images) {
    pass.images_freed = hooks_.reclaim_images();
    if (pass.images_freed > 0) {
      spdlog::info("kubelet: {} below its threshold; image GC freed {} bytes",
                   pass.threshold->signal, pass.images_freed);
      auto after = ThresholdToReclaim(
          soft_timer_.Update(MetThresholds(options_.thresholds, hooks_.observe()), now));
      if (!after) return pass;  // node-level reclaim was enough, as upstream
      pass.threshold = after;
    }
  }
  if (!asked_.empty()) return pass;  // one eviction at a time: wait for the last one to finish

  std::vector<EvictionCandidate> candidates;
  std::map<std::string, PodUsage> usage = hooks_.read_usage();
  for (const PodPtr& pod : pods) {
    if (!IsActive(*pod) || IsCriticalPod(*pod)) continue;
    EvictionCandidate candidate;
    candidate.pod = pod.get();
    if (auto it = usage.find(Uid(*pod)); it != usage.end()) candidate.usage = it->second;
    candidates.push_back(std::move(candidate));
  }
  if (candidates.empty()) {
    spdlog::warn("kubelet: {} {} < {}, but no pod can be evicted", pass.threshold->signal,
                 SignalValueText(pass.threshold->signal, pass.threshold->available),
                 SignalValueText(pass.threshold->signal, pass.threshold->limit));
    return pass;
  }
  const EvictionResource resource = ResourceOfSignal(pass.threshold->signal);
  const EvictionCandidate& victim = candidates[RankForEviction(resource, candidates).front()];
  const std::string message = EvictionMessage(*pass.threshold, victim);
  pass.evicted = Key(*victim.pod);
  pass.grace_seconds =
      EvictionGraceSeconds(*pass.threshold, *victim.pod, options_.max_pod_grace_seconds);
  asked_.insert(Uid(*victim.pod));
  spdlog::warn("kubelet: evicting pod {} ({} threshold, grace {} s; it has {} tasks): {}",
               pass.evicted, pass.threshold->soft ? "soft" : "hard", pass.grace_seconds,
               victim.usage.processes, message);
  hooks_.evict(*victim.pod, message, pass.grace_seconds);
  return pass;
}

std::map<std::string, PodUsage> ReadRuntimeUsage(runtime::CriClient& cri,
                                                 const std::vector<PodPtr>& pods,
                                                 const std::string& log_root,
                                                 const EmptyDirPath& empty_dir_path) {
  std::map<std::string, PodUsage> usage;
  std::map<std::string, const json*> by_uid;
  for (const PodPtr& pod : pods) by_uid[Uid(*pod)] = pod.get();
  if (auto stats = cri.ListContainerStats(); stats.ok()) {
    for (const cri::ContainerStats& s : *stats) {
      const auto& labels = s.attributes().labels();
      auto uid = labels.find(kPodUidLabel);
      auto name = labels.find(kContainerNameLabel);
      if (uid == labels.end() || name == labels.end() || by_uid.count(uid->second) == 0) continue;
      PodUsage& pod_usage = usage[uid->second];
      if (s.has_memory() && s.memory().has_working_set_bytes()) {
        pod_usage.container_memory[name->second] +=
            static_cast<int64_t>(s.memory().working_set_bytes().value());
      }
      if (s.has_writable_layer() && s.writable_layer().has_used_bytes()) {
        pod_usage.container_storage[name->second] +=
            static_cast<int64_t>(s.writable_layer().used_bytes().value());
      }
    }
  } else {
    spdlog::warn("kubelet: eviction: container stats: {}", stats.status().message());
  }
  for (const auto& [uid, pod] : by_uid) {
    const std::filesystem::path logs = PodLogDirectory(log_root, *pod);
    for (const json& container : pod->value("/spec/containers"_json_pointer, json::array())) {
      const std::string name = container.value("name", "");
      const int64_t bytes = FolderBytes(logs / name);
      if (bytes > 0) usage[uid].container_storage[name] += bytes;
    }
    if (!empty_dir_path) continue;
    for (const json& volume : pod->value("/spec/volumes"_json_pointer, json::array())) {
      if (!volume.is_object() || !volume.contains("emptyDir")) continue;
      if (volume.value("/emptyDir/medium"_json_pointer, std::string()) == "Memory") continue;
      const int64_t bytes = FolderBytes(empty_dir_path(uid, volume));
      if (bytes > 0) usage[uid].volume_storage += bytes;
    }
  }
  return usage;
}

void ReadPodProcessCounts(const std::string& cgroup_root, const std::vector<PodPtr>& pods,
                          std::map<std::string, PodUsage>* usage) {
  for (const PodPtr& pod : pods) {
    const std::string parent = PodCgroupParent(*pod);
    for (const std::string& dir : {cgroup_root + "/pids" + parent, cgroup_root + parent}) {
      std::ifstream in(dir + "/pids.current");
      int64_t tasks = -1;
      if (in >> tasks && tasks >= 0) {
        (*usage)[Uid(*pod)].processes = tasks;
        break;
      }
    }
  }
}

}  // namespace mk8s::kubelet
