#include "kubelet/kubelet.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include "client/informer.h"
#include "client/workqueue.h"
#include "kubelet/container_config.h"
#include "kubelet/volumes/env.h"
#include "kubelet/volumes/volume_manager.h"
#include "runtime/cri_client.h"

namespace mk8s::kubelet {
namespace {

using nlohmann::json;

constexpr const char* kOrphanPrefix = "orphan:";

}  // namespace

Kubelet::Kubelet(KubeletOptions options, std::shared_ptr<client::Client> client,
                 std::shared_ptr<runtime::CriClient> cri)
    : options_(std::move(options)), client_(std::move(client)), cri_(std::move(cri)) {}

Kubelet::~Kubelet() { Stop(false); }

void Kubelet::InstallDefaultHooks(PodHooks* hooks) {
  volumes_ = std::make_unique<VolumeManager>(client_, options_.root_dir + "/pods");
  VolumeManager* volumes = volumes_.get();
  if (!hooks->set_up_volumes) {
    hooks->set_up_volumes = [volumes](const json& pod) { return volumes->SetUpPod(pod); };
  }
  if (!hooks->tear_down_volumes) {
    hooks->tear_down_volumes = [volumes](const std::string& uid) {
      if (Status status = volumes->TearDownPod(uid); !status.ok()) {
        spdlog::warn("kubelet: tearing down volumes of pod {}: {}", uid, status.message());
      }
    };
  }
  if (!hooks->mounts_for) {
    hooks->mounts_for = [volumes](const json& pod,
                                  const json& container) -> Result<std::vector<MountSpec>> {
      auto mounts = volumes->MountsFor(pod, container);
      if (!mounts.ok()) return mounts.status();
      std::vector<MountSpec> specs;
      for (const Mount& m : *mounts) {
        const int propagation = m.propagation == "HostToContainer"
                                    ? cri::PROPAGATION_HOST_TO_CONTAINER
                                : m.propagation == "Bidirectional" ? cri::PROPAGATION_BIDIRECTIONAL
                                                                   : cri::PROPAGATION_PRIVATE;
        specs.push_back(MountSpec{m.container_path, m.host_path, m.read_only, propagation});
      }
      return specs;
    };
  }
  if (!hooks->resolve_env) {
    client::Client* api = client_.get();
    client::Informer* services = services_.get();
    const std::string host_ip = options_.node.node_ips.empty() ? "" : options_.node.node_ips[0];
    hooks->resolve_env = [api, services, host_ip](const json& pod, const json& container,
                                                  const std::string& pod_ip) {
      return ResolveEnv(pod, container, *api, services->List(), pod_ip, host_ip);
    };
  }
}

RuntimeReadiness Kubelet::ProbeRuntime() {
  RuntimeReadiness readiness;
  auto version = cri_->Version();
  if (!version.ok()) {
    readiness.message = version.status().message();
    return readiness;
  }
  readiness.version = version->runtime_name() + "://" + version->runtime_version();
  auto status = cri_->Status();
  if (!status.ok()) {
    readiness.message = status.status().message();
    return readiness;
  }
  for (const auto& condition : status->status().conditions()) {
    if (condition.type() == "RuntimeReady") readiness.runtime_ready = condition.status();
    if (condition.type() == "NetworkReady") {
      readiness.network_ready = condition.status();
      if (!condition.status()) readiness.message = condition.reason() + ": " + condition.message();
    }
  }
  return readiness;
}

Result<std::unique_ptr<Kubelet>> Kubelet::Start(KubeletOptions options,
                                                std::shared_ptr<client::Client> client,
                                                std::shared_ptr<runtime::CriClient> cri) {
  std::unique_ptr<Kubelet> k(new Kubelet(std::move(options), std::move(client), std::move(cri)));
  Kubelet* self = k.get();
  const MachineFacts facts = MachineFacts::Detect(k->options_.node.state_dir);
  k->node_ = std::make_unique<NodeStatusManager>(
      k->options_.node, facts, k->client_, [self] { return self->ProbeRuntime(); },
      k->options_.on_pod_cidr);
  if (Status status = k->node_->Register(); !status.ok()) return status;
  k->node_->Start();

  k->services_ = std::make_unique<client::Informer>(k->client_, client::kServices);
  k->services_->Start();
  PodHooks hooks = k->options_.hooks;
  k->InstallDefaultHooks(&hooks);

  PodSyncOptions sync_options;
  sync_options.root_dir = k->options_.root_dir;
  sync_options.host_ips = k->options_.node.node_ips;
  sync_options.memory_capacity_bytes = facts.memory_bytes;
  sync_options.enqueue = [self](const std::string& key) {
    if (self->queue_) self->queue_->Add(key);
  };
  sync_options.reject = [self](const json& pod) {
    return RejectUnderPressure(pod, self->node_->ReportedPressure());
  };
  k->sync_ = std::make_unique<PodSync>(sync_options, k->client_, k->cri_, std::move(hooks));

  client::RateLimiterOptions limits;
  limits.base_delay = std::chrono::milliseconds(500);
  limits.max_delay = std::chrono::milliseconds(30000);
  k->queue_ = std::make_unique<client::WorkQueue>(nullptr, limits);
  client::InformerOptions informer_options;
  informer_options.field_selector = "spec.nodeName=" + k->options_.node.node_name;
  k->pods_ = std::make_unique<client::Informer>(k->client_, client::kPods, informer_options);
  k->pods_->SetIndex("uid", [](const json& pod) {
    return std::vector<std::string>{pod.value("/metadata/uid"_json_pointer, std::string())};
  });
  auto enqueue = [self](const client::ObjectPtr& pod) {
    self->queue_->Add(client::ObjectKey(*pod));
  };
  k->pods_->AddEventHandler(
      {enqueue, [enqueue](const client::ObjectPtr&, const client::ObjectPtr& pod) { enqueue(pod); },
       [self](const client::ObjectPtr& pod) {
         // Gone from the API: whatever still runs for it is an orphan now, stopped with the
         // grace period its deletion asked for.
         const std::string uid = (*pod).value("/metadata/uid"_json_pointer, std::string());
         const json& meta = (*pod)["metadata"];
         if (meta.contains("deletionGracePeriodSeconds") &&
             meta["deletionGracePeriodSeconds"].is_number()) {
           std::lock_guard lock(self->mu_);
           self->orphan_grace_[uid] = meta["deletionGracePeriodSeconds"].get<int64_t>();
         }
         {
           std::lock_guard lock(self->mu_);
           self->evictions_.erase(uid);
         }
         self->queue_->Add(kOrphanPrefix + uid);
       }});
  k->pods_->Start();
  if (!k->pods_->WaitForSync(std::chrono::seconds(60)) ||
      !k->services_->WaitForSync(std::chrono::seconds(60))) {
    return Status(Code::kUnavailable, "kubelet: the pod list did not arrive within 60 s");
  }
  for (int i = 0; i < k->options_.workers; ++i) k->threads_.emplace_back([self] { self->Work(); });
  k->threads_.emplace_back([self] { self->RelistLoop(); });
  k->image_gc_ = std::make_unique<ImageGarbageCollector>(k->options_.image_gc, k->cri_);
  k->image_gc_->Start();
  k->StartEvictionManager();
  spdlog::info("kubelet: node {} running ({} workers)", k->options_.node.node_name,
               k->options_.workers);
  return k;
}

void Kubelet::StartEvictionManager() {
  EvictionManagerOptions options;
  options.thresholds = options_.node.eviction_hard;
  options.thresholds.insert(options.thresholds.end(), options_.node.eviction_soft.begin(),
                            options_.node.eviction_soft.end());
  options.max_pod_grace_seconds = options_.eviction_max_pod_grace_seconds;
  EvictionHooks hooks;
  const std::string nodefs = options_.node.state_dir;
  const std::string imagefs = options_.node.imagefs_dir;
  hooks.observe = [nodefs, imagefs] { return ObserveNodeSignals(nodefs, imagefs); };
  hooks.list_pods = [this] { return pods_->List(); };
  hooks.read_usage = [this] {
    VolumeManager* volumes = volumes_.get();
    const auto pods = pods_->List();
    auto usage = ReadRuntimeUsage(*cri_, pods, options_.root_dir + "/logs",
                                  [volumes](const std::string& uid, const json& volume) {
                                    return volumes->VolumePath(uid, volume);
                                  });
    ReadPodProcessCounts("/sys/fs/cgroup", pods, &usage);
    return usage;
  };
  hooks.reclaim_images = [this]() -> uint64_t {
    auto pass = image_gc_->FreeUnused();
    return pass.ok() ? pass->freed_bytes : 0;
  };
  hooks.evict = [this](const json& pod, const std::string& message, int64_t grace_seconds) {
    {
      std::lock_guard lock(mu_);
      evictions_[pod.value("/metadata/uid"_json_pointer, std::string())] = {message, grace_seconds};
    }
    queue_->Add(client::ObjectKey(pod));
  };
  eviction_ = std::make_unique<EvictionManager>(std::move(options), std::move(hooks));
  eviction_->Start();
}

std::optional<Kubelet::Eviction> Kubelet::PendingEviction(const std::string& uid) {
  std::lock_guard lock(mu_);
  auto it = evictions_.find(uid);
  if (it == evictions_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> Kubelet::PodUid(const std::string& ns, const std::string& name) const {
  if (!pods_) return std::nullopt;
  client::ObjectPtr pod = pods_->Get(ns, name);
  if (!pod) return std::nullopt;
  return (*pod).value("/metadata/uid"_json_pointer, std::string());
}

void Kubelet::Stop(bool stop_pods) {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  stopping_ = true;
  cv_.notify_all();
  if (eviction_) eviction_->Stop();  // it queues work and reads the informer
  if (queue_) queue_->ShutDown();
  for (std::thread& thread : threads_) thread.join();
  threads_.clear();
  if (pods_) pods_->Stop();
  if (services_) services_->Stop();
  if (sync_) sync_->StopProbes();
  if (node_) node_->Stop();
  if (image_gc_) image_gc_->Stop();
  if (stop_pods && sync_) {
    spdlog::info("kubelet: stopping every pod on {}", options_.node.node_name);
    sync_->StopAll();
  }
}

void Kubelet::Work() {
  while (auto key = queue_->Get()) {
    if (stopping_) {
      queue_->Done(*key);
      continue;
    }
    Status status = Status::Ok();
    std::optional<std::chrono::milliseconds> again;
    if (key->rfind(kOrphanPrefix, 0) == 0) {
      const std::string uid = key->substr(std::string(kOrphanPrefix).size());
      if (pods_->ByIndex(uid).empty()) {
        std::optional<int64_t> grace;
        {
          std::lock_guard lock(mu_);
          auto it = orphan_grace_.find(uid);
          if (it != orphan_grace_.end()) grace = it->second;
        }
        status = sync_->CleanUpOrphan(uid, grace);
        if (status.ok()) {
          std::lock_guard lock(mu_);
          orphan_grace_.erase(uid);
        }
      }
    } else if (client::ObjectPtr pod = pods_->Get(*key)) {
      const std::string uid = (*pod).value("/metadata/uid"_json_pointer, std::string());
      if ((*pod)["metadata"].contains("deletionTimestamp")) {
        status = sync_->Terminate(*pod);
      } else if (std::optional<Eviction> eviction = PendingEviction(uid)) {
        // Hard thresholds allow no grace beyond a second (upstream's immediate eviction); soft
        // ones the pod's own, capped by --eviction-max-pod-grace-period.
        status = sync_->Fail(
            *pod, {"Evicted", eviction->message, /*disruption=*/true, eviction->grace_seconds});
        if (status.ok()) {
          std::lock_guard lock(mu_);
          evictions_.erase(uid);
        }
      } else {
        auto outcome = sync_->Sync(*pod);
        if (outcome.ok()) {
          again = outcome->requeue_after;
        } else {
          status = outcome.status();
        }
      }
    }
    if (status.ok()) {
      queue_->Forget(*key);
      if (again) queue_->AddAfter(*key, *again);
    } else {
      spdlog::warn("kubelet: syncing {}: {}", *key, status.message());
      queue_->AddRateLimited(*key);
    }
    queue_->Done(*key);
    trimmer_.NoteWork();
  }
}

void Kubelet::RelistLoop() {
  while (!stopping_) {
    Relist();
    trimmer_.Tick(std::chrono::steady_clock::now(), queue_->Len() == 0);
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, options_.relist_period, [this] { return stopping_.load(); });
  }
}

void Kubelet::Relist() {
  auto sandboxes = cri_->ListPodSandbox();
  auto containers = cri_->ListContainers();
  if (!sandboxes.ok() || !containers.ok()) return;
  std::map<std::string, std::string> seen;
  for (const cri::PodSandbox& s : *sandboxes) {
    auto uid = s.labels().find(kPodUidLabel);
    if (uid == s.labels().end()) continue;
    seen[uid->second] += "s" + s.id() + ":" + std::to_string(s.state()) + ";";
  }
  for (const cri::Container& c : *containers) {
    auto uid = c.labels().find(kPodUidLabel);
    if (uid == c.labels().end()) continue;
    seen[uid->second] += "c" + c.id() + ":" + std::to_string(c.state()) + ";";
  }
  for (const auto& [uid, signature] : seen) {
    auto pods = pods_->ByIndex(uid);
    if (pods.empty()) {
      queue_->Add(kOrphanPrefix + uid);  // housekeeping: CRI state of a pod gone from the API
      continue;
    }
    auto it = last_seen_.find(uid);
    if (it == last_seen_.end() || it->second != signature) {
      queue_->Add(client::ObjectKey(*pods.front()));
    }
  }
  last_seen_ = std::move(seen);
  const auto now = std::chrono::steady_clock::now();
  if (now - last_resync_ >= options_.resync_period) {
    last_resync_ = now;
    for (const client::ObjectPtr& pod : pods_->List()) queue_->Add(client::ObjectKey(*pod));
  }
}

}  // namespace mk8s::kubelet
