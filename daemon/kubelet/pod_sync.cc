#include "kubelet/pod_sync.h"

#include <spdlog/spdlog.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "client/resources.h"
#include "common/time_format.h"
#include "kubelet/runtime_view.h"
#include "runtime/cri_client.h"

namespace mk8s::kubelet {
namespace {

using nlohmann::json;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool IsTerminal(const std::string& phase) { return phase == "Succeeded" || phase == "Failed"; }

// Sets phase Failed, the reason and message (and the DisruptionTarget condition) on `pod`'s
// status, which ComputePodStatus then keeps.
void MarkFailed(json* pod, const PodFailure& failure, const std::string& now) {
  json& status = (*pod)["status"];
  if (!status.is_object()) status = json::object();
  status["phase"] = "Failed";
  status["reason"] = failure.reason;
  status["message"] = failure.message;
  if (!failure.disruption) return;
  json& conditions = status["conditions"];
  if (!conditions.is_array()) conditions = json::array();
  for (const json& c : conditions) {
    if (c.is_object() && c.value("type", "") == "DisruptionTarget") return;
  }
  conditions.push_back({{"type", "DisruptionTarget"},
                        {"status", "True"},
                        {"reason", "TerminationByKubelet"},
                        {"message", failure.message},
                        {"lastTransitionTime", now}});
}

}  // namespace

std::string PodDescription(const json& pod) {
  const json& meta = pod["metadata"];
  return meta.value("name", "") + "_" + meta.value("namespace", "") + "(" + meta.value("uid", "") +
         ")";
}

int64_t GracePeriod(const json& pod) {
  const json& meta = pod["metadata"];
  if (meta.contains("deletionGracePeriodSeconds") &&
      meta["deletionGracePeriodSeconds"].is_number()) {
    return meta["deletionGracePeriodSeconds"].get<int64_t>();
  }
  return pod.value("/spec/terminationGracePeriodSeconds"_json_pointer, int64_t{30});
}

PodSync::PodSync(PodSyncOptions options, std::shared_ptr<client::Client> client,
                 std::shared_ptr<runtime::CriClient> cri, PodHooks hooks)
    : options_(std::move(options)),
      client_(client),
      cri_(std::move(cri)),
      hooks_(std::move(hooks)),
      recorder_(client, "kubelet"),
      pull_backoff_(std::chrono::seconds(10), std::chrono::minutes(5)) {
  prober_ = std::make_unique<Prober>(cri_, &recorder_, options_.enqueue);
}

void PodSync::StopProbes() { prober_->Stop(); }

SandboxParams PodSync::SandboxParamsFor(uint32_t attempt) {
  SandboxParams params;
  params.log_root = options_.root_dir + "/logs";
  params.attempt = attempt;
  params.host_dns = DnsSettings::ParseResolvConf(ReadFile(options_.host_resolv_conf));
  // The dns addon publishes the cluster DNS address in kube-system/cluster-dns.
  auto dns = client_->Get(client::kConfigMaps, "kube-system", "cluster-dns");
  if (dns.ok()) {
    const std::string server = (*dns).value("/data/clusterDNS"_json_pointer, std::string());
    const std::string domain = (*dns).value("/data/clusterDomain"_json_pointer, std::string());
    if (!server.empty()) params.cluster_dns = server;
    if (!domain.empty()) params.cluster_domain = domain;
  }
  return params;
}

Result<std::string> PodSync::EnsureSandbox(const json& pod, PodRuntimeState* state,
                                           cri::PodSandboxConfig* config) {
  const SandboxInfo* newest = state->Newest();
  if (newest != nullptr && newest->ready) {
    *config = BuildSandboxConfig(pod, SandboxParamsFor(static_cast<uint32_t>(newest->attempt)));
    return newest->id;
  }
  // A new sandbox: whatever still runs in the old one goes first.
  const std::vector<const ContainerInfo*> running = state->Live();
  StopContainers(running, GracePeriod(pod), &pod);
  for (size_t i = 0; i < state->sandboxes.size(); ++i) {
    const SandboxInfo& old = state->sandboxes[i];
    if (old.ready) (void)cri_->StopPodSandbox(old.id);
    // Keep the newest old sandbox (its containers carry the last states); remove older ones.
    if (i >= 1) (void)cri_->RemovePodSandbox(old.id);
  }
  const uint32_t attempt = newest != nullptr ? static_cast<uint32_t>(newest->attempt + 1) : 0;
  *config = BuildSandboxConfig(pod, SandboxParamsFor(attempt));
  std::error_code error;
  std::filesystem::create_directories(config->log_directory(), error);
  const std::string uid = pod["metadata"].value("uid", "");
  const auto started = std::chrono::steady_clock::now();
  auto id = cri_->RunPodSandbox(*config);
  if (!id.ok()) {
    recorder_.Record(pod, "Warning", "FailedCreatePodSandBox",
                     "Failed to create pod sandbox: " + id.status().message());
    return id.status();
  }
  spdlog::info("kubelet: pod {} sandbox {} (attempt {}) in {} ms", PodDescription(pod),
               id->substr(0, 12), attempt,
               std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::steady_clock::now() - started)
                   .count());
  if (newest != nullptr) {
    recorder_.Record(pod, "Normal", "SandboxChanged",
                     "Pod sandbox changed, it will be killed and re-created.");
  }
  auto reread = ReadPodState(*cri_, uid);
  if (!reread.ok()) return reread.status();
  *state = std::move(*reread);
  return *id;
}

