#include "scheduler/service/scheduler_service.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <nlohmann/json.hpp>

#include "client/client.h"
#include "client/event_recorder.h"
#include "client/json_path.h"
#include "client/shared_informer_factory.h"
#include "common/time_format.h"
#include "scheduler/scheduler_cache.h"
#include "scheduler/service/scheduling_queue.h"

namespace mk8s::scheduler {
namespace {

using nlohmann::json;

const std::string& StringAt(const json& object, const char* section, const char* key) {
  static const std::string kEmpty;
  const auto outer = object.find(section);
  if (outer == object.end() || !outer->is_object()) return kEmpty;
  const auto inner = outer->find(key);
  return inner != outer->end() && inner->is_string() ? inner->get_ref<const std::string&>()
                                                     : kEmpty;
}

bool IsAssigned(const json& pod) { return !StringAt(pod, "spec", "nodeName").empty(); }

bool IsTerminal(const json& pod) {
  const std::string& phase = StringAt(pod, "status", "phase");
  return phase == "Succeeded" || phase == "Failed";
}

bool IsTerminating(const json& pod) {
  const auto meta = pod.find("metadata");
  return meta != pod.end() && meta->contains("deletionTimestamp") &&
         !(*meta)["deletionTimestamp"].is_null();
}

// Node changes that can make a pending pod fit: allocatable, labels, taints, unschedulable.
bool NodeSchedulingChanged(const json& before, const json& after) {
  auto field = [](const json& node, const char* section, const char* key) -> json {
    auto outer = node.find(section);
    if (outer == node.end()) return nullptr;
    auto inner = outer->find(key);
    return inner == outer->end() ? json(nullptr) : *inner;
  };
  return field(before, "status", "allocatable") != field(after, "status", "allocatable") ||
         field(before, "metadata", "labels") != field(after, "metadata", "labels") ||
         field(before, "spec", "taints") != field(after, "spec", "taints") ||
         field(before, "spec", "unschedulable") != field(after, "spec", "unschedulable");
}

// A pending pod that a newly placed (or relabelled) pod can help: one with required pod affinity
// (it needs a matching pod in a topology domain) or a DoNotSchedule topology spread constraint
// (a placed pod can raise the minimum of the domains). Upstream's queueing hints for
// AssignedPodAdd and AssignedPodUpdate do the same for these two plugins.
bool NeedsOtherPods(const json& pod) {
  const json* required = client::FindPath(
      pod, {"spec", "affinity", "podAffinity", "requiredDuringSchedulingIgnoredDuringExecution"});
  if (required != nullptr && required->is_array() && !required->empty()) return true;
  const json* spread = client::FindPath(pod, {"spec", "topologySpreadConstraints"});
  if (spread == nullptr || !spread->is_array()) return false;
  for (const json& constraint : *spread) {
    const json* when = client::FindPath(constraint, {"whenUnsatisfiable"});
    if (when == nullptr || !when->is_string() || when->get_ref<const std::string&>() == "DoNotSchedule") {
      return true;  // DoNotSchedule is the default
    }
  }
  return false;
}

// A pending pod with a required (anti-)affinity term that picks namespaces by label: a namespace
// added or relabelled can change which pods that term sees (upstream's InterPodAffinity hint for
// namespace events).
bool SelectsNamespacesByLabel(const json& pod) {
  for (const char* kind : {"podAffinity", "podAntiAffinity"}) {
    const json* terms = client::FindPath(
        pod, {"spec", "affinity", kind, "requiredDuringSchedulingIgnoredDuringExecution"});
    if (terms == nullptr || !terms->is_array()) continue;
    for (const json& term : *terms) {
      if (term.is_object() && term.contains("namespaceSelector")) return true;
    }
  }
  return false;
}

bool LabelsChanged(const json& before, const json& after) {
  const json* a = client::FindPath(before, {"metadata", "labels"});
  const json* b = client::FindPath(after, {"metadata", "labels"});
  if (a == nullptr || b == nullptr) return a != b;
  return *a != *b;
}

}  // namespace

SchedulerService::SchedulerService(SchedulerServiceOptions options)
    : options_(std::move(options)) {}

Result<std::unique_ptr<SchedulerService>> SchedulerService::Start(
    SchedulerServiceOptions options, std::shared_ptr<client::Client> client) {
  std::unique_ptr<SchedulerService> service(new SchedulerService(std::move(options)));
  service->client_ = client;
  service->events_ = std::make_unique<client::EventRecorder>(client, "default-scheduler");
  service->cache_ = std::make_unique<SchedulerCache>();
  SchedulingQueueOptions queue_options;
  queue_options.initial_backoff = service->options_.initial_backoff;
  queue_options.max_backoff = service->options_.max_backoff;
  service->queue_ = std::make_unique<SchedulingQueue>(queue_options);
  Result<std::unique_ptr<Scheduler>> algorithm =
      Scheduler::Create(service->cache_.get(), PluginRegistry::InTree(), service->options_.profile,
                        service->options_.algorithm);
  if (!algorithm.ok()) return algorithm.status();
  service->scheduler_ = std::move(*algorithm);
  service->event_tokens_ = service->options_.scheduled_events_burst;
  service->event_tokens_at_ = std::chrono::steady_clock::now();

  if (service->options_.shared_informers != nullptr) {
    service->informers_ = service->options_.shared_informers;
  } else {
    service->owned_informers_ = std::make_unique<client::SharedInformerFactory>(client);
    service->informers_ = service->owned_informers_.get();
  }
  {
    client::Informer::HandlerScope scope;
    service->SetUpHandlers();
    service->handlers_ = scope.Take();
  }
  service->informers_->Start();
  if (!service->informers_->WaitForCacheSync(service->options_.sync_timeout)) {
    service->Stop();
    return Status(Code::kDeadlineExceeded, "scheduler informers did not sync");
  }
  service->thread_ = std::thread([raw = service.get()] { raw->Loop(); });
  for (int i = 0; i < std::max(1, service->options_.binder_threads); ++i) {
    service->binders_.emplace_back([raw = service.get()] { raw->BinderLoop(); });
  }
  spdlog::info("scheduler: caches synced ({} nodes, {} assigned pods, {} pending)",
               service->cache_->NodeCount(), service->cache_->PodCount(),
               service->pending_pods());
  return service;
}

SchedulerService::~SchedulerService() { Stop(); }

void SchedulerService::Stop() {
  if (stopped_) return;
  stopped_ = true;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (queue_) queue_->Close();
  if (thread_.joinable()) thread_.join();
  for (std::thread& binder : binders_) binder.join();  // they send what is queued first
  {
    // Binding replies still reference the cache and queue.
    std::unique_lock lock(mu_);
    cv_.wait(lock, [this] { return inflight_bindings_ == 0; });
  }
  if (owned_informers_) {
    owned_informers_->Shutdown();
  } else {
    for (const auto& [informer, id] : handlers_) informer->RemoveEventHandler(id);
  }
}

void SchedulerService::SetLeading(bool leading) {
  {
    std::lock_guard lock(mu_);
    leading_ = leading;
  }
  cv_.notify_all();
  spdlog::info("scheduler: {}", leading ? "leading, scheduling pods" : "standing by");
}

void SchedulerService::SetUpHandlers() {
  const auto ours = [this](const json& pod) {
    const std::string& name = StringAt(pod, "spec", "schedulerName");
    return (name.empty() || name == options_.scheduler_name) && !IsTerminal(pod) &&
           !IsTerminating(pod);
  };
  client::Informer* pods = informers_->For(client::kPods);
  client::EventHandlers pod_handlers;
  pod_handlers.on_add = [this, ours](const client::ObjectPtr& pod) {
    if (IsAssigned(*pod)) {
      cache_->UpsertPod(*pod);
      queue_->MoveToActiveIf(NeedsOtherPods);
    } else if (ours(*pod)) {
      const std::string& nominated = StringAt(*pod, "status", "nominatedNodeName");
      if (!nominated.empty()) cache_->SetNominated(PodInfo::Parse(*pod), nominated);
      queue_->AddOrUpdate(pod);
    }
  };
  pod_handlers.on_update = [this, ours](const client::ObjectPtr& before,
                                        const client::ObjectPtr& after) {
    if (IsAssigned(*after)) {
      if (!IsAssigned(*before)) queue_->Delete(PodKey(*after));
      cache_->UpsertPod(*after);  // terminal pods leave the cache, freeing their node
      if (IsTerminal(*after) && !IsTerminal(*before)) {
        queue_->MoveAllToActive();
      } else if (!IsAssigned(*before) || LabelsChanged(*before, *after)) {
        queue_->MoveToActiveIf(NeedsOtherPods);  // placed or relabelled: affinity may hold now
      }
    } else if (ours(*after)) {
      // A preemptor's nomination, written by this or another scheduler (or cleared).
      const std::string& nominated = StringAt(*after, "status", "nominatedNodeName");
      if (!nominated.empty()) {
        cache_->SetNominated(PodInfo::Parse(*after), nominated);
      } else if (!StringAt(*before, "status", "nominatedNodeName").empty()) {
        cache_->ClearNominated(PodKey(*after));
      }
      queue_->AddOrUpdate(after);
    } else {
      queue_->Delete(PodKey(*after));
      cache_->ClearNominated(PodKey(*after));
    }
  };
  pod_handlers.on_delete = [this](const client::ObjectPtr& pod) {
    if (IsAssigned(*pod)) {
      cache_->RemovePod(*pod);
      queue_->MoveAllToActive();  // its resources are free now
    } else {
      queue_->Delete(PodKey(*pod));
      // An assumed pod deleted before its binding was seen.
      cache_->RemovePodByKey(PodKey(*pod));
    }
  };
  pods->AddEventHandler(std::move(pod_handlers));

  client::EventHandlers node_handlers;
  node_handlers.on_add = [this](const client::ObjectPtr& node) {
    cache_->UpsertNode(*node);
    queue_->MoveAllToActive();
  };
  node_handlers.on_update = [this](const client::ObjectPtr& before,
                                   const client::ObjectPtr& after) {
    cache_->UpsertNode(*after);
    if (NodeSchedulingChanged(*before, *after)) queue_->MoveAllToActive();
  };
  node_handlers.on_delete = [this](const client::ObjectPtr& node) {
    cache_->RemoveNode((*node)["metadata"].value("name", ""));
  };
  informers_->For(client::kNodes)->AddEventHandler(std::move(node_handlers));

  client::EventHandlers namespace_handlers;
  namespace_handlers.on_add = [this](const client::ObjectPtr& ns) {
    cache_->UpsertNamespace(*ns);
    queue_->MoveToActiveIf(SelectsNamespacesByLabel);
  };
  namespace_handlers.on_update = [this](const client::ObjectPtr& before,
                                        const client::ObjectPtr& ns) {
    cache_->UpsertNamespace(*ns);
    if (LabelsChanged(*before, *ns)) queue_->MoveToActiveIf(SelectsNamespacesByLabel);
  };
  namespace_handlers.on_delete = [this](const client::ObjectPtr& ns) {
    cache_->RemoveNamespace((*ns)["metadata"].value("name", ""));
  };
  informers_->For(client::kNamespaces)->AddEventHandler(std::move(namespace_handlers));
  budgets_ = informers_->For(client::kPodDisruptionBudgets);  // no handler: read on demand
}

std::vector<DisruptionBudget> SchedulerService::Budgets() const {
  std::vector<DisruptionBudget> out;
  for (const client::ObjectPtr& budget : budgets_->List()) {
    const json* selector = client::FindPath(*budget, {"spec", "selector"});
    const json* allowed = client::FindPath(*budget, {"status", "disruptionsAllowed"});
    out.push_back(DisruptionBudget{
        StringAt(*budget, "metadata", "namespace"),
        LabelSelector::Parse(selector != nullptr ? *selector : json()),
        allowed != nullptr && allowed->is_number_integer() ? allowed->get<int64_t>() : 0});
  }
  return out;
}

void SchedulerService::Loop() {
  auto last_cleanup = std::chrono::steady_clock::now();
  auto last_report = last_cleanup;
  uint64_t reported_scheduled = 0, reported_attempts = 0;
  while (true) {
    {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] {
        return stopping_ ||
               (leading_ && inflight_bindings_ < options_.max_inflight_bindings);
      });
      if (stopping_) return;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now - last_cleanup > std::chrono::seconds(1)) {
      if (size_t expired = cache_->CleanupExpired(); expired > 0) {
        spdlog::warn("scheduler: {} assumed pods expired without their binding being seen",
                     expired);
        queue_->MoveAllToActive();
      }
      last_cleanup = now;
    }
    // A progress line every 5 s while there is work (kube-scheduler exposes the same as metrics).
    if (now - last_report >= std::chrono::seconds(5)) {
      const uint64_t scheduled = scheduled_.load(), attempts = attempts_.load();
      if (attempts != reported_attempts) {
        const double seconds = std::chrono::duration<double>(now - last_report).count();
        spdlog::info("scheduler: {} pods bound in {:.0f} s ({:.0f}/s), {} attempts, {} pending",
                     scheduled - reported_scheduled, seconds,
                     (scheduled - reported_scheduled) / seconds, attempts - reported_attempts,
                     pending_pods());
      }
      reported_scheduled = scheduled;
      reported_attempts = attempts;
      last_report = now;
    }
    ScheduleOne();
  }
}

