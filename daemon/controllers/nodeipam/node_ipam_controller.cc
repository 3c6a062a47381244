#include "controllers/nodeipam/node_ipam_controller.h"

#include <arpa/inet.h>
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

namespace mk8s::controllers {

using nlohmann::json;

NodeIpamController::NodeIpamController(const ControllerContext& context, std::string cluster_cidr)
    : Controller("node-ipam", context), events_(context.client, "cidrAllocator") {
  const size_t slash = cluster_cidr.find('/');
  in_addr address{};
  inet_pton(AF_INET, cluster_cidr.substr(0, slash).c_str(), &address);
  base_ = ntohl(address.s_addr);
  const int prefix = slash == std::string::npos ? 16 : std::stoi(cluster_cidr.substr(slash + 1));
  subnets_ = prefix <= 24 ? (1u << (24 - prefix)) : 0;
}

std::string NodeIpamController::SubnetText(uint32_t index) const {
  in_addr address{};
  address.s_addr = htonl(base_ + (index << 8));
  char text[INET_ADDRSTRLEN];
  inet_ntop(AF_INET, &address, text, sizeof(text));
  return std::string(text) + "/24";
}

bool NodeIpamController::SubnetIndex(const std::string& cidr, uint32_t* index) const {
  in_addr address{};
  if (inet_pton(AF_INET, cidr.substr(0, cidr.find('/')).c_str(), &address) != 1) return false;
  const uint32_t value = ntohl(address.s_addr);
  if (value < base_ || ((value - base_) >> 8) >= subnets_) return false;
  *index = (value - base_) >> 8;
  return true;
}

void NodeIpamController::Setup() {
  nodes_ = context_.informers->For(client::kNodes);
  auto track = [this](const client::ObjectPtr& node) {
    uint32_t index = 0;
    if (SubnetIndex((*node).value("/spec/podCIDR"_json_pointer, std::string()), &index)) {
      std::lock_guard lock(mu_);
      used_.insert(index);
    }
    EnqueueObject(node);
  };
  nodes_->AddEventHandler(
      {track, [track](const client::ObjectPtr&, const client::ObjectPtr& node) { track(node); },
       [this](const client::ObjectPtr& node) {
         uint32_t index = 0;
         std::set<std::string> wake;
         {
           std::lock_guard lock(mu_);
           waiting_.erase((*node)["metadata"].value("name", ""));
           if (SubnetIndex((*node).value("/spec/podCIDR"_json_pointer, std::string()), &index)) {
             used_.erase(index);
             wake.swap(waiting_);
           }
         }
         for (const std::string& name : wake) Enqueue(name);
       }});
}

Status NodeIpamController::Reconcile(const std::string& name) {
  client::ObjectPtr node = nodes_->Get(name);
  if (!node || !(*node).value("/spec/podCIDR"_json_pointer, std::string()).empty()) {
    return Status::Ok();
  }
  uint32_t index = 0;
  bool exhausted = false;
  bool newly_waiting = false;
  {
    std::lock_guard lock(mu_);
    while (index < subnets_ && used_.count(index)) ++index;
    exhausted = index == subnets_;
    if (!exhausted) {
      used_.insert(index);  // taken now, so a concurrent worker picks another
      waiting_.erase(name);
    } else {
      newly_waiting = waiting_.insert(name).second;
    }
  }
  if (exhausted) {
    // Told once; the delete handler requeues waiting nodes when a subnet is freed.
    if (newly_waiting) {
      spdlog::warn("node-ipam: no free /24 left for node {}", name);
      events_.Record(*node, "Warning", "CIDRNotAvailable",
                     "Node " + name + " status is now: CIDRNotAvailable");
    }
    return Status::Ok();
  }
  const std::string cidr = SubnetText(index);
  // Only onto the version we saw without a podCIDR: a cache that lags a podCIDR written since
  // gets 409 Conflict (retried once the informer has caught up) instead of replacing it.
  const std::string seen = (*node)["metadata"].value("resourceVersion", "");
  json patch = {{"metadata", {{"resourceVersion", seen}}},
                {"spec", {{"podCIDR", cidr}, {"podCIDRs", json::array({cidr})}}}};
  auto result = api().Patch(client::kNodes, "", name, client::PatchType::kMerge, patch);
  if (!result.ok()) {
    std::lock_guard lock(mu_);
    used_.erase(index);
    return client::IsNotFound(result.error()) ? Status::Ok() : result.status();
  }
  spdlog::info("node-ipam: node {} gets pod CIDR {}", name, cidr);
  return Status::Ok();
}

}  // namespace mk8s::controllers