Result<SyncOutcome> PodSync::Sync(const json& pod) {
  const std::string uid = pod["metadata"].value("uid", "");
  auto read = ReadPodState(*cri_, uid);
  if (!read.ok()) return read.status();
  PodRuntimeState state = std::move(*read);
  const json& spec = pod["spec"];
  const std::string policy = spec.value("restartPolicy", "Always");
  SyncOutcome outcome;

  const std::string phase = pod.value("/status/phase"_json_pointer, std::string());
  if (!IsTerminal(phase) && state.sandboxes.empty() && options_.reject) {
    // Admission: a node under pressure refuses pods it has not started.
    if (std::optional<std::string> why = options_.reject(pod)) {
      spdlog::warn("kubelet: pod {} rejected: {}", PodDescription(pod), *why);
      if (Status failed = Fail(pod, {"Evicted", "Pod was rejected: " + *why}); !failed.ok())
        return failed;
      return outcome;
    }
  }
  if (IsTerminal(phase)) {
    // A finished pod keeps nothing running; its sandbox (and IP) is released.
    std::vector<const ContainerInfo*> running;
    for (const ContainerInfo& c : state.containers) {
      if (c.state == ContainerState::kRunning) running.push_back(&c);
    }
    prober_->ForgetPod(uid);
    StopContainers(running, GracePeriod(pod), &pod);
    for (const SandboxInfo& s : state.sandboxes) {
      if (s.ready) (void)cri_->StopPodSandbox(s.id);
    }
    return outcome;
  }

  // A sandbox that died with restartPolicy Never and every container finished: the pod is done.
  bool done = false;
  if (const SandboxInfo* newest = state.Newest();
      newest != nullptr && !newest->ready && policy == "Never") {
    done = true;
    for (const json& c : spec.value("containers", json::array())) {
      auto instances = state.Instances(c.value("name", ""));
      if (instances.empty() || instances[0]->state != ContainerState::kExited) done = false;
    }
  }
  if (!done && hooks_.set_up_volumes) {
    // Every sync: new ConfigMap/Secret contents and token renewals reach running pods.
    if (Status status = hooks_.set_up_volumes(pod); !status.ok()) {
      recorder_.Record(pod, "Warning", "FailedMount",
                       "MountVolume.SetUp failed: " + status.message());
      (void)WriteStatus(pod, state);
      return status;
    }
  }
  if (!done) {
    cri::PodSandboxConfig sandbox_config;
    auto sandbox_id = EnsureSandbox(pod, &state, &sandbox_config);
    if (!sandbox_id.ok()) {
      (void)WriteStatus(pod, state);
      return sandbox_id.status();
    }
    const SandboxInfo* sandbox = state.Newest();
    const std::string pod_ip = sandbox != nullptr && !sandbox->ips.empty() ? sandbox->ips[0] : "";
    auto remember = [&](std::optional<std::chrono::milliseconds> wait) {
      if (wait && (!outcome.requeue_after || *wait < *outcome.requeue_after))
        outcome.requeue_after = wait;
    };

    bool init_done = true;
    for (const json& c : spec.value("initContainers", json::array())) {
      auto instances = state.Instances(c.value("name", ""));
      const ContainerInfo* last = instances.empty() ? nullptr : instances[0];
      init_done = false;
      if (last == nullptr || last->sandbox_id != *sandbox_id) {
        // Not run in this sandbox yet: a new sandbox runs the init containers again.
        if (!StartContainer(pod, c, last == nullptr ? 0 : last->restart_count + 1, *sandbox_id,
                            sandbox_config, pod_ip)) {
          remember(std::chrono::milliseconds(5000));
        }
        break;
      }
      if (last->state == ContainerState::kRunning) break;
      if (last->state == ContainerState::kCreated) {
        (void)cri_->StartContainer(last->id);
        break;
      }
      if (last->state == ContainerState::kExited && last->exit_code == 0) {
        init_done = true;
        continue;
      }
      if (policy != "Never") remember(Restart(pod, c, *last, *sandbox_id, sandbox_config, pod_ip));
      break;
    }
    if (init_done) {
      for (const json& c : spec.value("containers", json::array())) {
        auto instances = state.Instances(c.value("name", ""));
        const ContainerInfo* last = instances.empty() ? nullptr : instances[0];
        if (last == nullptr) {
          // A failed start (image pull, config) is retried soon; the pull back-off paces pulls.
          if (!StartContainer(pod, c, 0, *sandbox_id, sandbox_config, pod_ip)) {
            remember(std::chrono::milliseconds(5000));
          }
        } else if (last->sandbox_id != *sandbox_id) {
          remember(Restart(pod, c, *last, *sandbox_id, sandbox_config, pod_ip));
        } else if (last->state == ContainerState::kCreated) {
          if (Status started = cri_->StartContainer(last->id); started.ok()) {
            recorder_.Record(pod, "Normal", "Started", "Started container " + last->name);
          }
        } else if (last->state == ContainerState::kExited) {
          if (policy == "Always" || (policy == "OnFailure" && last->exit_code != 0)) {
            remember(Restart(pod, c, *last, *sandbox_id, sandbox_config, pod_ip));
          }
        }
      }
    }
    auto reread = ReadPodState(*cri_, uid);
    if (reread.ok()) state = std::move(*reread);
    RemoveOldInstances(pod, state);
    const SandboxInfo* current = state.Newest();
    prober_->Update(pod, state, current != nullptr && !current->ips.empty() ? current->ips[0] : "");
  }
  if (Status written = WriteStatus(pod, state); !written.ok()) return written;
  return outcome;
}