void SchedulerService::ScheduleOne() {
  // Wake at least once a second for cleanups and leadership changes.
  std::optional<QueuedPod> item =
      queue_->Pop(std::chrono::steady_clock::now() + std::chrono::seconds(1));
  if (!item) return;
  {
    std::lock_guard lock(mu_);
    if (!leading_) {  // lost the lease while waiting: hand it back untouched
      queue_->AddBackoff(*item);
      return;
    }
  }
  const json& pod = *item->pod;
  ++attempts_;
  ScheduleResult result = scheduler_->ScheduleAndAssume(pod);
  if (result.ok() && result.assume_status.ok()) {
    Bind(item->uid, item->pod, result.node, item->attempts);
    return;
  }
  if (result.ok()) {  // assume failed: the cache already holds the pod (its binding was seen)
    queue_->Done(item->uid);
    return;
  }
  ++unschedulable_;
  const PreemptionResult preemption = scheduler_->Preempt(pod, Budgets());
  if (preemption.node.empty()) {
    // As upstream: a pod that could preempt and found no node loses an earlier nomination; one
    // that may not preempt now (waiting for its victims) keeps it.
    const bool clear = preemption.eligible && !StringAt(pod, "status", "nominatedNodeName").empty();
    if (clear) cache_->ClearNominated(PodKey(pod));
    RecordFailure(pod, result.fit_message + " " + preemption.message,
                  clear ? std::optional<std::string>("") : std::nullopt);
  } else {
    // As upstream: the event keeps the fit error alone once preemption found a node.
    RecordFailure(pod, result.fit_message, preemption.node);
    const std::shared_ptr<const PodInfo> info = PodInfo::Parse(pod);
    cache_->SetNominated(info, preemption.node);
    for (const auto& displaced : cache_->TakeNominatedBelow(preemption.node, info->priority)) {
      ClearNominationInApi(*displaced);
    }
    EvictVictims(pod, preemption);
  }
  // It comes back when the victims are gone (a pod deletion moves every pending pod).
  queue_->AddUnschedulable(std::move(*item));
}

