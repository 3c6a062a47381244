#include "scheduler/scheduler_cache.h"

#include <algorithm>

namespace mk8s::scheduler {
namespace {

std::string MetaName(const nlohmann::json& obj) {
  if (!obj.is_object()) return {};
  auto m = obj.find("metadata");
  if (m == obj.end() || !m->is_object()) return {};
  auto n = m->find("name");
  return n != m->end() && n->is_string() ? n->get<std::string>() : std::string();
}

}  // namespace

SchedulerCache::SchedulerCache(NowFn now, Duration assumed_ttl)
    : now_(now ? std::move(now) : NowFn([] { return std::chrono::steady_clock::now(); })),
      ttl_(assumed_ttl) {}

NodeInfo* SchedulerCache::GetOrCreateInfoLocked(const std::string& name) {
  auto& slot = infos_[name];
  if (!slot) slot = std::make_unique<NodeInfo>(name);
  return slot.get();
}

void SchedulerCache::MaybeDropGhostLocked(const std::string& name) {
  auto it = infos_.find(name);
  if (it != infos_.end() && !it->second->has_node() && it->second->pods().empty()) {
    infos_.erase(it);
  }
}

void SchedulerCache::CountImagesLocked(const NodeInfo& info, int delta) {
  for (const ImageState& img : info.images()) {
    int& n = image_nodes_[img.name];
    n += delta;
    if (n <= 0) image_nodes_.erase(img.name);
  }
}

void SchedulerCache::UpsertNode(const nlohmann::json& node) {
  std::string name = MetaName(node);
  if (name.empty()) return;
  std::lock_guard<std::mutex> lock(mu_);
  NodeInfo* info = GetOrCreateInfoLocked(name);
  if (info->has_node()) {
    CountImagesLocked(*info, -1);
  } else {
    info->list_index = nodes_.size();
    nodes_.push_back(info);
  }
  info->SetNode(node);
  CountImagesLocked(*info, +1);
}

void SchedulerCache::RemoveNode(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = infos_.find(name);
  if (it == infos_.end() || !it->second->has_node()) return;
  NodeInfo* info = it->second.get();
  CountImagesLocked(*info, -1);
  size_t idx = info->list_index;
  nodes_[idx] = nodes_.back();
  nodes_[idx]->list_index = idx;
  nodes_.pop_back();
  info->ClearNode();
  MaybeDropGhostLocked(name);
}

void SchedulerCache::CountAffinityLocked(const PodInfo& pod, int delta) {
  if (pod.HasAffinityTerms()) pods_with_affinity_ += delta;
  if (!pod.required_anti_affinity.empty()) pods_with_required_anti_ += delta;
}

void SchedulerCache::AddPodToNodeLocked(const std::shared_ptr<const PodInfo>& pod,
                                        const std::string& node) {
  CountAffinityLocked(*pod, +1);
  GetOrCreateInfoLocked(node)->AddPod(pod);
}

void SchedulerCache::RemovePodLocked(const std::string& key) {
  auto it = pods_.find(key);
  if (it == pods_.end()) return;
  std::string node = it->second.node;
  auto info = infos_.find(node);
  if (info != infos_.end() && info->second->RemovePod(key) && it->second.pod) {
    CountAffinityLocked(*it->second.pod, -1);
  }
  pods_.erase(it);
  MaybeDropGhostLocked(node);
}

void SchedulerCache::UpsertPod(const nlohmann::json& pod) {
  std::shared_ptr<const PodInfo> info = PodInfo::Parse(pod);
  std::lock_guard<std::mutex> lock(mu_);
  if (info->terminal) {
    RemovePodLocked(info->key);
    return;
  }
  if (info->node_name.empty()) {
    // Not bound (yet) in the API server's view. An assumed pod stays assumed.
    auto it = pods_.find(info->key);
    if (it != pods_.end() && !it->second.assumed) RemovePodLocked(info->key);
    return;
  }
  RemovePodLocked(info->key);  // update, or confirmation of an assumed pod
  ClearNominatedLocked(info->key);
  std::string node = info->node_name;
  AddPodToNodeLocked(info, node);
  pods_[info->key] = PodState{info, node, false, TimePoint()};
}

void SchedulerCache::RemovePod(const nlohmann::json& pod) { RemovePodByKey(PodKey(pod)); }

void SchedulerCache::RemovePodByKey(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  RemovePodLocked(key);
  ClearNominatedLocked(key);
}

void SchedulerCache::UpsertNamespace(const nlohmann::json& ns) {
  std::string name = MetaName(ns);
  if (name.empty()) return;
  Labels labels;
  auto m = ns.find("metadata");
  if (m->contains("labels")) labels = Labels::Parse(m->at("labels"));
  std::lock_guard<std::mutex> lock(mu_);
  namespaces_[name] = std::move(labels);
}

void SchedulerCache::RemoveNamespace(const std::string& name) {
  std::lock_guard<std::mutex> lock(mu_);
  namespaces_.erase(name);
}

Status SchedulerCache::AssumePod(std::shared_ptr<const PodInfo> pod, const std::string& node) {
  std::lock_guard<std::mutex> lock(mu_);
  return AssumePodLocked(std::move(pod), node);
}

Status SchedulerCache::AssumePodLocked(std::shared_ptr<const PodInfo> pod,
                                       const std::string& node) {
  if (pods_.count(pod->key) != 0) {
    return Status(Code::kAlreadyExists, "pod " + pod->key + " is already in the scheduler cache");
  }
  auto it = infos_.find(node);
  if (it == infos_.end() || !it->second->has_node()) {
    return Status(Code::kNotFound, "node " + node + " is not in the scheduler cache");
  }
  ClearNominatedLocked(pod->key);
  TimePoint deadline = now_() + ttl_;
  CountAffinityLocked(*pod, +1);
  it->second->AddPod(pod);
  std::string key = pod->key;
  pods_[key] = PodState{std::move(pod), node, true, deadline};
  expiry_.emplace(deadline, key);
  return Status::Ok();
}

Status SchedulerCache::FinishBinding(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pods_.find(key);
  if (it == pods_.end() || !it->second.assumed) {
    return Status(Code::kNotFound, "pod " + key + " is not assumed");
  }
  it->second.deadline = now_() + ttl_;
  expiry_.emplace(it->second.deadline, key);
  return Status::Ok();
}

Status SchedulerCache::ForgetPod(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pods_.find(key);
  if (it == pods_.end() || !it->second.assumed) {
    return Status(Code::kNotFound, "pod " + key + " is not assumed");
  }
  RemovePodLocked(key);
  return Status::Ok();
}

size_t SchedulerCache::CleanupExpired() {
  std::lock_guard<std::mutex> lock(mu_);
  return CleanupExpiredLocked();
}

size_t SchedulerCache::CleanupExpiredLocked() {
  if (expiry_.empty()) return 0;
  TimePoint now = now_();
  size_t removed = 0;
  while (!expiry_.empty() && expiry_.begin()->first <= now) {
    auto e = expiry_.begin();
    auto it = pods_.find(e->second);
    // Stale entries (confirmed, forgotten, or deadline refreshed) are skipped.
    if (it != pods_.end() && it->second.assumed && it->second.deadline == e->first) {
      RemovePodLocked(e->second);
      ++removed;
    }
    expiry_.erase(e);
  }
  return removed;
}

bool SchedulerCache::IsAssumed(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pods_.find(key);
  return it != pods_.end() && it->second.assumed;
}

std::string SchedulerCache::NodeOf(const std::string& key) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = pods_.find(key);
  return it == pods_.end() ? std::string() : it->second.node;
}