void PodSync::RemoveOldInstances(const json& pod, const PodRuntimeState& state) {
  for (const char* list : {"initContainers", "containers"}) {
    for (const json& c : pod["spec"].value(list, json::array())) {
      auto instances = state.Instances(c.value("name", ""));
      for (size_t i = 2; i < instances.size(); ++i) {
        if (instances[i]->state == ContainerState::kRunning) continue;
        (void)cri_->RemoveContainer(instances[i]->id);
      }
    }
  }
}

Status PodSync::Fail(const json& pod, const PodFailure& why) {
  // A pod that finished meanwhile keeps its own ending.
  if (IsTerminal(pod.value("/status/phase"_json_pointer, std::string()))) return Status::Ok();
  const std::string uid = pod["metadata"].value("uid", "");
  auto read = ReadPodState(*cri_, uid);
  if (!read.ok()) return read.status();
  const std::vector<const ContainerInfo*> running = read->Live();
  prober_->ForgetPod(uid);
  StopContainers(running, why.grace_seconds, &pod);
  for (const SandboxInfo& s : read->sandboxes) {
    if (s.ready) (void)cri_->StopPodSandbox(s.id);
  }
  auto stopped = ReadPodState(*cri_, uid);
  if (!stopped.ok()) return stopped.status();
  recorder_.Record(pod, "Warning", why.reason, why.message);
  return WriteStatus(pod, *stopped, &why);
}

Status PodSync::WriteStatus(const json& pod, const PodRuntimeState& state,
                            const PodFailure* failure) {
  const std::string uid = pod["metadata"].value("uid", "");
  StatusInputs inputs;
  inputs.runtime = &state;
  inputs.waiting = WaitingFor(uid);
  for (const ContainerInfo& c : state.containers) {
    if (c.state == ContainerState::kRunning) inputs.probes[c.id] = prober_->Results(c.id);
  }
  inputs.host_ips = options_.host_ips;
  inputs.now = NowRfc3339();
  json current = pod;
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (failure != nullptr) MarkFailed(&current, *failure, inputs.now);
    inputs.pod = &current;
    json status = ComputePodStatus(inputs);
    std::string compact = status.dump();
    {
      std::lock_guard lock(mu_);
      auto it = last_status_.find(uid);
      if ((it != last_status_.end() && it->second == compact) ||
          current.value("status", json::object()) == status) {
        return Status::Ok();
      }
    }
    json updated = current;
    updated["status"] = status;
    auto written = client_->UpdateStatus(client::kPods, updated);
    if (written.ok()) {
      std::lock_guard lock(mu_);
      last_status_[uid] = std::move(compact);
      return Status::Ok();
    }
    if (client::IsNotFound(written.error())) return Status::Ok();
    if (!client::IsConflict(written.error())) return written.status();
    auto fresh = client_->Get(client::kPods, pod["metadata"].value("namespace", ""),
                              pod["metadata"].value("name", ""));
    if (!fresh.ok()) return fresh.status();
    if ((*fresh).value("/metadata/uid"_json_pointer, std::string()) != uid) return Status::Ok();
    current = std::move(*fresh);
  }
  return Status(Code::kConflict, "pod status kept conflicting");
}

void PodSync::SetWaiting(const std::string& uid, const std::string& container, Waiting waiting) {
  std::lock_guard lock(mu_);
  waiting_[uid][container] = std::move(waiting);
}

void PodSync::ClearWaiting(const std::string& uid, const std::string& container) {
  std::lock_guard lock(mu_);
  auto it = waiting_.find(uid);
  if (it != waiting_.end()) it->second.erase(container);
}

std::map<std::string, Waiting> PodSync::WaitingFor(const std::string& uid) {
  std::lock_guard lock(mu_);
  auto it = waiting_.find(uid);
  return it == waiting_.end() ? std::map<std::string, Waiting>{} : it->second;
}

void PodSync::Forget(const std::string& uid) {
  prober_->ForgetPod(uid);
  crash_backoff_.ForgetPrefix(uid + "/");
  pull_backoff_.ForgetPrefix(uid + "/");
  std::lock_guard lock(mu_);
  waiting_.erase(uid);
  last_status_.erase(uid);
}

}  // namespace mk8s::kubelet
