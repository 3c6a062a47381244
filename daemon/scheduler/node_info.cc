#include "scheduler/node_info.h"

#include <algorithm>

namespace mk8s::scheduler {

void NodeInfo::SetNode(const nlohmann::json& node) {
  has_node_ = true;
  labels_ = Labels();
  taints_.clear();
  unschedulable_ = false;
  allocatable_ = Resource();
  images_.clear();
  if (!node.is_object()) return;
  auto meta = node.find("metadata");
  if (meta != node.end() && meta->is_object()) {
    auto l = meta->find("labels");
    if (l != meta->end()) labels_ = Labels::Parse(*l);
  }
  auto spec = node.find("spec");
  if (spec != node.end() && spec->is_object()) {
    auto u = spec->find("unschedulable");
    unschedulable_ = u != spec->end() && u->is_boolean() && u->get<bool>();
    auto t = spec->find("taints");
    if (t != spec->end() && t->is_array()) {
      for (const auto& taint : *t) taints_.push_back(Taint::Parse(taint));
    }
  }
  auto status = node.find("status");
  if (status != node.end() && status->is_object()) {
    auto a = status->find("allocatable");
    if (a != status->end()) allocatable_ = Resource::FromList(*a);
    auto imgs = status->find("images");
    if (imgs != status->end() && imgs->is_array()) {
      for (const auto& img : *imgs) {
        if (!img.is_object()) continue;
        int64_t size = img.value("sizeBytes", int64_t{0});
        auto names = img.find("names");
        if (names == img.end() || !names->is_array()) continue;
        for (const auto& n : *names) {
          if (n.is_string())
            images_.push_back(ImageState{NormalizeImageName(n.get<std::string>()), size});
        }
      }
      std::sort(images_.begin(), images_.end(),
                [](const ImageState& a, const ImageState& b) { return a.name < b.name; });
      images_.erase(
          std::unique(images_.begin(), images_.end(),
                      [](const ImageState& a, const ImageState& b) { return a.name == b.name; }),
          images_.end());
    }
  }
}

void NodeInfo::ClearNode() {
  has_node_ = false;
  labels_ = Labels();
  taints_.clear();
  allocatable_ = Resource();
  images_.clear();
}

const ImageState* NodeInfo::FindImage(const std::string& normalized) const {
  auto it = std::lower_bound(images_.begin(), images_.end(), normalized,
                             [](const ImageState& s, const std::string& n) { return s.name < n; });
  return it != images_.end() && it->name == normalized ? &*it : nullptr;
}

void NodeInfo::AddPod(std::shared_ptr<const PodInfo> pod) {
  requested_.Add(pod->req.requests);
  non_zero_cpu_ += pod->req.non_zero_milli_cpu;
  non_zero_mem_ += pod->req.non_zero_memory;
  used_ports_.insert(used_ports_.end(), pod->host_ports.begin(), pod->host_ports.end());
  if (pod->HasAffinityTerms()) ++pods_with_affinity_;
  if (!pod->required_anti_affinity.empty()) ++pods_with_required_anti_;
  pods_.push_back(std::move(pod));
}

bool NodeInfo::RemovePod(const std::string& key) {
  auto it = std::find_if(pods_.begin(), pods_.end(),
                         [&](const std::shared_ptr<const PodInfo>& p) { return p->key == key; });
  if (it == pods_.end()) return false;
  const PodInfo& pod = **it;
  requested_.Sub(pod.req.requests);
  non_zero_cpu_ -= pod.req.non_zero_milli_cpu;
  non_zero_mem_ -= pod.req.non_zero_memory;
  for (const HostPort& hp : pod.host_ports) {
    auto u = std::find_if(used_ports_.begin(), used_ports_.end(), [&](const HostPort& x) {
      return x.port == hp.port && x.protocol == hp.protocol && x.ip == hp.ip;
    });
    if (u != used_ports_.end()) used_ports_.erase(u);
  }
  if (pod.HasAffinityTerms()) --pods_with_affinity_;
  if (!pod.required_anti_affinity.empty()) --pods_with_required_anti_;
  *it = std::move(pods_.back());
  pods_.pop_back();
  return true;
}

}  // namespace mk8s::scheduler