void SchedulerService::Bind(const std::string& uid, std::shared_ptr<const json> pod,
                            const std::string& node, int attempts) {
  {
    std::lock_guard lock(mu_);
    ++inflight_bindings_;
    bindings_.push_back([this, uid, pod = std::move(pod), node, attempts] {
      SendBinding(uid, pod, node, attempts);
    });
  }
  cv_.notify_all();
}

void SchedulerService::BinderLoop() {
  std::unique_lock lock(mu_);
  while (true) {
    cv_.wait(lock, [this] { return stopping_ || !bindings_.empty(); });
    if (bindings_.empty()) return;  // stopping, and nothing left to send
    std::function<void()> send = std::move(bindings_.front());
    bindings_.pop_front();
    lock.unlock();
    send();
    lock.lock();
  }
}

void SchedulerService::SendBinding(const std::string& uid, std::shared_ptr<const json> pod_ptr,
                                   const std::string& node, int attempts) {
  const json& meta = (*pod_ptr)["metadata"];
  const std::string ns = meta.value("namespace", "default");
  const std::string name = meta.value("name", "");
  json binding = {{"apiVersion", "v1"},
                  {"kind", "Binding"},
                  {"metadata", {{"name", name}, {"namespace", ns}, {"uid", meta.value("uid", "")}}},
                  {"target", {{"apiVersion", "v1"}, {"kind", "Node"}, {"name", node}}}};
  client_->CreateSubresourceAsync(
      client::kPods, ns, name, "binding", binding,
      [this, uid, pod_ptr, node, attempts](client::ApiResult<json> reply) {
        if (reply.ok()) {
          (void)cache_->FinishBinding(uid);
          queue_->Done(uid);
          ++scheduled_;
          if (TakeScheduledEventToken()) {
            const json& meta = (*pod_ptr)["metadata"];
            events_->Record(*pod_ptr, "Normal", "Scheduled",
                            "Successfully assigned " + meta.value("namespace", "") + "/" +
                                meta.value("name", "") + " to " + node);
          }
        } else {
          ++binding_errors_;
          (void)cache_->ForgetPod(uid);
          if (client::IsNotFound(reply.error())) {
            queue_->Done(uid);  // deleted meanwhile
          } else {
            spdlog::warn("scheduler: binding {} to {} failed: {}",
                         (*pod_ptr)["metadata"].value("name", ""), node,
                         reply.error().ToString());
            queue_->AddBackoff(QueuedPod{uid, pod_ptr, attempts, {}});
          }
        }
        {
          std::lock_guard lock(mu_);
          --inflight_bindings_;
        }
        cv_.notify_all();
      });
}