size_t SchedulerCache::NodeCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return nodes_.size();
}

size_t SchedulerCache::PodCount() const {
  std::lock_guard<std::mutex> lock(mu_);
  return pods_.size();
}

const NodeInfo* SchedulerCache::FindNodeLocked(const std::string& name) const {
  auto it = infos_.find(name);
  return it != infos_.end() && it->second->has_node() ? it->second.get() : nullptr;
}

const Labels* SchedulerCache::NamespaceLabelsLocked(const std::string& ns) const {
  auto it = namespaces_.find(ns);
  return it == namespaces_.end() ? nullptr : &it->second;
}

int SchedulerCache::ImageNodeCountLocked(const std::string& image) const {
  auto it = image_nodes_.find(image);
  return it == image_nodes_.end() ? 0 : it->second;
}

void SchedulerCache::SetNominated(std::shared_ptr<const PodInfo> pod, const std::string& node) {
  std::lock_guard<std::mutex> lock(mu_);
  ClearNominatedLocked(pod->key);
  if (node.empty() || pods_.count(pod->key) != 0) return;  // placed already
  nominated_node_of_[pod->key] = node;
  nominated_by_node_[node].push_back(std::move(pod));
}

void SchedulerCache::ClearNominated(const std::string& key) {
  std::lock_guard<std::mutex> lock(mu_);
  ClearNominatedLocked(key);
}

std::vector<std::shared_ptr<const PodInfo>> SchedulerCache::TakeNominatedBelow(
    const std::string& node, int64_t priority) {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<const PodInfo>> taken;
  auto on_node = nominated_by_node_.find(node);
  if (on_node == nominated_by_node_.end()) return taken;
  for (const auto& pod : on_node->second) {
    if (pod->priority < priority) taken.push_back(pod);
  }
  for (const auto& pod : taken) ClearNominatedLocked(pod->key);
  return taken;
}

void SchedulerCache::ClearNominatedLocked(const std::string& key) {
  if (nominated_node_of_.empty()) return;
  auto it = nominated_node_of_.find(key);
  if (it == nominated_node_of_.end()) return;
  auto on_node = nominated_by_node_.find(it->second);
  if (on_node != nominated_by_node_.end()) {
    auto& pods = on_node->second;
    pods.erase(std::remove_if(pods.begin(), pods.end(),
                              [&](const std::shared_ptr<const PodInfo>& p) { return p->key == key; }),
               pods.end());
    if (pods.empty()) nominated_by_node_.erase(on_node);
  }
  nominated_node_of_.erase(it);
}

const std::vector<std::shared_ptr<const PodInfo>>& SchedulerCache::NominatedLocked(
    const std::string& node) const {
  static const std::vector<std::shared_ptr<const PodInfo>> kNone;
  auto it = nominated_by_node_.find(node);
  return it == nominated_by_node_.end() ? kNone : it->second;
}

}  // namespace mk8s::scheduler