void SchedulerService::RecordFailure(const json& pod, const std::string& message,
                                     const std::optional<std::string>& nomination) {
  events_->Record(pod, "Warning", "FailedScheduling", message);
  // PodScheduled=False/Unschedulable, as upstream; conditions merge by type.
  const json& meta = pod["metadata"];
  json patch = {{"status",
                 {{"conditions", json::array({{{"type", "PodScheduled"},
                                               {"status", "False"},
                                               {"reason", "Unschedulable"},
                                               {"message", message},
                                               {"lastProbeTime", nullptr},
                                               {"lastTransitionTime", NowRfc3339()}}})}}}};
  if (nomination) {
    patch["status"]["nominatedNodeName"] = nomination->empty() ? json(nullptr) : json(*nomination);
  }
  client_->PatchAsync(
      client::kPods, meta.value("namespace", "default"), meta.value("name", ""),
      client::PatchType::kStrategic, patch,
      [](client::ApiResult<json> reply) {
        if (!reply.ok() && !client::IsNotFound(reply.error())) {
          spdlog::debug("scheduler: PodScheduled condition not written: {}",
                        reply.error().ToString());
        }
      },
      "status");
}

void SchedulerService::ClearNominationInApi(const PodInfo& pod) {
  spdlog::info("scheduler: {}/{} is no longer nominated: a pod of higher priority preempted on "
               "its node", pod.ns, pod.name);
  client_->PatchAsync(
      client::kPods, pod.ns, pod.name, client::PatchType::kMerge,
      {{"status", {{"nominatedNodeName", nullptr}}}},
      [](client::ApiResult<json> reply) {
        if (!reply.ok() && !client::IsNotFound(reply.error())) {
          spdlog::debug("scheduler: nomination not cleared: {}", reply.error().ToString());
        }
      },
      "status");
}

void SchedulerService::EvictVictims(const json& preemptor, const PreemptionResult& preemption) {
  const json& meta = preemptor["metadata"];
  const std::string preemptor_uid = meta.value("uid", "");
  spdlog::info("scheduler: {}/{} preempts {} pod(s) on {}", meta.value("namespace", ""),
               meta.value("name", ""), preemption.victims.size(), preemption.node);
  for (const std::shared_ptr<const PodInfo>& victim : preemption.victims) {
    const bool has_uid = victim->key.find('/') == std::string::npos;  // PodInfo's key: uid
    json reference = {{"apiVersion", "v1"},
                      {"kind", "Pod"},
                      {"metadata", {{"name", victim->name}, {"namespace", victim->ns}}}};
    if (has_uid) reference["metadata"]["uid"] = victim->key;
    events_->Record(reference, "Normal", "Preempted",
                    "Preempted by pod " + preemptor_uid + " on node " + preemption.node);
    json condition = {{"type", "DisruptionTarget"},
                      {"status", "True"},
                      {"reason", "PreemptionByScheduler"},
                      {"message", options_.scheduler_name +
                                      ": preempting to accommodate a higher priority pod"},
                      {"lastTransitionTime", NowRfc3339()}};
    client::DeleteOptions options;  // graceful, the victim's own period
    if (has_uid) options.precondition_uid = victim->key;
    auto remove = [client = client_, ns = victim->ns, name = victim->name, options] {
      client->DeleteAsync(client::kPods, ns, name, options, [ns, name](client::ApiResult<json> r) {
        if (!r.ok() && !client::IsNotFound(r.error()) && !client::IsConflict(r.error())) {
          spdlog::warn("scheduler: preemption victim {}/{} not deleted: {}", ns, name,
                       r.error().ToString());
        }
      });
    };
    // The condition first (upstream does too), then the delete whatever the patch's outcome.
    client_->PatchAsync(
        client::kPods, victim->ns, victim->name, client::PatchType::kStrategic,
        {{"status", {{"conditions", json::array({condition})}}}},
        [remove](client::ApiResult<json>) { remove(); }, "status");
  }
}

bool SchedulerService::TakeScheduledEventToken() {
  std::lock_guard lock(mu_);
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - event_tokens_at_).count();
  event_tokens_at_ = now;
  event_tokens_ = std::min<double>(options_.scheduled_events_burst,
                                   event_tokens_ + elapsed * options_.scheduled_events_per_second);
  if (event_tokens_ < 1) return false;
  event_tokens_ -= 1;
  return true;
}

SchedulerStats SchedulerService::stats() const {
  return SchedulerStats{attempts_.load(), scheduled_.load(), unschedulable_.load(),
                        binding_errors_.load()};
}

size_t SchedulerService::pending_pods() const {
  const SchedulingQueue::Counts counts = queue_->counts();
  return counts.active + counts.backoff + counts.unschedulable + counts.in_flight;
}

}  // namespace mk8s::scheduler
